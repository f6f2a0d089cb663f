// The simulated fleet: a fake run layer answers the commands exo-deploy runs (locally and over
// ssh) from a small model of each host, and a fake fetch answers exo's API from the same model.
// The unit tests test the deploy logic with it (no latencies); the scale benchmark runs the
// real deploy command against 1,000 of its hosts, each operation that takes time (build, copy,
// activation, an API probe) taking the host's latency. Lookups are by index and exo's /state
// is built once per change of the fleet: the benchmark counts this model's own CPU time as
// the toolkit's.
import { setTimeout as sleep } from 'node:timers/promises';
import { MARKER_FILE } from '../../src/deploy/host-marker.js';
import type { Fetch, HttpResponse } from '../../src/health/http.js';
import { formatBuildOutputs, formatFlakeArchive } from '../../src/programs/nix.js';
import { formatDu } from '../../src/programs/coreutils.js';
import { formatTimestamp } from '../../src/programs/systemctl.js';
import { shellUnquote } from '../../src/run/shell-quote.js';
import type { Rule } from '../sim/run-layer.js';

/** isolated: the node sees no other node's current id, and no other node sees its current id,
 * though every /state still lists as many ids (the stale ones exo keeps for 30-40 s). */
type ExoBehaviour = 'healthy' | 'down' | 'runner-failed' | 'http-500' | 'isolated';

/** How long each operation takes on a host, in ms (0: answered at once). */
export interface Latency {
  build: number;
  copy: number;
  test: number;
  switch: number;
  probe: number;
}

const NO_LATENCY: Latency = { build: 0, copy: 0, test: 0, switch: 0, probe: 0 };

/** A Map that tells its fleet when it changes: exo's /state depends on it. */
class Behaviours extends Map<string, ExoBehaviour> {
  constructor(private readonly changed: () => void) {
    super();
  }
  override set(system: string, behaviour: ExoBehaviour): this {
    this.changed();
    return super.set(system, behaviour);
  }
  override delete(system: string): boolean {
    this.changed();
    return super.delete(system);
  }
}

interface SimHost {
  name: string;
  address: string;
  latency: Latency;
  running: string;
  /** The system it booted (/run/booted-system); null: none. */
  booted: string | null;
  /** What its boot loader starts (switch-to-configuration switch|boot writes it). */
  bootDefault: string;
  /** The kernel's boot id: a new one at every boot. */
  bootId: number;
  /** A reboot leaves it down: it never answers again. */
  staysDownAfterReboot?: boolean;
  profile: number;
  generations: Map<number, string>;
  pid: number;
  restarts: number;
  /** exo's node id: new at every start. */
  nodeId: string;
  /** Ids it had before its last start, which peers keep listing for a while. */
  formerIds: string[];
  /** What exo does when each system runs; unknown systems are healthy. */
  behaviour: Map<string, ExoBehaviour>;
  /** switch-to-configuration exit codes by "path action". */
  activationExit: Map<string, number>;
  unreachable?: boolean;
  /** /run/exo-deploy/deploy.lock, while a deploy holds the host. */
  marker?: string;
  markerWrites?: number;
  /** /run/exo-deploy exists (a fresh host has no such folder). */
  runDirExists?: boolean;
  /** Reached as this non-root user (`sudo = true`): what needs root fails unless run as
   * `sudo -n -- …`, as on a NixOS host with a deploy user. */
  user?: string;
  /** The commands run on the host through sudo (argv joined with spaces, without the sudo). */
  sudoCommands?: string[];
  /** The size of exo's state (what `du` says; the disk has 95 GiB free). */
  stateBytes?: number;
  /** journalctl fails (as for a user who may not read the system journal). */
  journalUnreadable?: boolean;
  /** This many harmless lines of exo's in every journal read. */
  journalNoise?: number;
  /** sshd is stopped: a new connection is refused, an open one still works. */
  refusesNewConnections?: boolean;
  /** Armed revert timers: unit → the revert script's arguments (status file, profile,
   * running, profile path, generation, nix-env). */
  revertTimers?: Map<string, string[]>;
  /** Exit statuses of reverts that ran, by status file. */
  revertStatus?: Map<string, number>;
}

