// A sandbox fleet for end-to-end tests: real systemd hosts reached over real ssh, driven
// only through exo-deploy's public commands. Every fleet is torn down in afterAll, also
// when a test failed.
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll } from 'vitest';
import { noSandbox } from '../sandbox-requirements.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const cliPath = path.join(repoRoot, 'dist/cli/cli.js');

/** Where no fleet can be brought up, the e2e suites skip (and say why). */
export const noFleet = noSandbox;

export interface SandboxHost {
  name: string;
  address: string;
  /** The machine's end of the host's veth pair: taking it down cuts the host off. */
  veth: string;
  /** The container's console, as systemd-nspawn writes it on this machine, every boot's. */
  log: string;
}

/** What else a sandbox release can set (sandbox/fleet.mjs `release`). */
interface ReleaseSettings {
  /** exo's networking era; by default 1.0.x is libp2p, anything else zenoh. */
  era?: 'libp2p' | 'zenoh';
  /** The era the hosts' configuration claims for it (services.exo.era), when it is wrong. */
  declaredEra?: 'libp2p' | 'zenoh';
  /** Seconds a new runner takes to become ready. */
  loadSeconds?: number;
  /** The hosts' systems boot another kernel with this release. */
  needsReboot?: boolean;
}

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  json: any;
  /** The Markdown report of a run that did not exit 0 (its causes in full), or ''. */
  report: string;
}

