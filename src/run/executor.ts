// Runs a command on a host: this machine, or over ssh. The same command code serves both.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Host } from '../config/host.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import type { Log } from '../output/log.js';
import type { ProcessResult, ProcessRunner } from './process.js';
import { batchArgv, newMarker, parseBatchOutput } from './remote-batch.js';
import { shellQuote } from './shell-quote.js';

interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Run as root (through sudo when the host says so). */
  root?: boolean;
  /** Changes the host: skipped, and only printed, under --dry-run. */
  mutates?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  /** Over a new ssh connection, not the one this executor keeps open: proves that the host
   * accepts connections now (an open connection outlives a stopped sshd). */
  fresh?: boolean;
  /** Undoes what the run set up: still runs after Ctrl-C. */
  afterInterrupt?: boolean;
}

export interface Executor {
  readonly host: Host;
  /** Runs argv; a non-zero exit is a result, not an exception. */
  run(argv: readonly string[], options?: RunOptions): Promise<ProcessResult>;
  /** Runs argv; a non-zero exit throws a CommandFailed naming the host and the command. */
  must(argv: readonly string[], options?: RunOptions): Promise<ProcessResult>;
  /** Ends the ssh connection this executor keeps open, if any; a later command opens another. */
  close(): Promise<void>;
}

export class CommandFailed extends ExoDeployError {
  constructor(
    readonly host: string,
    readonly result: ProcessResult,
  ) {
    const what = result.timedOut ? 'timed out' : `exited ${result.exitCode}`;
    const tail = lastLines(result.stderr || result.stdout, 5);
    super(
      `${host}: \`${result.argv.join(' ')}\` ${what}${tail ? `:\n${tail}` : ''}`,
      ExitCode.failed,
      { host },
    );
  }
}

export function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

export { shellQuote } from './shell-quote.js';

export interface ExecutorContext {
  runner: ProcessRunner;
  /** For closing connections: not cancelled by Ctrl-C, so cleanup still runs after it. */
  cleanupRunner: ProcessRunner;
  log: Log;
  dryRun: boolean;
  defaultTimeoutMs: number;
  sshConnectTimeoutMs: number;
  sshProgram: string;
}

export function createExecutor(host: Host, ctx: ExecutorContext): Executor {
  const ssh = host.local ? undefined : new SshConnection(host, ctx);
  const wrapRoot = (argv: readonly string[], root: boolean): string[] =>
    root && host.sudo ? ['sudo', '-n', '--', ...argv] : [...argv];
  const wrap = (argv: readonly string[], root: boolean, fresh: boolean): string[] => {
    const asRoot = wrapRoot(argv, root);
    return ssh ? ssh.argv(asRoot, fresh) : asRoot;
  };
  const run = async (argv: readonly string[], options: RunOptions = {}): Promise<ProcessResult> => {
    if (options.mutates && ctx.dryRun) {
      ctx.log.info(`[dry-run] ${host.name}: would run ${argv.join(' ')}`);
      return { argv, exitCode: 0, stdout: '', stderr: '', durationMs: 0, timedOut: false };
    }
    // Reads issued together (a check's Promise.all) run as one process: one ssh session, or
    // one local shell instead of a spawn each.
    if (options.fresh || options.afterInterrupt) return execute(argv, options);
    if (!options.mutates && options.input === undefined && !options.env && !options.cwd)
      return batcher.add(argv, options);
    return ssh ? ssh.session(() => execute(argv, options)) : execute(argv, options);
  };
  const runReads = async (batch: readonly Read[]): Promise<ProcessResult[]> =>
    ssh ? ssh.session(() => runTogether(batch)) : runTogether(batch);
  const batcher = new ReadBatcher(runReads);
  // Several reads: one process, whose timeout is the longest of theirs.
  const runTogether = async (reads: readonly Read[]): Promise<ProcessResult[]> => {
    if (reads.length === 1) return [await execute(reads[0]!.argv, reads[0]!.options)];
    const marker = await newMarker();
    const argvs = reads.map((r) => wrapRoot(r.argv, r.options.root ?? false));
    const whole = await execute(
      batchArgv(argvs, marker),
      { timeoutMs: Math.max(...reads.map((r) => r.options.timeoutMs ?? ctx.defaultTimeoutMs)) },
      false,
    );
    const results = parseBatchOutput(
      whole,
      marker,
      reads.map((r) => r.argv),
    );
    for (const r of results)
      ctx.log.verbose(
        `${host.name}: $ ${r.argv.join(' ')}  (${r.durationMs} ms, one session with ${reads.length - 1} other read(s), ${r.timedOut ? 'timed out' : `exit ${r.exitCode}`})`,
      );
    return results;
  };
  const execute = async (
    argv: readonly string[],
    options: RunOptions,
    logged = true,
  ): Promise<ProcessResult> => {
    const result = await (options.afterInterrupt ? ctx.cleanupRunner : ctx.runner)({
      argv: wrap(argv, options.root ?? false, options.fresh ?? false),
      input: options.input,
      timeoutMs: options.timeoutMs ?? ctx.defaultTimeoutMs,
      env: options.env,
      cwd: options.cwd,
    });
    if (logged)
      ctx.log.verbose(
        `${host.name}: $ ${argv.join(' ')}  (${result.durationMs} ms, ${result.timedOut ? 'timed out' : `exit ${result.exitCode}`})`,
      );
    if (ssh && result.exitCode === 255 && !result.timedOut) {
      throw new ExoDeployError(
        `${host.name}: cannot reach ${host.target} over ssh: ${lastLines(result.stderr, 2) || 'ssh exited 255'}`,
        ExitCode.failed,
        {
          host: host.name,
          hint: `check that \`ssh ${host.target}\` works with the ssh_options of the config`,
        },
      );
    }
    return { ...result, argv };
  };
  return {
    host,
    run,
    async must(argv, options) {
      const result = await run(argv, options);
      if (result.exitCode !== 0 || result.timedOut) throw new CommandFailed(host.name, result);
      return result;
    },
    close: async () => ssh?.close(),
  };
}