export interface SimFleet {
  hosts: SimHost[];
  /** The system each host's build produces. */
  built: Map<string, string>;
  buildExit: number;
  /** switch-to-configuration's exit for `test` of a host's built system (4: units failed). */
  testExit: Map<string, number>;
  /** This machine's nixos-rebuild activates a given store path (nixos-rebuild-ng of NixOS 26.05). */
  storePath: boolean;
  /** By host: what runs after the built system's activation instead of it (another activation
   * racing this one). */
  runsInstead: Map<string, string>;
  /** Hosts whose built system stops sshd: once it is active, new connections are refused. */
  cutsSsh: Set<string>;
  /** The deployer's clock, when a test moves it (the reboot window); unset: the real one. */
  clock?: () => number;
  /** Systems whose pre-switch checks refuse any action but boot (a switch inhibitor changed,
   * as NixOS's switchInhibitors check finds it). */
  inhibited: Set<string>;
  /** Systems without bin/switch-to-configuration (system.switch.enable = false). */
  unswitchable: Set<string>;
  /** Programs missing on every host's PATH. */
  missingPrograms: Set<string>;
  log: string[];
  /** The environment each hook was started with. */
  hookEnvs: Record<string, string>[];
  /** What each system's release.json says, by store path; the default: see releaseOf. */
  releases: Map<string, object>;
  /** The kernel each system boots, by store path (default: KERNEL); its initrd and modules
   * follow it. */
  kernels: Map<string, string>;
  /** exo's instances and runners, the same in every node's /state. An instance's shards run
   * on the nodes it names, else on the hosts' current nodes in order (one per runner). */
  instances: Record<string, { model: string; runners: string[]; nodes?: string[] }>;
  /** Former node ids every /state still lists (peers drop one some 30-40 s after it stopped);
   * replaced, not changed in place. */
  lingering: readonly string[];
  runners: Record<string, string>;
  /** Called at every read of a /state, with how many have been read: a test's way to change exo while it is watched. */
  onState?: (host: SimHost, reads: number) => void;
  stateReads: number;
  /** Bumped at every change of a node id or a behaviour: what the cached /state lists. */
  epoch: number;
  byAddress: Map<string, SimHost>;
  byName: Map<string, SimHost>;
}

export const sys = (host: string, version: string) =>
  `/nix/store/${host}${version.replace(/\./g, '')}aaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-${host}-exo-${version}`;

/** latency: each host's (by its index), for the benchmark; none by default. */
export function simFleet(
  names: string[],
  { latency }: { latency?: (index: number) => Latency } = {},
): SimFleet {
  const changed = () => {
    fleet.epoch++;
  };
  const hosts: SimHost[] = names.map((name, i) => ({
    name,
    address: addressOf(i),
    latency: latency?.(i) ?? NO_LATENCY,
    running: sys(name, '1.0.0'),
    booted: sys(name, '1.0.0'),
    bootDefault: sys(name, '1.0.0'),
    bootId: 1,
    profile: 1,
    generations: new Map([[1, sys(name, '1.0.0')]]),
    pid: 100 + i,
    restarts: 0,
    nodeId: nodeIdOf(i, 100 + i),
    formerIds: [],
    behaviour: new Behaviours(changed),
    activationExit: new Map(),
  }));
  const fleet: SimFleet = {
    hosts,
    built: new Map(names.map((n) => [n, sys(n, '2.0.0')])),
    buildExit: 0,
    testExit: new Map(),
    storePath: false,
    runsInstead: new Map(),
    cutsSsh: new Set(),
    inhibited: new Set(),
    unswitchable: new Set(),
    missingPrograms: new Set(),
    log: [],
    hookEnvs: [],
    releases: new Map(),
    kernels: new Map(),
    instances: {},
    lingering: [],
    runners: {},
    stateReads: 0,
    epoch: 0,
    byAddress: new Map(hosts.map((h) => [h.address, h])),
    byName: new Map(hosts.map((h) => [h.name, h])),
  };
  return fleet;
}

/** 10.99.0.2 for the first host, on through 10.99.1.0 and beyond. */
const addressOf = (index: number) => `10.99.${(index + 2) >> 8}.${(index + 2) & 255}`;

