// The one place that starts child processes: an argument array, never a shell string;
// a timeout for every call; cancellation through one AbortSignal (Ctrl-C).
import { execa } from 'execa';

export interface ProcessSpec {
  argv: readonly string[];
  /** Written to the child's stdin. */
  input?: string;
  timeoutMs: number;
  env?: Record<string, string>;
  cwd?: string;
}

export interface ProcessResult {
  argv: readonly string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

/** Runs one program on this machine. Tests replace it with a recorder (test/sim/run-layer.ts). */
export type ProcessRunner = (spec: ProcessSpec) => Promise<ProcessResult>;

export function execaRunner(signal?: AbortSignal): ProcessRunner {
  return async (spec) => {
    const [file, ...args] = spec.argv;
    if (!file) throw new Error('empty argv');
    const started = performance.now();
    const result = await execa(file, args, {
      // No input: /dev/null, not an empty pipe (one stream less to set up for every call).
      ...(spec.input === undefined ? { stdin: 'ignore' as const } : { input: spec.input }),
      timeout: spec.timeoutMs,
      cancelSignal: signal,
      reject: false,
      stripFinalNewline: false,
      env: spec.env,
      cwd: spec.cwd,
      forceKillAfterDelay: 2000,
    });
    if (result.isCanceled) throw signal?.reason ?? new Error('cancelled');
    const spawnFailed = result.exitCode === undefined && !result.timedOut && !result.isCanceled;
    return {
      argv: spec.argv,
      exitCode: result.exitCode ?? (result.timedOut ? 124 : 127),
      stdout: String(result.stdout ?? ''),
      stderr: spawnFailed
        ? String(result.originalMessage ?? result.message)
        : String(result.stderr ?? ''),
      durationMs: Math.round(performance.now() - started),
      timedOut: Boolean(result.timedOut),
    };
  };
}