interface Read {
  argv: readonly string[];
  options: RunOptions;
  resolve: (result: ProcessResult) => void;
  reject: (error: unknown) => void;
}

/** Collects the reads made in one turn of the event loop and runs them together. */
class ReadBatcher {
  private queued: Read[] | undefined;
  constructor(private readonly run: (reads: readonly Read[]) => Promise<ProcessResult[]>) {}

  add(argv: readonly string[], options: RunOptions): Promise<ProcessResult> {
    return new Promise((resolve, reject) => {
      if (!this.queued) {
        this.queued = [];
        setImmediate(() => {
          const reads = this.queued ?? [];
          this.queued = undefined;
          this.run(reads).then(
            (results) => {
              for (const [k, r] of reads.entries()) r.resolve(results[k] as ProcessResult);
            },
            (error: unknown) => {
              for (const r of reads) r.reject(error);
            },
          );
        });
      }
      this.queued.push({ argv, options, resolve, reject });
    });
  }
}

/** Sessions at once over one connection: below sshd's default MaxSessions (10). */
const MAX_SESSIONS = 8;

/** One multiplexed ssh connection per host and run (ControlMaster), so that the many small
 * reads a check makes cost one handshake. Closed explicitly: it leaves no process behind. */
class SshConnection {
  private controlSocket: string | undefined;
  /** The first command opens the master connection alone; the others wait and share it. */
  private opened: Promise<unknown> | undefined;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(
    private readonly host: Host,
    private readonly ctx: ExecutorContext,
  ) {}

  async session<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.opened) {
      const first = this.limited(fn);
      this.opened = first.catch(() => undefined);
      return first;
    }
    await this.opened;
    return this.limited(fn);
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.active >= MAX_SESSIONS)
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await fn();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }

  private controlPath(): string {
    this.controlSocket ??= controlDir.take();
    return this.controlSocket;
  }

  options(fresh = false): string[] {
    return [
      '-o',
      'BatchMode=yes',
      '-o',
      `ConnectTimeout=${Math.max(1, Math.round(this.ctx.sshConnectTimeoutMs / 1000))}`,
      '-o',
      'ServerAliveInterval=5',
      '-o',
      'ServerAliveCountMax=3',
      ...(fresh
        ? ['-o', 'ControlMaster=no', '-o', 'ControlPath=none']
        : [
            '-o',
            'ControlMaster=auto',
            '-o',
            `ControlPath=${this.controlPath()}`,
            '-o',
            'ControlPersist=60',
          ]),
      ...this.host.sshOptions,
    ];
  }

  argv(remote: readonly string[], fresh = false): string[] {
    return [
      this.ctx.sshProgram,
      ...this.options(fresh),
      '--',
      this.host.target,
      remote.map(shellQuote).join(' '),
    ];
  }

  async close(): Promise<void> {
    if (!this.controlSocket) return;
    await this.ctx
      .cleanupRunner({
        argv: [
          this.ctx.sshProgram,
          '-o',
          `ControlPath=${this.controlSocket}`,
          '-O',
          'exit',
          '--',
          this.host.target,
        ],
        timeoutMs: 5000,
      })
      .catch(() => undefined);
    controlDir.give(this.controlSocket);
    this.controlSocket = undefined;
  }
}

/** One private folder (0700, from mkdtemp) for every connection's socket of this process,
 * removed when the last connection closes: a fleet of 1,000 hosts makes one folder, not 1,000.
 * Socket names are short numbers: a socket path must fit in 108 bytes. */
const controlDir = new (class {
  private dir: string | undefined;
  private open = 0;
  private next = 0;
  take(): string {
    this.dir ??= mkdtempSync(path.join(os.tmpdir(), 'exo-deploy-ssh-'));
    this.open += 1;
    this.next += 1;
    return path.join(this.dir, String(this.next));
  }
  give(socket: string): void {
    rmSync(socket, { force: true });
    this.open -= 1;
    if (this.open > 0 || !this.dir) return;
    rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
})();

/** The ssh options as NIX_SSHOPTS carries them to `nix copy` and nixos-rebuild (space-separated:
 * an option value with a space cannot be passed this way, a limit of Nix itself). */
export function nixSshOpts(host: Host): string {
  return host.sshOptions.join(' ');
}