/** The host an ssh target (user@address, or ssh://user@address?options) names. */
function hostAt(fleet: SimFleet, target: string | undefined): SimHost | undefined {
  const address = target
    ?.replace(/^ssh(-ng)?:\/\//, '')
    .split('?')[0]
    ?.split('@')
    .at(-1);
  return address === undefined ? undefined : fleet.byAddress.get(address);
}

/** Waits the host's latency for an operation, or answers at once. */
function after<T>(ms: number, answer: () => T): T | Promise<T> {
  return ms > 0 ? sleep(ms).then(answer) : answer();
}

/** 32 hex digits, as exo's are; derived from the host and its PID, so a restart changes it. */
const nodeIdOf = (index: number, pid: number) =>
  `${(index + 1).toString(16).padStart(4, '0')}${pid.toString(16).padStart(28, '0')}`;

/** A libp2p-era exo of the version in the path, namespace not pinned, unless the test says otherwise. */
export const release = (
  version: string,
  era: 'libp2p' | 'zenoh' | null = 'libp2p',
  namespace: string | null = null,
) =>
  era === null
    ? { schemaVersion: 1, exo: { version }, namespace }
    : {
        schemaVersion: 2,
        exo: {
          version,
          identity: version,
          revision: null,
          package: `/nix/store/x-exo-${version}`,
          era,
        },
        namespace,
        ports: { api: 52415 },
        stateDir: '/var/lib/exo',
      };

const versionOf = (path: string) => /exo-([\d.]+)$/.exec(path)?.[1] ?? 'unknown';

function activate(fleet: SimFleet, host: SimHost, path: string) {
  host.refusesNewConnections = fleet.cutsSsh.has(host.name) && path === fleet.built.get(host.name);
  if (host.running !== path) {
    host.running = path;
    host.pid += 10;
    host.restarts = 0;
    host.formerIds = [host.nodeId, ...host.formerIds];
    host.nodeId = nodeIdOf(fleet.hosts.indexOf(host), host.pid);
    fleet.epoch++;
  }
  fleet.log.push(`${host.name}: running ${versionOf(path)}`);
}

/** The run-layer rule that plays the fleet. */
export function fleetRule(fleet: SimFleet): Rule {
  return (argv, spec) => {
    if (argv[0] === 'ssh') {
      if (argv.includes('-O')) return {};
      const host = hostAt(fleet, argv.at(-2));
      if (!host) return { exitCode: 255, stderr: 'ssh: unknown host' };
      if (host.unreachable)
        return {
          exitCode: 255,
          stderr: `ssh: connect to host ${host.address} port 22: No route to host`,
        };
      if (host.refusesNewConnections && argv.includes('ControlPath=none')) {
        // The model's time runs fast: the host's revert timer, which nobody can confirm now, fires.
        for (const unit of host.revertTimers?.keys() ?? []) fireRevertTimer(fleet, host, unit);
        return {
          exitCode: 255,
          stderr: `ssh: connect to host ${host.address} port 22: Connection refused`,
        };
      }
      return onHost(fleet, host, shellUnquote(argv.at(-1) as string), spec.input);
    }
    return onDeployer(fleet, argv, spec.env);
  };
}

/** Where a system's kernel, initrd or kernel-modules link leads (what readlink -m prints). */
function bootLink(fleet: SimFleet, link: string): string | undefined {
  const m = /^(\/nix\/store\/[^/]+)\/(kernel|initrd|kernel-modules)$/.exec(link);
  if (!m) return undefined;
  const kernel = fleet.kernels.get(m[1] as string) ?? KERNEL;
  if (m[2] === 'kernel') return `/nix/store/${kernel}/bzImage`;
  if (m[2] === 'initrd') return `/nix/store/${kernel.replace('-linux-', '-initrd-linux-')}/initrd`;
  return `/nix/store/${kernel}-modules`;
}

/** The store name of the kernel every system boots unless a test gives it another. */
const KERNEL = 'k3rne1aaaaaaaaaaaaaaaaaaaaaaaaaa-linux-6.6.0';

function onDeployer(fleet: SimFleet, argv: readonly string[], env?: Record<string, string>) {
  const [program, action] = argv;
  // the built systems' boot links
  if (program === 'readlink')
    return {
      stdout: `${argv
        .slice(3)
        .map((p) => bootLink(fleet, p) ?? p)
        .join('\n')}\n`,
    };
  if (program === 'true' || program === 'notify') {
    fleet.hookEnvs.push({ argv: argv.join(' '), ...(env ?? {}) });
    return {};
  }
  if (program === 'nix' && action === '--version') return { stdout: 'nix (Nix) 2.24.0\n' };
  if (program === 'nix' && argv.includes('build') && argv.includes('--json')) {
    const names = argv
      .filter((a) => a.includes('#nixosConfigurations.'))
      .map((a) => /#nixosConfigurations\.([^.]+)\./.exec(a)?.[1] as string);
    fleet.log.push(`deployer: nix build ${names.join(' ')}`);
    if (fleet.buildExit !== 0)
      return { exitCode: fleet.buildExit, stderr: 'error: attribute missing' };
    // one Nix process evaluates and builds its hosts one after another
    const ms = names.reduce((sum, n) => sum + (fleet.byName.get(n)?.latency.build ?? 0), 0);
    return after(ms, () => ({
      stdout: formatBuildOutputs(names.map((n) => fleet.built.get(n) as string)),
    }));
  }
  if (program === 'nixos-rebuild' && action === '--help') {
    return {
      stdout: `usage: nixos-rebuild [-h] [--flake FLAKE]${fleet.storePath ? ' [--store-path STORE_PATH]' : ''} [--target-host TARGET_HOST] [--sudo] {switch,boot,test,build,dry-activate}\n`,
    };
  }
  // nixos-rebuild ACTION --store-path PATH --target-host TARGET [--sudo]
  if (program === 'nixos-rebuild' && fleet.storePath && argv[2] === '--store-path') {
    const path = argv[3] as string;
    const host = hostAt(fleet, argv[argv.indexOf('--target-host') + 1]);
    if (!host) return { exitCode: 1 };
    fleet.log.push(
      `deployer: nixos-rebuild ${action} --store-path ${host.name}${argv.includes('--sudo') ? ' --sudo' : ''}`,
    );
    // a non-root target user activates only through the remote sudo nixos-rebuild is told to use
    if (host.user && !argv.includes('--sudo'))
      return {
        exitCode: 1,
        stderr: "error: opening lock file '/nix/var/nix/profiles/system.lock': Permission denied",
      };
    if (action === 'test') {
      const exit = fleet.testExit.get(host.name) ?? 0;
      activate(fleet, host, path);
      return exit === 0
        ? { stdout: 'activating the configuration...' }
        : {
            exitCode: exit,
            stderr: `warning: the following units failed: exo.service\nCommand '…' returned non-zero exit status ${exit}.`,
          };
    }
    if (action === 'switch') {
      const n = Math.max(...host.generations.keys()) + 1;
      host.generations.set(n, path);
      host.profile = n;
      activate(fleet, host, path);
      return {};
    }
  }
  if (program === 'nix' && argv.includes('copy')) {
    const target = argv.find((a) => a.startsWith('ssh://') || a.startsWith('ssh-ng://'));
    return after(hostAt(fleet, target)?.latency.copy ?? 0, () => ({}));
  }
  if (program === 'nix' && argv.includes('archive')) {
    const host = hostAt(fleet, argv.at(-2));
    fleet.log.push(`deployer: flake archive to ${host?.name}`);
    return { stdout: formatFlakeArchive('/nix/store/f1akeaaaaaaaaaaaaaaaaaaaaaaaaaaa-source') };
  }
  if (program === 'sh' && argv[2]?.startsWith('for f do'))
    return { stdout: releaseFiles(fleet, argv.slice(4)) };
  if (program === 'test') return systemFileTest(fleet, argv);
  return undefined;
}

/** A NixOS system has nixos-version and, unless unswitchable, bin/switch-to-configuration;
 * every host runs a system; nothing else is there. */
function systemFileTest(fleet: SimFleet, args: readonly string[]) {
  const file = args.at(-1) as string;
  if (file === '/run/current-system' || file.endsWith('/nixos-version')) return { exitCode: 0 };
  if (file.endsWith('/bin/switch-to-configuration'))
    return {
      exitCode: fleet.unswitchable.has(file.replace('/bin/switch-to-configuration', '')) ? 1 : 0,
    };
  return { exitCode: 1 };
}

/** on: the host whose files they are (its /run/booted-system leads to the system it booted). */
function releaseFiles(fleet: SimFleet, files: readonly string[], on?: SimHost): string {
  return files
    .map((f) => {
      const named = f.replace('/etc/exo/release.json', '');
      const system = named === '/run/booted-system' ? (on?.booted ?? named) : named;
      return `${f}\0${JSON.stringify(fleet.releases.get(system) ?? release(versionOf(system)))}\0`;
    })
    .join('');
}

/** What a non-root user may not do on a NixOS host: nix-env on the system profile (it takes
 * the profile's lock), systemd's and the journal's privileged calls, anything under
 * /run/exo-deploy, the backup folder or exo's state (/var/lib/private is 0700). */
function needsRoot(args: readonly string[]): boolean {
  const [program] = args;
  if (program === 'cat') return !['/proc/meminfo', BOOT_ID].includes(args[1] as string);
  if (program === 'sh') return !args[2]?.startsWith('for f do');
  if (program === 'systemctl')
    return !['show', 'status', 'is-active', '--version'].includes(args[1] as string);
  if (['readlink', 'df', 'test'].includes(program as string))
    return args.some((a) => a.startsWith('/var/lib/'));
  return (
    [
      'nix-env',
      'systemd-run',
      'journalctl',
      'mkdir',
      'rm',
      'tar',
      'ln',
      'mv',
      'sync',
      'find',
      'ls',
    ].includes(program as string) || Boolean(program?.endsWith('/bin/switch-to-configuration'))
  );
}

function onHost(
  fleet: SimFleet,
  host: SimHost,
  command: string[],
  input: string | undefined,
): ReturnType<Rule> {
  const sudo = command[0] === 'sudo' && command[1] === '-n' && command[2] === '--';
  const args = sudo ? command.slice(3) : command;
  if (sudo) {
    host.sudoCommands ??= [];
    host.sudoCommands.push(args.join(' '));
  } else if (host.user && needsRoot(args)) {
    return { exitCode: 1, stderr: `${args[0]}: Permission denied` };
  }
  return asRoot(fleet, host, args, input);
}

function asRoot(
  fleet: SimFleet,
  host: SimHost,
  args: string[],
  _input: string | undefined,
): ReturnType<Rule> {
  const [program] = args;
  const markerFile = MARKER_FILE;
  if (program === 'cat' && args[1] === markerFile)
    return host.marker ? { stdout: host.marker } : { exitCode: 1, stderr: 'No such file' };
  if (program === 'mkdir' && args.at(-1) === '/run/exo-deploy') {
    host.runDirExists = true;
    return {};
  }
  // the deploy marker: written only where there is none, replaced or removed only while it
  // holds what the writer expects
  if (program === 'sh' && args[2]?.startsWith('mkdir -p') && args[4] === markerFile) {
    if (host.marker) return { exitCode: 17, stdout: host.marker };
    host.runDirExists = true;
    host.marker = _input;
    host.markerWrites = (host.markerWrites ?? 0) + 1;
    return {};
  }
  if (program === 'sh' && args[2]?.startsWith('mv -- "$1"') && args[4] === markerFile) {
    if (host.marker?.trim() !== args[5]) return { exitCode: 17 };
    host.marker = _input;
    host.markerWrites = (host.markerWrites ?? 0) + 1;
    return {};
  }
  if (program === 'sh' && args[2]?.includes('then rm -f') && args[4] === markerFile) {
    if (host.marker?.trim() === args[5]) host.marker = undefined;
    return {};
  }
  // the revert timer: its script written and the timer armed (sh -c 'mkdir … && cat > … && exec
  // systemd-run …'), confirmed (restarted), stopped; its status once it fired
  if (program === 'sh' && args[2]?.startsWith('mkdir -p') && args[6] === 'systemd-run')
    return asRoot(fleet, host, args.slice(6), _input);
  if (program === 'systemd-run' && args.some((a) => a.startsWith('--on-active='))) {
    const unit = (args.find((a) => a.startsWith('--unit=')) as string).slice('--unit='.length);
    // after "--": sh SCRIPT_FILE STATUS_FILE PROFILE RUNNING PROFILE_PATH GENERATION NIX_ENV
    host.revertTimers ??= new Map();
    host.revertTimers.set(unit, args.slice(args.indexOf('--') + 3));
    fleet.log.push(`${host.name}: revert timer armed`);
    return {};
  }
  if (program === 'sh' && args[2]?.includes('systemctl restart')) {
    return host.revertTimers?.has(args[4] as string)
      ? {}
      : {
          exitCode: 5,
          stderr: `Failed to restart ${args[4]}.timer: Unit ${args[4]}.timer not found.`,
        };
  }
  if (program === 'sh' && args[2]?.includes('systemctl stop')) {
    const unit = args[4] as string;
    if (!host.revertTimers?.delete(unit))
      return {
        exitCode: 5,
        stderr: `Failed to stop ${unit}.timer: Unit ${unit}.timer not loaded.`,
      };
    fleet.log.push(`${host.name}: revert timer stopped`);
    return {};
  }
  if (program === 'systemctl' && args[1] === 'is-active')
    return { exitCode: 3, stdout: 'inactive\n' };
  if (program === 'cat' && args.at(-1)?.endsWith('.status')) {
    const code = host.revertStatus?.get(args.at(-1) as string);
    return code === undefined
      ? { exitCode: 1, stderr: 'No such file or directory' }
      : { stdout: `${code}\n` };
  }
  if (program === 'sh' && args[2]?.includes('command -v'))
    return fleet.missingPrograms.has(args.at(-1) as string)
      ? { exitCode: 1 }
      : { stdout: '/nix/store/n1x-nix-2.24.0/bin/nix-env\n' };
  // systemd-run … -- sh -c SCRIPT sh STATUS_FILE ARGV…: run ARGV as the unit would
  if (program === 'systemd-run')
    return asRoot(fleet, host, args.slice(args.indexOf('--') + 6), _input);
  const profilePath = '/nix/var/nix/profiles/system';
  if (program === 'systemctl' && args[1] === 'show') {
    const behaviour = host.behaviour.get(host.running) ?? 'healthy';
    const active = behaviour === 'down' ? 'failed' : 'active';
    return {
      stdout: `LoadState=loaded\nActiveState=${active}\nSubState=${active === 'active' ? 'running' : 'failed'}\nResult=success\nNRestarts=${host.restarts}\nMainPID=${active === 'active' ? host.pid : 0}\nExecMainStartTimestamp=${formatTimestamp(Date.now() - 5000)}\nMemoryCurrent=1000\n`,
    };
  }
  if (program === 'systemctl' && args[1] === 'reboot') {
    reboot(fleet, host);
    return { exitCode: 255, stderr: 'Connection to host closed by remote host.' };
  }
  if (program === 'systemctl') return { stdout: 'systemd 256 (256.8)\n' };
  if (program === 'journalctl') {
    if (host.journalUnreadable)
      return {
        exitCode: 1,
        stderr: 'No journal files were opened due to insufficient permissions.\n',
      };
    const behaviour = host.behaviour.get(host.running) ?? 'healthy';
    const line = (message: string) =>
      `${JSON.stringify({ __REALTIME_TIMESTAMP: `${Date.now() * 1000}`, MESSAGE: message })}\n`;
    return {
      stdout: `${line('INFO chatter').repeat(host.journalNoise ?? 0)}${behaviour === 'runner-failed' ? line('RuntimeError: Runner found to be dead') : ''}`,
    };
  }
  if (program === 'readlink') {
    return {
      stdout: `${args
        .slice(3)
        .map((p) => {
          if (p === '/run/current-system') return host.running;
          if (p === profilePath) return host.generations.get(host.profile);
          if (p === '/run/booted-system') return host.booted ?? p;
          const boot = bootLink(fleet, p.replace(/^\/run\/booted-system\//, `${host.booted}/`));
          if (boot) return boot;
          const m = /-(\d+)-link$/.exec(p);
          return m ? (host.generations.get(Number(m[1])) ?? p) : p;
        })
        .join('\n')}\n`,
    };
  }
  if (program === 'nix-env') {
    if (args[3] === '--list-generations') {
      return {
        stdout: [...host.generations.keys()]
          .sort((a, b) => a - b)
          .map((n) => `   ${n}   2026-11-2${n} 10:00:00   ${n === host.profile ? '(current)' : ''}`)
          .join('\n'),
      };
    }
    if (args[3] === '--switch-generation') {
      host.profile = Number(args[4]);
      fleet.log.push(`${host.name}: profile → generation ${host.profile}`);
      return {};
    }
    if (args[3] === '--set') {
      const n = Math.max(...host.generations.keys()) + 1;
      host.generations.set(n, args[4] as string);
      host.profile = n;
      return {};
    }
  }
  if (program?.endsWith('/bin/switch-to-configuration')) {
    const action = args[1] as string;
    const ms = action === 'test' || action === 'switch' ? host.latency[action] : 0;
    return after(ms, () => switchToConfiguration(fleet, host, program, action));
  }
  if (program === 'nix' && args[1] === '--version') return { stdout: 'nix (Nix) 2.24.0\n' };
  // build_on = "target": the host builds its own system from the flake copied to its store
  if (
    program === 'nix' &&
    args.includes('build') &&
    args.some((a) => a.startsWith('path:/nix/store/'))
  ) {
    fleet.log.push(`${host.name}: nix build ${host.name}`);
    return { stdout: formatBuildOutputs([fleet.built.get(host.name) as string]) };
  }
  if (program === 'nix' && args.includes('show-config'))
    return { stdout: 'experimental-features = flakes nix-command\n' };
  if (program === 'nix' && args.includes('config'))
    return { stdout: 'experimental-features = flakes nix-command\n' };
  if (program === 'nix' && args.includes('diff-closures'))
    return { stdout: 'exo: 1.0.0 → 2.0.0, +1.2 KiB\n' };
  if (program === 'cat' && args[1] === BOOT_ID)
    return { stdout: `${String(host.bootId).padStart(8, '0')}-b007-4d00-8000-000000000000\n` };
  if (program === 'cat') return { stdout: 'MemTotal: 1000 kB\nMemAvailable: 500 kB\n' };
  if (program === 'df')
    return {
      stdout:
        'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 100000000 1 99999999 1% /\n',
    };
  if (program === 'du') return { stdout: formatDu(host.stateBytes ?? 4096, args.at(-1) as string) };
  // exo's state is there when the test gave it a size
  if (program === 'test' && host.stateBytes !== undefined && args.at(-1) === '/var/lib/exo')
    return {};
  if (program === 'test') return systemFileTest(fleet, args);
  if (program === 'sh' && args[2]?.startsWith('for f do'))
    return { stdout: releaseFiles(fleet, args.slice(4), host) };
  // backup plumbing: mkdir, tar, sh -c (write files, sha256sum), ln, mv, sync
  if (['mkdir', 'tar', 'sh', 'ln', 'mv', 'sync', 'find', 'ls', 'rm'].includes(program as string))
    return {};
  return undefined;
}

function switchToConfiguration(fleet: SimFleet, host: SimHost, program: string, action: string) {
  const path = program.replace('/bin/switch-to-configuration', '');
  if (fleet.inhibited.has(path) && action !== 'boot') {
    fleet.log.push(`${host.name}: switch-to-configuration ${action} ${versionOf(path)} refused`);
    return {
      exitCode: 1,
      stderr:
        "There are changes to critical components of the system:\n  dbus-implementation: dbus → broker\nPre-switch check 'switchInhibitors' failed\nPre-switch checks failed\n",
    };
  }
  // the pre-switch checks alone: they passed, nothing changes
  if (action === 'check' || action === 'dry-activate') return { exitCode: 0 };
  const builtTest =
    action === 'test' && path === fleet.built.get(host.name)
      ? fleet.testExit.get(host.name)
      : undefined;
  const exit = host.activationExit.get(`${path} ${action}`) ?? builtTest ?? 0;
  fleet.log.push(
    `${host.name}: switch-to-configuration ${action} ${versionOf(path)}${exit ? ` → exit ${exit}` : ''}`,
  );
  // as switch-to-configuration-ng: switch and boot install the boot loader before activating
  if ((exit === 0 || exit === 4) && (action === 'switch' || action === 'boot'))
    host.bootDefault = path;
  // exit 4: the system is active, but units failed
  if ((exit === 0 || exit === 4) && action !== 'boot')
    activate(
      fleet,
      host,
      path === fleet.built.get(host.name) ? (fleet.runsInstead.get(host.name) ?? path) : path,
    );
  return exit === 4
    ? { exitCode: 4, stderr: 'warning: the following units failed: exo.service\n' }
    : { exitCode: exit };
}

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

/** A reboot: what runs under /run is gone (markers, transient timers), the boot default is
 * booted and activated, exo starts anew; or the host never answers again. */
function reboot(fleet: SimFleet, host: SimHost): void {
  fleet.log.push(`${host.name}: reboot → ${versionOf(host.bootDefault)}`);
  host.bootId++;
  host.marker = undefined;
  host.revertTimers?.clear();
  if (host.staysDownAfterReboot) {
    host.unreachable = true;
    return;
  }
  host.booted = host.bootDefault;
  host.running = '';
  activate(fleet, host, host.bootDefault);
}

/** What the revert script does when its timer fires: the profile back, then the system it ran. */
function fireRevertTimer(fleet: SimFleet, host: SimHost, unit: string): void {
  const [statusFile, , running, profilePath, generation] = host.revertTimers?.get(unit) ?? [];
  if (!statusFile || !running) return;
  host.revertTimers?.delete(unit);
  fleet.log.push(`${host.name}: revert timer fired`);
  if (
    profilePath !== '-' &&
    host.generations.get(host.profile) !== profilePath &&
    generation !== '-'
  )
    host.profile = Number(generation);
  activate(fleet, host, running);
  host.revertStatus ??= new Map();
  host.revertStatus.set(statusFile, 0);
}

const isolated = (h: SimHost) => h.behaviour.get(h.running) === 'isolated';

/** The id viewer's /state lists for h: its current one, or, when either is isolated, the stale one it had before. */
function seenBy(viewer: SimHost, h: SimHost): string | undefined {
  if (h === viewer || (!isolated(viewer) && !isolated(h))) return h.nodeId;
  return h.formerIds[0];
}

/** The node ids each /state lists, as JSON: one list for every viewer while no node is
 * isolated, built once per change of the fleet (or of its lingering ids). */
function topology(fleet: SimFleet): (viewer: SimHost) => string {
  let epoch = -1;
  let lingering: readonly string[] | null = null;
  let shared: string | null = null;
  return (viewer) => {
    if (epoch !== fleet.epoch || lingering !== fleet.lingering) {
      epoch = fleet.epoch;
      lingering = fleet.lingering;
      shared = fleet.hosts.some(isolated)
        ? null
        : JSON.stringify([...fleet.hosts.map((h) => h.nodeId), ...fleet.lingering]);
    }
    return (
      shared ??
      JSON.stringify([
        ...fleet.hosts.map((h) => seenBy(viewer, h)).filter((id) => id !== undefined),
        ...fleet.lingering,
      ])
    );
  };
}

const answer = (status: number, body: string): HttpResponse => ({
  ok: status >= 200 && status < 300,
  status,
  text: async () => body,
});

/** exo's API as the fleet model says each host's running system behaves, after the host's
 * probe latency. */
export function fleetFetch(fleet: SimFleet): Fetch {
  const nodes = topology(fleet);
  const models = JSON.stringify({ data: [] });
  const tagged = (status: string, inner: object = {}) => ({ [status]: inner });
  // The last /state body, given again while its parts are the same: a new copy of a
  // 1,000-node list for every read would cost the benchmark's deploy memory it does not use.
  let last = { nodes: '', runners: '', instances: '', body: '' };
  const state = (nodes: string, runners: string, instances: string) => {
    if (nodes !== last.nodes || runners !== last.runners || instances !== last.instances)
      last = {
        nodes,
        runners,
        instances,
        body: `{"topology":{"nodes":${nodes}},"runners":${runners},"instances":${instances}}`,
      };
    return last.body;
  };
  const failedRunner = JSON.stringify({
    r1: tagged('RunnerFailed', { errorMessage: 'Terminated (exitcode=1)' }),
  });
  return async (url, init) => {
    const { hostname, pathname } = new URL(url);
    const host = fleet.byAddress.get(hostname);
    if (host?.latency.probe) await sleep(host.latency.probe, undefined, { signal: init?.signal });
    const behaviour = host ? (host.behaviour.get(host.running) ?? 'healthy') : 'down';
    if (!host || behaviour === 'down')
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    if (behaviour === 'http-500' && pathname !== '/node_id')
      return answer(500, 'Internal Server Error');
    if (pathname === '/node_id') return answer(200, JSON.stringify(host.nodeId));
    if (pathname === '/models') return answer(200, models);
    if (pathname !== '/state') return answer(404, JSON.stringify({ detail: 'Not Found' }));
    fleet.onState?.(host, ++fleet.stateReads);
    const runners =
      behaviour === 'runner-failed'
        ? failedRunner
        : JSON.stringify(
            Object.fromEntries(
              Object.entries(fleet.runners).map(([id, status]) => [
                id,
                tagged(
                  status,
                  status === 'RunnerFailed' ? { errorMessage: 'Terminated (exitcode=1)' } : {},
                ),
              ]),
            ),
          );
    const instances = JSON.stringify(
      Object.fromEntries(
        Object.entries(fleet.instances).map(([id, i]) => [
          id,
          tagged('MlxRingInstance', {
            instanceId: id,
            shardAssignments: {
              modelId: i.model,
              nodeToRunner: Object.fromEntries(
                i.runners.map((r, n) => [i.nodes?.[n] ?? fleet.hosts[n]?.nodeId ?? `node${n}`, r]),
              ),
            },
          }),
        ]),
      ),
    );
    return answer(200, state(nodes(host), runners, instances));
  };
}