/** Waits until condition() holds (a run's output, read as it comes), up to ms. */
export const waitFor = async (what: string, condition: () => boolean, ms = 120_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** What a failed CLI run said, for an assertion's message. */
export const explain = (r: CliRun) => `${r.stdout}\n${r.stderr}\n${r.report}`;

export interface Fleet {
  dir: string;
  config: string;
  hosts: SandboxHost[];
  cli(args: string[]): Promise<CliRun>;
  /** Starts the CLI without waiting: for signals and concurrent runs. */
  spawn(args: string[]): ReturnType<typeof execa>;
  ssh(host: SandboxHost, command: string): Promise<string>;
  running(host: SandboxHost): Promise<string>;
  /** exo-deploy's revert timers (and their units) loaded on the host: none once a deploy ends. */
  revertUnits(host: SandboxHost): Promise<string[]>;
  mainPid(host: SandboxHost): Promise<number>;
  generationCount(host: SandboxHost): Promise<number>;
  /** Commits a new exo release to exo-src and moves the config's exo input to it. */
  ship(
    version: string,
    fault?: string,
    faultOn?: string[],
    release?: ReleaseSettings,
  ): Promise<void>;
  /** Pins services.exo.namespace on every host in the config repository (not yet deployed). */
  pinNamespace(namespace: string | null): Promise<void>;
  /** Makes exo-deploy reach the host as the non-root user `deploy` with `sudo = true`. */
  useSudoUser(host: SandboxHost): Promise<void>;
  /** Sets services.exo options on every host in the config repository (not yet deployed). */
  setExoSettings(settings: Record<string, unknown>): Promise<void>;
  /** Sets other NixOS options on every host in the config repository (not yet deployed). */
  setNixosSettings(settings: Record<string, unknown>): Promise<void>;
  /** Sets keys of a table of exo-deploy.toml ("hosts.h2", …); null removes one. */
  tuneConfig(table: string, settings: Record<string, string | null>): Promise<void>;
  /** Which nixos-rebuild exo-deploy runs: NixOS 26.05's (with --store-path) or 25.11's. */
  useNixosRebuild(release: '26.05' | '25.11'): Promise<void>;
  /** In pull mode: what the host's pull remembers (its state file), null before its first. */
  pullState(host: SandboxHost): Promise<any>;
  /** The config repository's HEAD. */
  head(): Promise<string>;
  /** git in the config repository. */
  git(...args: string[]): Promise<string>;
  /** Commits a new exo release to exo-src only (the config's lock is not moved). */
  release(version: string, fault?: string): Promise<void>;
}

interface FleetOptions {
  /** The hosts follow the config repository's main branch themselves, every `interval` s,
   * once the first release is deployed (by exo-deploy, from this machine). */
  pull?: { interval: number };
}

/** Brings up a fleet of `count` hosts for the file that calls it, with the first release
 * deployed by exo-deploy itself, and health settings suited to injected faults. */
export function useFleet(
  count: number,
  health: Record<string, string> = {},
  options: FleetOptions = {},
): () => Fleet {
  let fleet: Fleet | undefined;
  let dir: string | undefined;
  let sandbox: typeof import('../../sandbox/fleet.mjs');
  const quiet = () => {};

  beforeAll(async () => {
    if (noFleet) return;
    sandbox = await import('../../sandbox/fleet.mjs');
    dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-e2e-'));
    const state = await sandbox.up({
      dir,
      hosts: count,
      deploy: false,
      pull: options.pull ?? null,
      log: quiet,
    });
    const config = state.deployConfig as string;
    await sandbox.tuneHealth(config, {
      soak: '8s',
      ready_timeout: '20s',
      timeout: '2s',
      ...health,
    });
    const repo = path.dirname(config);
    const git = (...args: string[]) =>
      execa('git', ['-C', repo, ...args]).then((r) => String(r.stdout).trim());
    // the hosts that pull read the health settings from the repository
    if (options.pull) await git('commit', '-q', '-am', 'health settings for the tests');
    const cli = async (args: string[]): Promise<CliRun> => {
      const r = await execa('node', [cliPath, '--config', config, ...args], {
        reject: false,
        env: sandbox.nixEnv(),
        timeout: 300_000,
      });
      let json: unknown;
      try {
        json = args.includes('--json') ? JSON.parse(String(r.stdout)) : undefined;
      } catch {
        json = undefined;
      }
      const reportPath =
        r.exitCode !== 0 ? /^report: (\S+\.md)$/m.exec(`${r.stdout}\n${r.stderr}`)?.[1] : undefined;
      const report = reportPath ? await readFile(reportPath, 'utf8').catch(() => '') : '';
      return {
        exitCode: r.exitCode ?? -1,
        stdout: String(r.stdout),
        stderr: String(r.stderr),
        json,
        report,
      };
    };
    const ssh = async (host: SandboxHost, command: string) => {
      const r = await sandbox.sshHost(dir as string, host.address, command);
      if (r.exitCode !== 0)
        throw new Error(`ssh ${host.name} ${command}: exit ${r.exitCode}\n${r.stderr}`);
      return String(r.stdout).trim();
    };
    fleet = {
      dir,
      config,
      hosts: state.hosts.map((h: SandboxHost) => ({
        name: h.name,
        address: h.address,
        veth: h.veth,
        log: h.log,
      })),
      cli,
      spawn: (args) =>
        execa('node', [cliPath, '--config', config, ...args], {
          reject: false,
          env: sandbox.nixEnv(),
          timeout: 300_000,
        }),
      ssh,
      running: (h) => ssh(h, 'readlink -f /run/current-system'),
      revertUnits: async (h) =>
        (await ssh(h, "systemctl list-units --all --plain --no-legend 'exo-deploy-revert-*'"))
          .split('\n')
          .filter(Boolean),
      mainPid: async (h) => Number(await ssh(h, 'systemctl show -p MainPID --value exo.service')),
      generationCount: async (h) =>
        (await ssh(h, 'nix-env -p /nix/var/nix/profiles/system --list-generations'))
          .split('\n')
          .filter(Boolean).length,
      pinNamespace: (namespace) => sandbox.setNamespace({ dir: dir as string, namespace }),
      useSudoUser: (host) => sandbox.useSudoUser({ dir: dir as string, host: host.name }),
      setExoSettings: (settings) => sandbox.setExoSettings({ dir: dir as string, settings }),
      setNixosSettings: (settings) => sandbox.setNixosSettings({ dir: dir as string, settings }),
      useNixosRebuild: (release) => sandbox.useNixosRebuild({ dir: dir as string, release }),
      pullState: async (h) => {
        const text = await ssh(h, 'cat /var/lib/exo-deploy/pull/state.json 2>/dev/null || true');
        return text ? JSON.parse(text) : null;
      },
      head: () => git('rev-parse', 'HEAD'),
      git,
      release: async (version, fault = 'none') => {
        await sandbox.release({ dir: dir as string, version, fault, log: quiet });
      },
      tuneConfig: (table, settings) => sandbox.tuneConfig(config, table, settings),
      ship: async (version, fault = 'none', faultOn = [], settings = {}) => {
        await sandbox.release({
          dir: dir as string,
          version,
          fault,
          faultOn,
          ...settings,
          log: quiet,
        });
        const r = await cli(['update', 'exo', '--commit']);
        if (r.exitCode !== 0) throw new Error(`update failed: ${r.stderr}`);
      },
    };
    const first = await cli(['deploy', '--yes']);
    if (first.exitCode !== 0) {
      // what failed on each host, before afterAll takes the fleet down
      const units = await Promise.all(
        fleet.hosts.map((h) =>
          ssh(
            h,
            'systemctl --failed --no-legend --plain; journalctl -b --no-pager -o short-precise -n 40 -u "exo*" || true',
          ).catch((e) => String(e)),
        ),
      );
      throw new Error(
        `the first deploy failed:\n${first.stdout}\n${first.stderr}\n${first.report}\n${units.map((u, i) => `--- ${fleet?.hosts[i]?.name}:\n${u}`).join('\n')}`,
      );
    }
  });

  afterAll(async () => {
    if (dir && sandbox) await sandbox.down({ dir, log: quiet });
  });

  return () => {
    if (!fleet) throw new Error('the fleet is not up');
    return fleet;
  };
}
