// The sandbox fleet: N real systemd hosts (systemd-nspawn containers over a cached Debian
// base, each in its own network namespace on one bridge, with sshd and Nix), plus the two
// git repositories a real exo fleet has: DIR/exo-src (the `exo` flake input) and
// DIR/config (the config flake with one nixosConfigurations entry per host and an
// exo-deploy.toml that targets the hosts).
//
//   up({ dir, hosts })      boots h1…hN, writes the repos, deploys the first release
//   release({ dir, version, fault, faultOn, era, packageVersion, loadSeconds, declaredEra })
//                           commits a new exo release to DIR/exo-src
//   down({ dir })           stops exactly what up made (by PID and name); safe twice
//
// DIR/sandbox.json records what up made, written atomically after every step, so that
// down cleans up after an up that failed halfway.
import { $, fs, path } from 'zx';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ensureRootfs, NIX_CONF } from './rootfs.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const NIXOS_REBUILD = path.join(REPO, 'sandbox/bin/nixos-rebuild');
const NSPAWN_REBOOTING = path.join(REPO, 'sandbox/bin/nspawn-rebooting');
export const STANDIN_DIR = path.join(REPO, 'sandbox/exo-standin');
export const STANDIN = path.join(STANDIN_DIR, 'exo.mjs');
// the exo stand-in that up and release ship: EXO_SANDBOX_STANDIN (tests; its folder, or one
// file that replaces exo.mjs), else the project's folder
const standinPath = () => process.env.EXO_SANDBOX_STANDIN || STANDIN_DIR;
const TEMPLATES = path.join(REPO, 'sandbox/templates');
export const API_PORT = 52415;
export const FIRST_VERSION = '0.1.0';
const SUBNETS = [10, 250]; // 10.231.K.0/24, K in this range
const GIT_ID = [
  '-c',
  'user.name=exo-deploy sandbox',
  '-c',
  'user.email=sandbox@exo-deploy.invalid',
];

/** The Nix settings for a machine without a network (as NIX_CONFIG). */
export const NIX_CONFIG = NIX_CONF.trim();
export const nixEnv = () => ({ ...process.env, NIX_CONFIG: process.env.NIX_CONFIG || NIX_CONFIG });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A host's machine id as a UUID, its own in this sandbox and the same at each of its boots. */
const machineUuid = (dir, name) => {
  const h = createHash('sha256').update(`${dir}\0${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};
const defaultLog = (m) => console.error(`[sandbox] ${m}`);

export const statePath = (dir) => path.join(path.resolve(dir), 'sandbox.json');

/**
 * @typedef {{name: string, address: string, netns: string, veth: string, pid: number, log: string, namespace?: string}} StateHost
 * @typedef {{version: number, dir: string, created: string, rootfs: string, subnet: number, bridge: string,
 *   hosts: StateHost[], cidr: string, gateway: string, exoSrc: string, config: string, deployConfig: string,
 *   sshKey: string, bootSeconds?: number, upSeconds?: number}} SandboxState
 */
/** @returns {Promise<SandboxState|null>} what up recorded in DIR/sandbox.json, or null */
export async function readState(dir) {
  try {
    return JSON.parse(await fs.readFile(statePath(dir), 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
}

async function writeState(dir, state) {
  const file = statePath(dir);
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await fs.rename(tmp, file);
}

/** ssh options for the sandbox's hosts (also what exo-deploy.toml's ssh_options holds). */
export function sshOptions(dir) {
  return [
    '-i',
    path.join(path.resolve(dir), 'ssh/id_ed25519'),
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
  ];
}

/**
 * Runs a command on a host over ssh; `cmd` is one string for the remote shell.
 * @returns {Promise<import('zx').ProcessOutput>} (nothrow: check .exitCode)
 */
export function sshHost(dir, address, cmd, { timeout = 30_000 } = {}) {
  return $({
    nothrow: true,
    quiet: true,
    timeout,
  })`ssh ${sshOptions(dir)} -o BatchMode=yes -o ConnectTimeout=5 root@${address} ${cmd}`;
}

function pidAlive(pid, marker) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) Z/.test(stat)) return false; // a zombie has stopped
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // systemd-nspawn, or the loop that boots it again after a reboot (sandbox/bin)
    return cmdline.includes('nspawn') && (!marker || cmdline.includes(`\0-M${marker}\0`));
  } catch {
    return false;
  }
}

const parentOf = (pid) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
};

// The processes whose parent is `pid`.
function childrenOf(pid) {
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (parentOf(entry) === pid) found.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return found;
}

/** A host's systemd-nspawn process now (it is a new one after each reboot); null: none. */
export const nspawnOf = (loopPid) => hostProcesses(loopPid)?.nspawn ?? null;

// A host's systemd-nspawn (the child of the loop that boots it again) and its container's init
// (PID 1 in its PID namespace, the child of systemd-nspawn); null for what is not running.
function hostProcesses(loopPid) {
  for (const nspawn of childrenOf(loopPid)) {
    for (const child of childrenOf(nspawn)) {
      try {
        const nspid = /^NSpid:\s+(.*)$/m
          .exec(fs.readFileSync(`/proc/${child}/status`, 'utf8'))?.[1]
          .trim()
          .split(/\s+/);
        if (nspid && nspid.length > 1 && nspid.at(-1) === '1') return { nspawn, init: child };
      } catch {
        /* gone */
      }
    }
    return { nspawn, init: null };
  }
  return { nspawn: null, init: null };
}

/**
 * PIDs of container inits whose systemd-nspawn is gone (leaked containers: init of a nested
 * PID namespace, re-parented to this machine's PID 1). For tests: should always be empty.
 * @returns {number[]}
 */
export function orphanedContainers() {
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (ppid !== '1' || state === 'Z') continue;
      const nspid = /^NSpid:\s+(.*)$/m
        .exec(fs.readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]
        .trim()
        .split(/\s+/);
      if (nspid && nspid.length > 1 && nspid.at(-1) === '1') found.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return found;
}

const signal = (pid, sig) => {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
};

// Stops one host: SIGTERM to the loop that runs its systemd-nspawn, which passes it on (a clean
// shutdown of the container), repeated every 2 s because a container that is still booting
// drops it (its init has no handler yet); after `graceMs`, SIGKILL to the container's init,
// which ends its PID namespace, then to nspawn and the loop.
async function stopHost(h, graceMs, log) {
  const deadline = Date.now() + graceMs;
  let { nspawn, init } = hostProcesses(h.pid);
  for (let next = 0; pidAlive(h.pid, h.name) && Date.now() < deadline; await sleep(100)) {
    if (Date.now() >= next) {
      // a reboot under way starts a new nspawn and init
      ({ nspawn, init } = hostProcesses(h.pid));
      signal(h.pid, 'SIGTERM');
      next = Date.now() + 2000;
    }
  }
  if (pidAlive(h.pid, h.name)) {
    log(
      `${h.name}: systemd-nspawn (loop PID ${h.pid}) still runs after ${graceMs / 1000} s; SIGKILL to the container's init${init ? ` (PID ${init})` : ''}`,
    );
    if (init) signal(init, 'SIGKILL');
    for (let i = 0; i < 50 && pidAlive(h.pid, h.name); i++) await sleep(100);
    for (const pid of [nspawn, h.pid]) if (pid && pidAlive(pid, h.name)) signal(pid, 'SIGKILL');
    for (let i = 0; i < 50 && pidAlive(h.pid, h.name); i++) await sleep(100);
  }
  // nspawn gone: its container's init must be gone too
  if (
    init &&
    fs.existsSync(`/proc/${init}`) &&
    !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${init}/stat`, 'utf8'))
  ) {
    signal(init, 'SIGKILL');
  }
}

async function linkExists(name) {
  return (await $({ nothrow: true, quiet: true })`ip link show dev ${name}`).exitCode === 0;
}

async function netnsExists(name) {
  return fs.pathExists(`/run/netns/${name}`);
}

// A free 10.231.K.0/24: creating the bridge is the atomic claim (another sandbox that
// races for the same K gets "File exists" and moves on).
async function claimSubnet(state, dir, log) {
  const used = (await $({ quiet: true })`ip -4 -o addr show`).stdout;
  const span = SUBNETS[1] - SUBNETS[0] + 1;
  const start = process.pid % span;
  for (let i = 0; i < span; i++) {
    const k = SUBNETS[0] + ((start + i) % span);
    if (used.includes(` 10.231.${k}.`)) continue;
    const bridge = `exobr${k}`;
    // recorded before the claim: an interrupted claim is cleaned up by down
    state.claiming = bridge;
    await writeState(dir, state);
    const r = await $({ nothrow: true, quiet: true })`ip link add ${bridge} type bridge`;
    delete state.claiming;
    if (r.exitCode !== 0) continue;
    log(`subnet 10.231.${k}.0/24, bridge ${bridge}`);
    return { k, bridge };
  }
  throw new Error('no free 10.231.K.0/24 subnet for the sandbox');
}

async function waitForHost(dir, host, { timeoutMs = 90_000, signal } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (!pidAlive(host.pid, host.name)) {
      const tail = await fs.readFile(host.log, 'utf8').catch(() => '');
      throw new Error(
        `${host.name}: systemd-nspawn (PID ${host.pid}) exited while booting:\n${tail.split('\n').slice(-20).join('\n')}`,
      );
    }
    const r = await sshHost(dir, host.address, 'systemctl is-system-running', { timeout: 10_000 });
    last = r.stdout.trim() || r.stderr.trim();
    if (last === 'running' || last === 'degraded') return last;
    await sleep(r.exitCode === 255 ? 500 : 250);
  }
  throw new Error(
    `${host.name} (${host.address}) did not finish booting within ${timeoutMs / 1000} s (last: ${last || 'no answer'})`,
  );
}

async function git(repo, ...args) {
  return $({ cwd: repo, quiet: true })`git ${GIT_ID} ${args}`;
}

const ERAS = ['libp2p', 'zenoh'];
/** The era a release defaults to, as the stand-in and the exo-src flake decide it: 1.0.x is libp2p. */
export const defaultEra = (version) => (/^1\.0\./.test(String(version)) ? 'libp2p' : 'zenoh');

/**
 * DIR/exo-src/release.json: the stand-in's settings (sandbox/exo-standin/README.md) plus
 * declared_era, the era the hosts' configuration will claim for this release (sandbox only).
 * @param {{version: string, fault?: string, faultOn?: string[], era?: string, packageVersion?: string, loadSeconds?: number, declaredEra?: string}} settings
 */
/** The kernel of a `release --needs-reboot`: another than the hosts' default (6.6.0). */
const NEEDS_REBOOT_KERNEL = '6.6.1';

function releaseJson({
  version,
  fault = 'none',
  faultOn = [],
  era,
  packageVersion = '0.3.70',
  loadSeconds = 1,
  declaredEra,
  needsReboot = false,
}) {
  const realEra = era ?? defaultEra(version);
  return `${JSON.stringify(
    {
      version,
      era: realEra,
      package_version: packageVersion,
      runner_load_seconds: loadSeconds,
      fault,
      fault_on: faultOn,
      declared_era: declaredEra ?? realEra,
      // the kernel the hosts' systems boot with this release (as a nixpkgs update brings one)
      ...(needsReboot ? { kernel: NEEDS_REBOOT_KERNEL } : {}),
    },
    null,
    2,
  )}\n`;
}

/**
 * Puts the stand-in into DIR/exo-src/exo-standin (the package's source folder): a folder (or
 * the folder of a file named exo.mjs) without its own release.json (the package's comes from
 * DIR/exo-src/release.json), or any other single file as exo.mjs.
 */
async function copyStandin(repo, log) {
  const standin = standinPath();
  const dest = path.join(repo, 'exo-standin');
  await fs.remove(dest);
  await fs.remove(path.join(repo, 'exo.mjs')); // the single-file layout of older sandboxes
  await fs.mkdirp(dest);
  const stat = await fs.stat(standin).catch(() => null);
  const folder = stat?.isDirectory()
    ? standin
    : stat && path.basename(standin) === 'exo.mjs'
      ? path.dirname(standin)
      : null;
  if (folder) {
    await fs.copy(folder, dest, {
      filter: (src) =>
        !['release.json', 'node_modules'].includes(path.basename(src)) ||
        path.dirname(src) !== folder,
    });
  } else if (stat) {
    await fs.copy(standin, path.join(dest, 'exo.mjs'));
  } else {
    log(`warning: ${standin} is missing; the exo package carries a placeholder that exits 1`);
    await fs.writeFile(
      path.join(dest, 'exo.mjs'),
      "console.error('exo stand-in missing: sandbox/exo-standin'); process.exit(1);\n",
    );
  }
}

async function writeExoSrc(dir, log) {
  const repo = path.join(dir, 'exo-src');
  await fs.mkdirp(repo);
  await fs.copy(path.join(TEMPLATES, 'exo-src'), repo);
  await copyStandin(repo, log);
  await fs.writeFile(path.join(repo, 'release.json'), releaseJson({ version: FIRST_VERSION }));
  await $({ cwd: repo, quiet: true })`git init -q -b main`;
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', `exo ${FIRST_VERSION}`);
  return repo;
}

function hostsNix(hosts) {
  const lines = hosts.map(
    (h) =>
      `    ${h.name} = { address = "${h.address}";${h.namespace ? ` namespace = "${h.namespace}";` : ''} };`,
  );
  return `# Generated by exo-deploy's sandbox (up): the fleet's hosts, exo's API port, and the\n# services.exo settings (exo.json, setExoSettings) and other NixOS settings (nixos.json,\n# setNixosSettings) every host gets.\n{\n  apiPort = ${API_PORT};\n  exo = builtins.fromJSON (builtins.readFile ./exo.json);\n  nixos = builtins.fromJSON (builtins.readFile ./nixos.json);\n  hosts = {\n${lines.join('\n')}\n  };\n}\n`;
}

const tomlStr = (s) => JSON.stringify(s); // a TOML basic string is JSON-compatible for these
function deployToml(dir, hosts, { lone = false } = {}) {
  const opts = sshOptions(dir).map(tomlStr).join(', ');
  const hostTables = hosts.map(
    (h) =>
      `[hosts.${h.name}]\ntarget = ${tomlStr(`root@${h.address}`)}\napi = ${tomlStr(`http://${h.address}:${API_PORT}`)}\n`,
  );
  return [
    '# exo-deploy configuration for the sandbox fleet (written by `npm run sandbox -- up`).',
    'flake = "."',
    'reports_dir = "reports"',
    '',
    '[defaults]',
    `ssh_options = [${opts}]`,
    "# the hosts are on this machine's bridge: a connection takes milliseconds, so a cut-off host",
    '# may revert itself sooner than a remote one would',
    'confirm_timeout = "20s"',
    '',
    '[timeouts]',
    'ssh_connect = "5s"',
    '',
    // (a comment inside the table would end the keys tuneConfig edits)
    ...(lone ? ['# each host is a cluster of its own (pull mode): it sees itself alone'] : []),
    '[health]',
    ...(lone ? ['cluster_size = 1'] : []),
    'soak = "5s"',
    'ready_timeout = "30s"',
    'timeout = "2s"',
    '',
    '[backup]',
    'dir = "/var/backups/exo"',
    'keep = 5',
    '',
    ...hostTables,
    '[programs]',
    `nixos_rebuild = ${tomlStr(NIXOS_REBUILD)}`,
    '',
  ].join('\n');
}

/**
 * nixpkgs' lib folder, for the hosts' NixOS module system: $NIXPKGS_LIB, else the copy cached
 * at ~/.cache/exo-deploy/nixpkgs.lib/lib (there is no network to fetch one). null: none here.
 */
export function nixpkgsLib() {
  const cache = process.env.XDG_CACHE_HOME || path.join(process.env.HOME || '/root', '.cache');
  const dir = process.env.NIXPKGS_LIB
    ? path.resolve(process.env.NIXPKGS_LIB)
    : path.join(cache, 'exo-deploy/nixpkgs.lib/lib');
  return fs.existsSync(path.join(dir, 'default.nix')) ? dir : null;
}

/** What the config repository copies from exo-deploy: the module, and the toolkit's bundle. */
export const MODULE_FILES = [
  'exo.nix',
  'exo-cli.nix',
  'exo-health-counter.sh',
  'exo-health-act.sh',
  'exo-reboot-guard.sh',
];
const TOOLKIT_FILES = ['package.json', 'dist/cli'];

async function writeConfig(dir, hosts, { lone = false } = {}) {
  const lib = nixpkgsLib();
  if (!lib)
    throw new Error(
      "up: the hosts are NixOS configurations evaluated with nixpkgs' lib, and none is here: set NIXPKGS_LIB to the lib/ folder of nixpkgs or nix-community/nixpkgs.lib (or put a copy at ~/.cache/exo-deploy/nixpkgs.lib/lib)",
    );
  if (!(await fs.pathExists(path.join(REPO, 'dist/cli/cli.js'))))
    throw new Error(
      `up: ${path.join(REPO, 'dist/cli/cli.js')} is missing (the hosts' exo-deploy package): run \`npm run build\` first`,
    );
  const repo = path.join(dir, 'config');
  await fs.mkdirp(repo);
  await fs.copy(path.join(TEMPLATES, 'config'), repo);
  // the hosts run the module's own units, and the toolkit its health and backup units call
  for (const f of MODULE_FILES)
    await fs.copy(path.join(REPO, 'modules', f), path.join(repo, 'nix/modules', f));
  for (const f of TOOLKIT_FILES) await fs.copy(path.join(REPO, f), path.join(repo, 'toolkit', f));
  await fs.writeFile(path.join(repo, 'exo.json'), '{}\n');
  await fs.writeFile(path.join(repo, 'nixos.json'), '{}\n');
  const flake = path.join(repo, 'flake.nix');
  await fs.writeFile(
    flake,
    (await fs.readFile(flake, 'utf8'))
      .replace('@EXO_URL@', `git+file://${path.join(dir, 'exo-src')}`)
      .replace('@NIXPKGS_LIB_URL@', `path:${lib}`),
  );
  await fs.writeFile(path.join(repo, 'hosts.nix'), hostsNix(hosts));
  await fs.writeFile(path.join(repo, 'exo-deploy.toml'), deployToml(dir, hosts, { lone }));
  await fs.writeFile(path.join(repo, '.gitignore'), 'result\nresult-*\nreports/\n');
  await $({ cwd: repo, quiet: true })`git init -q -b main`;
  await git(repo, 'config', 'user.name', 'exo-deploy sandbox');
  await git(repo, 'config', 'user.email', 'sandbox@exo-deploy.invalid');
  await git(repo, 'add', '-A');
  await $({ cwd: repo, quiet: true, env: nixEnv() })`nix flake lock`;
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-q', '-m', 'sandbox fleet configuration');
  return repo;
}

/** Where NixOS's systemd finds programs for units that set no PATH: its own bin folder only. */
export const UNIT_PATH = '/usr/lib/exo-sandbox/systemd/bin';

/**
 * Gives the hosts' units the PATH that units get on NixOS: nixpkgs builds systemd with its own
 * bin folder as the default PATH, so a unit that sets none finds systemctl and journalctl but no
 * sh, mkdir or cat. Returns the bind mounts (from, to) that do it: a manager drop-in setting
 * DefaultEnvironment=PATH, and a folder of links to the container's systemd programs.
 */
async function nixosUnitEnvironment(dir, rootfsPath) {
  const base = path.join(dir, 'nixos');
  const bin = path.join(base, 'systemd-bin');
  const confD = path.join(base, 'system.conf.d');
  await fs.mkdirp(bin);
  await fs.mkdirp(confD);
  const names = (await fs.readdir(path.join(rootfsPath, 'usr/bin'))).filter((n) =>
    /^(systemd-|systemctl$|journalctl$|busctl$|loginctl$|hostnamectl$|localectl$|timedatectl$|udevadm$)/.test(
      n,
    ),
  );
  for (const n of names)
    await fs.symlink(`/usr/bin/${n}`, path.join(bin, n)).catch((e) => {
      if (e.code !== 'EEXIST') throw e;
    });
  await fs.writeFile(
    path.join(confD, 'nixos-unit-path.conf'),
    `# as on NixOS: units that set no PATH get systemd's own programs only\n[Manager]\nDefaultEnvironment=PATH=${UNIT_PATH}\n`,
  );
  return [
    [bin, UNIT_PATH],
    [confD, '/etc/systemd/system.conf.d'],
  ];
}

/**
 * Boots a sandbox fleet of `hosts` hosts into `dir` and deploys the first release.
 * On failure, everything made so far is stopped and removed before the error is thrown.
 * @param {{dir: string, hosts?: number, deploy?: boolean, pull?: {interval: number} | null, signal?: AbortSignal, log?: (m: string) => void}} opts
 *   deploy: end with deployFirstRelease(dir) (default true); pull: the hosts follow DIR/config's
 *   main branch every `interval` s (services.exo.autoDeploy, the repository served by git's
 *   daemon on the bridge); signal: abort (e.g. on Ctrl-C) between steps, which cleans up like a
 *   failure
 * @returns {Promise<SandboxState>} the state written to DIR/sandbox.json
 */
export async function up({
  dir,
  hosts: count = 3,
  deploy = true,
  pull = null,
  signal,
  log = defaultLog,
}) {
  if (!dir) throw new Error('up: --dir is required');
  if (!Number.isInteger(count) || count < 1 || count > 32)
    throw new Error(`up: --hosts must be 1..32, got ${count}`);
  dir = path.resolve(dir);
  const t0 = Date.now();
  const existing = await readState(dir);
  if (existing)
    throw new Error(`${statePath(dir)} exists: a sandbox is (or was) up in ${dir}; run down first`);
  for (const sub of ['exo-src', 'config', 'hosts']) {
    if (await fs.pathExists(path.join(dir, sub)))
      throw new Error(`${path.join(dir, sub)} exists: choose an empty --dir`);
  }
  if (pull && !(Number.isInteger(pull.interval) && pull.interval >= 5))
    throw new Error(`up: --interval must be a whole number of seconds >= 5, got ${pull.interval}`);
  await fs.mkdirp(path.join(dir, 'logs'));
  const rootfs = await ensureRootfs({ log });
  // in pull mode the hosts build their own systems: the flake's inputs that live on this
  // machine (exo's source, nixpkgs' lib) are seen inside at the same paths, read-only
  const lib = nixpkgsLib();
  const pullBinds = pull
    ? [path.join(dir, 'exo-src'), lib].filter(Boolean).map((p) => `--bind-ro=${p}:${p}`)
    : [];
  if (pull) await fs.mkdirp(path.join(dir, 'exo-src'));

  const state = {
    version: 1,
    dir,
    created: new Date().toISOString(),
    rootfs: rootfs.path,
    subnet: null,
    bridge: null,
    hosts: [],
  };
  const step = () => signal?.throwIfAborted();
  try {
    step();
    const keyDir = path.join(dir, 'ssh');
    await fs.mkdirp(keyDir, { mode: 0o700 });
    const key = path.join(keyDir, 'id_ed25519');
    if (!(await fs.pathExists(key)))
      await $({
        quiet: true,
      })`ssh-keygen -q -t ed25519 -N ${''} -C ${`exo-deploy-sandbox@${path.basename(dir)}`} -f ${key}`;

    step();
    const { k, bridge } = await claimSubnet(state, dir, log);
    Object.assign(state, { subnet: k, cidr: `10.231.${k}.0/24`, bridge, gateway: `10.231.${k}.1` });
    await writeState(dir, state);
    await $`ip addr add ${`10.231.${k}.1/24`} dev ${bridge}`;
    await $`ip link set ${bridge} up`;

    const nixos = await nixosUnitEnvironment(dir, rootfs.path);
    for (let n = 1; n <= count; n++) {
      step();
      const name = `h${n}`;
      const host = {
        name,
        address: `10.231.${k}.${n + 1}`,
        netns: `exo${k}-${name}`,
        veth: `exo${k}-${name}`,
        pid: null,
        log: path.join(dir, 'logs', `${name}.console.log`),
        // pull mode suits lone nodes: each host pins a namespace of its own, as an operator
        // would, so that one host's release never shows in another's health
        ...(pull ? { namespace: `lone-${name}` } : {}),
      };
      state.hosts.push(host);
      await writeState(dir, state);
      await $`ip netns add ${host.netns}`;
      await $`ip link add ${host.veth} type veth peer name host0 netns ${host.netns}`;
      await $`ip link set ${host.veth} master ${bridge}`;
      await $`ip link set ${host.veth} up`;
      await $`ip netns exec ${host.netns} ip addr add ${`${host.address}/24`} dev host0`;
      await $`ip netns exec ${host.netns} ip link set host0 up`;
      await $`ip netns exec ${host.netns} ip link set lo up`;

      // What survives a reboot, as on a NixOS host: /nix (the store and the system profile),
      // /var (exo's state, backups, the journal) and /boot (the boot loader's default entry),
      // each host's own under DIR/hosts; the rest of / is a throwaway overlay, and /etc is made
      // anew at each boot by the activation of the system booted, as NixOS's stage 2 does.
      const persist = path.join(dir, 'hosts', name);
      for (const sub of ['var', 'nix', 'boot']) await fs.mkdirp(path.join(persist, sub));
      const out = fs.openSync(host.log, 'a');
      const child = spawn(
        NSPAWN_REBOOTING,
        [
          '-D',
          rootfs.path,
          '--volatile=overlay',
          `--overlay=${rootfs.path}/var:${persist}/var:/var`,
          `--overlay=${rootfs.path}/nix:${persist}/nix:/nix`,
          `--bind=${persist}/boot:/boot`,
          // the machine id: the same at each boot, so the journal of earlier boots stays the host's
          `--uuid=${machineUuid(dir, name)}`,
          '--boot',
          '--register=no',
          '--keep-unit',
          `-M${name}`,
          `--network-namespace-path=/run/netns/${host.netns}`,
          '--console=read-only',
          `--bind-ro=${key}.pub:/root/.ssh/authorized_keys`,
          `--bind-ro=${key}.pub:/home/deploy/.ssh/authorized_keys`,
          ...nixos.map(([from, to]) => `--bind-ro=${from}:${to}`),
          ...pullBinds,
        ],
        { detached: true, stdio: ['ignore', out, out] },
      );
      fs.closeSync(out);
      child.unref();
      host.pid = child.pid;
      await writeState(dir, state);
      log(`${name}: ${host.address}, systemd-nspawn under PID ${host.pid}`);
    }

    step();
    const exoSrc = await writeExoSrc(dir, log);
    const config = await writeConfig(dir, state.hosts, { lone: Boolean(pull) });
    Object.assign(state, {
      exoSrc,
      config,
      deployConfig: path.join(config, 'exo-deploy.toml'),
      sshKey: key,
    });
    await writeState(dir, state);

    if (pull) {
      state.pull = await servePull(dir, state, pull);
      await writeState(dir, state);
      await setExoSettings({ dir, settings: {} });
    }

    const booted = await Promise.all(state.hosts.map((h) => waitForHost(dir, h, { signal })));
    for (const [i, h] of state.hosts.entries()) log(`${h.name}: systemd is ${booted[i]}`);
    state.bootSeconds = (Date.now() - t0) / 1000;
    await writeState(dir, state);
    step();
    if (deploy) await deployFirstRelease(dir, { log });
    state.upSeconds = (Date.now() - t0) / 1000;
    await writeState(dir, state);
    log(`up: ${count} host(s) in ${state.upSeconds.toFixed(1)} s; config: ${state.deployConfig}`);
    return state;
  } catch (e) {
    log(
      `up ${signal?.aborted ? 'interrupted' : 'failed'}, cleaning up: ${String(e?.message ?? e).split('\n')[0]}`,
    );
    await writeState(dir, state).catch(() => {}); // everything made so far, also what the last step made
    await down({ dir, log }).catch((e2) => log(`cleanup after failed up: ${e2.message}`));
    throw e;
  }
}

/**
 * Stops every host of the sandbox in `dir` (SIGTERM to its systemd-nspawn, by PID) and
 * removes its network namespaces, veths and bridge (by name). Safe to run twice.
 * @param {{dir: string, log?: (m: string) => void, timeoutMs?: number}} opts
 * @returns {Promise<{stopped: string[], removed: string[]}>}
 */
export async function down({ dir, log = defaultLog, timeoutMs = 15_000 }) {
  if (!dir) throw new Error('down: --dir is required');
  dir = path.resolve(dir);
  const state = await readState(dir);
  const result = { stopped: [], removed: [] };
  if (!state) return result;
  await stopGitDaemon(state, log);
  const live = state.hosts.filter((h) => h.pid && pidAlive(h.pid, h.name));
  await Promise.all(live.map((h) => stopHost(h, timeoutMs, log)));
  result.stopped.push(...live.map((h) => h.name));
  for (const h of state.hosts) {
    if (await netnsExists(h.netns)) {
      await $({ quiet: true, nothrow: true })`ip netns del ${h.netns}`;
      result.removed.push(`netns ${h.netns}`);
    }
    if (await linkExists(h.veth)) {
      await $({ quiet: true, nothrow: true })`ip link del ${h.veth}`;
      result.removed.push(`veth ${h.veth}`);
    }
  }
  if (state.bridge && (await linkExists(state.bridge))) {
    await $({ quiet: true, nothrow: true })`ip link del ${state.bridge}`;
    result.removed.push(`bridge ${state.bridge}`);
  }
  // up was interrupted while creating this bridge: it is ours if it exists, is empty and
  // has no address yet (another sandbox's bridge gets its address at once)
  if (state.claiming && state.claiming !== state.bridge && (await linkExists(state.claiming))) {
    const addr = (
      await $({ quiet: true, nothrow: true })`ip -o addr show dev ${state.claiming}`
    ).stdout.trim();
    const ports = (
      await $({ quiet: true, nothrow: true })`ip -o link show master ${state.claiming}`
    ).stdout.trim();
    if (!addr && !ports) {
      await $({ quiet: true, nothrow: true })`ip link del ${state.claiming}`;
      result.removed.push(`bridge ${state.claiming}`);
    }
  }
  const left = [
    ...state.hosts.filter((h) => h.pid && pidAlive(h.pid, h.name)).map((h) => `PID ${h.pid}`),
    ...(
      await Promise.all(
        state.hosts.map(async (h) => ((await netnsExists(h.netns)) ? `netns ${h.netns}` : null)),
      )
    ).filter(Boolean),
    ...(state.bridge && (await linkExists(state.bridge)) ? [`bridge ${state.bridge}`] : []),
    ...(gitDaemonAlive(state) ? [`git daemon PID ${state.pull.daemonPid}`] : []),
  ];
  if (left.length) throw new Error(`down: could not remove ${left.join(', ')}`);
  // the hosts' disks (their store, /var, /boot): nothing runs on them any more
  await fs.rm(path.join(dir, 'hosts'), { recursive: true, force: true });
  await fs.rm(statePath(dir), { force: true });
  if (result.stopped.length || result.removed.length)
    log(
      `down: stopped ${result.stopped.join(' ') || 'nothing'}; removed ${result.removed.length} network object(s)`,
    );
  return result;
}

// Pull mode: the hosts follow DIR/config's main branch, served read-only by git's own daemon on
// the bridge (git://GATEWAY/config), each through services.exo.autoDeploy's timer.
const GIT_DAEMON = '/usr/lib/git-core/git-daemon';

async function servePull(dir, state, { interval }) {
  const url = `git://${state.gateway}/config`;
  // started as a child of ours, not with --detach (whose PID file the daemon writes after its
  // parent has returned): its PID is known, and recorded, before anything can fail
  const out = fs.openSync(path.join(dir, 'logs', 'git-daemon.log'), 'a');
  const child = spawn(
    GIT_DAEMON,
    [
      '--reuseaddr',
      '--export-all',
      `--base-path=${dir}`,
      `--listen=${state.gateway}`,
      path.join(dir, 'config'),
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  fs.closeSync(out);
  child.unref();
  state.pull = { url, interval, daemonPid: child.pid };
  await writeState(dir, state);
  // serving once it accepts connections
  const deadline = Date.now() + 10_000;
  while (!(await accepts(state.gateway, GIT_PORT))) {
    if (Date.now() > deadline || !gitDaemonAlive(state))
      throw new Error(
        `up: git daemon did not serve ${url} (see ${path.join(dir, 'logs', 'git-daemon.log')})`,
      );
    await sleep(100);
  }
  return state.pull;
}

const GIT_PORT = 9418;

function accepts(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

/** services.exo.autoDeploy for the hosts of a sandbox in pull mode. */
const autoDeploy = ({ url, interval }) => ({
  enable: true,
  url,
  interval: `${interval}s`,
  // the hosts are few and the network a bridge: no need to spread their fetches
  randomizedDelay: '0',
});

function gitDaemonAlive(state) {
  const pid = state.pull?.daemonPid;
  if (!pid) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('git-daemon');
  } catch {
    return false;
  }
}

async function stopGitDaemon(state, log) {
  if (!gitDaemonAlive(state)) return;
  process.kill(state.pull.daemonPid, 'SIGTERM');
  for (let i = 0; i < 50 && gitDaemonAlive(state); i++) await sleep(100);
  log(`down: stopped the git daemon (PID ${state.pull.daemonPid})`);
}

/** Replaces the [health] table of a sandbox's exo-deploy.toml (the tests and benchmarks tune
 * soak and timeouts to their faults). */
export async function tuneHealth(config, health) {
  await tuneConfig(config, 'health', health);
}

/** Sets keys of one table of an exo-deploy.toml ("health", "hosts.h2", …), keeping its others;
 * null removes a key. The table must exist. */
export async function tuneConfig(config, table, settings) {
  const text = await fs.readFile(config, 'utf8');
  const header = `[${table}]`;
  const at = text.indexOf(`${header}\n`);
  if (at < 0) throw new Error(`no ${header} table in ${config}`);
  const start = at + header.length + 1;
  const body = /^(?:[a-z_]+ = .*\n)*/.exec(text.slice(start))[0];
  const kept = body
    .split('\n')
    .filter(Boolean)
    .filter((l) => !(l.split(' = ')[0] in settings));
  const set = Object.entries(settings)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  await fs.writeFile(
    config,
    `${text.slice(0, start)}${[...kept, ...set].map((l) => `${l}\n`).join('')}${text.slice(start + body.length)}`,
  );
}

/**
 * Commits a new exo release to DIR/exo-src (the config's `exo` input; move the lock with
 * `exo-deploy update exo`, or lockExo(dir) here).
 * era: the stand-in's era (default: 1.0.x libp2p, else zenoh); declaredEra: the era the hosts'
 * configuration claims for it (default: the real one; another one tests a wrong-era config).
 * @param {{dir: string, version: string, fault?: string, faultOn?: string[], era?: 'libp2p'|'zenoh', packageVersion?: string, loadSeconds?: number, declaredEra?: 'libp2p'|'zenoh', log?: (m: string) => void}} opts
 * @returns {Promise<{rev: string, version: string, era: string, declaredEra: string, packageVersion: string, loadSeconds: number, fault: string, faultOn: string[]}>}
 */
export async function release({
  dir,
  version,
  fault = 'none',
  faultOn = [],
  era,
  packageVersion = '0.3.70',
  loadSeconds = 1,
  declaredEra,
  needsReboot = false,
  log = defaultLog,
}) {
  if (!dir) throw new Error('release: --dir is required');
  if (!version || !/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/.test(version))
    throw new Error(
      `release: --version must be a version like 0.2.0, got ${JSON.stringify(version)}`,
    );
  for (const [flag, v] of [
    ['--era', era],
    ['--declared-era', declaredEra],
  ]) {
    if (v !== undefined && !ERAS.includes(v))
      throw new Error(
        `release: ${flag} must be one of ${ERAS.join(', ')}, got ${JSON.stringify(v)}`,
      );
  }
  if (typeof packageVersion !== 'string' || !packageVersion)
    throw new Error(
      `release: --package-version must be a version, got ${JSON.stringify(packageVersion)}`,
    );
  if (typeof loadSeconds !== 'number' || !(loadSeconds >= 0))
    throw new Error(
      `release: --load-seconds must be a number of seconds >= 0, got ${JSON.stringify(loadSeconds)}`,
    );
  const repo = path.join(path.resolve(dir), 'exo-src');
  if (!(await fs.pathExists(path.join(repo, '.git'))))
    throw new Error(`${repo} is not a sandbox exo-src repository (run up first)`);
  // the package definition too, so that a sandbox made by an older checkout builds this stand-in
  await fs.copy(path.join(TEMPLATES, 'exo-src'), repo);
  await copyStandin(repo, log);
  const realEra = era ?? defaultEra(version);
  const claimed = declaredEra ?? realEra;
  await fs.writeFile(
    path.join(repo, 'release.json'),
    releaseJson({
      version,
      fault,
      faultOn,
      era: realEra,
      packageVersion,
      loadSeconds,
      declaredEra: claimed,
      needsReboot,
    }),
  );
  await git(repo, 'add', '-A');
  const where = faultOn.length ? ` on ${faultOn.join(',')}` : '';
  const claim = claimed !== realEra ? `, declared ${claimed}` : '';
  await git(
    repo,
    'commit',
    '-q',
    '--allow-empty',
    '-m',
    `exo ${version} (${realEra}${claim})${fault !== 'none' ? ` (fault ${fault}${where})` : ''}`,
  );
  const rev = (await git(repo, 'rev-parse', 'HEAD')).stdout.trim();
  log(
    `release: exo ${version}, ${realEra} era${claim}, package ${packageVersion}, load ${loadSeconds} s, fault ${fault}${where}, commit ${rev.slice(0, 7)}`,
  );
  return {
    rev,
    version,
    era: realEra,
    declaredEra: claimed,
    packageVersion,
    loadSeconds,
    fault,
    faultOn,
  };
}

/**
 * Pins services.exo.namespace on every host of DIR/config (null: exo's default again) and
 * commits it; the next deploy moves the hosts to it.
 * @param {{dir: string, namespace: string | null}} opts
 */
export async function setNamespace({ dir, namespace }) {
  if (namespace !== null && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(namespace))
    throw new Error(`setNamespace: not a namespace: ${JSON.stringify(namespace)}`);
  const repo = path.join(path.resolve(dir), 'config');
  const file = path.join(repo, 'hosts.nix');
  const text = await fs.readFile(file, 'utf8');
  const pinned = namespace === null ? '' : `  namespace = ${JSON.stringify(namespace)};\n`;
  await fs.writeFile(
    file,
    text.replace(/^ {2}namespace = .*\n/m, '').replace(/^( {2}apiPort = .*\n)/m, `$1${pinned}`),
  );
  await git(
    repo,
    'commit',
    '-q',
    '-am',
    namespace === null ? 'exo: default namespace' : `exo: namespace ${namespace}`,
  );
}

/**
 * Sets services.exo options on every host of DIR/config (merged over the sandbox's own, e.g.
 * `{ healthCheck: { interval: "5s" } }`) and commits them; the next deploy applies them.
 * @param {{dir: string, settings: object}} opts
 */
export async function setExoSettings({ dir, settings }) {
  // a sandbox in pull mode stays in it
  const pull = (await readState(dir))?.pull;
  return commitSettings(
    dir,
    'exo.json',
    pull ? { ...settings, autoDeploy: autoDeploy(pull) } : settings,
    'exo',
  );
}

/**
 * Sets other NixOS options on every host of DIR/config (e.g.
 * `{ system: { preSwitchChecks: { x: "false" } } }`, instead of the ones set before) and
 * commits them.
 * @param {{dir: string, settings: object}} opts
 */
export function setNixosSettings({ dir, settings }) {
  return commitSettings(dir, 'nixos.json', settings, 'nixos');
}

async function commitSettings(dir, file, settings, what) {
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings))
    throw new Error(`${what} settings must be an object, got ${JSON.stringify(settings)}`);
  const repo = path.join(path.resolve(dir), 'config');
  await fs.writeFile(path.join(repo, file), `${JSON.stringify(settings, null, 2)}\n`);
  await git(repo, 'commit', '-q', '--allow-empty', '-am', `${what}: ${JSON.stringify(settings)}`);
}

/**
 * Gives every host's configuration an evaluation cost, as a real NixOS configuration has
 * (sandbox.evaluationWork: numbers summed, all held in memory at once; 0: none), and commits it.
 * @param {{dir: string, work: number}} opts
 */
export async function setEvaluationCost({ dir, work }) {
  if (!Number.isInteger(work) || work < 0)
    throw new Error(
      `setEvaluationCost: work must be a whole number >= 0, got ${JSON.stringify(work)}`,
    );
  // beside the other NixOS settings a test has set, not instead of them
  const current = await fs.readJson(path.join(path.resolve(dir), 'config', 'nixos.json'));
  return setNixosSettings({
    dir,
    settings: { ...current, sandbox: { ...current.sandbox, evaluationWork: work } },
  });
}

/**
 * Makes exo-deploy reach one host of DIR/config's exo-deploy.toml as the non-root user `deploy`
 * with `sudo = true` (the rootfs gives it passwordless sudo and Nix trust); not committed, as
 * the toml is not part of the flake's build.
 * @param {{dir: string, host: string}} opts host: its name, e.g. 'h2'
 */
export async function useSudoUser({ dir, host }) {
  const file = path.join(path.resolve(dir), 'config', 'exo-deploy.toml');
  const text = await fs.readFile(file, 'utf8');
  const table = new RegExp(
    `(\\[hosts\\.${host}\\]\\n)target = "[^"@]*@([^"]*)"\\n(?:sudo = .*\\n)?`,
  );
  const edited = text.replace(
    table,
    (_, head, address) => `${head}target = ${tomlStr(`deploy@${address}`)}\nsudo = true\n`,
  );
  if (edited === text) throw new Error(`no [hosts.${host}] table with a target in ${file}`);
  await fs.writeFile(file, edited);
}

/**
 * Which nixos-rebuild DIR/config's exo-deploy.toml runs: the sandbox's as NixOS 26.05's (with
 * --store-path, the default) or as 25.11's (without). Not committed: the toml is not built.
 * @param {{dir: string, release: '26.05' | '25.11'}} opts
 */
export async function useNixosRebuild({ dir, release }) {
  const programs = { 26.05: NIXOS_REBUILD, 25.11: `${NIXOS_REBUILD}-25.11` };
  if (!programs[release])
    throw new Error(
      `useNixosRebuild: release must be 26.05 or 25.11, got ${JSON.stringify(release)}`,
    );
  const file = path.join(path.resolve(dir), 'config', 'exo-deploy.toml');
  const text = await fs.readFile(file, 'utf8');
  const edited = text.replace(
    /^nixos_rebuild = .*$/m,
    `nixos_rebuild = ${tomlStr(programs[release])}`,
  );
  if (!/^nixos_rebuild = /m.test(text)) throw new Error(`no nixos_rebuild setting in ${file}`);
  await fs.writeFile(file, edited);
}

/**
 * Moves DIR/config's `exo` input to the newest DIR/exo-src commit and commits flake.lock
 * (what `exo-deploy update exo --commit` does; for tests that run below the CLI).
 */
export async function lockExo(dir) {
  const repo = path.join(path.resolve(dir), 'config');
  await $({ cwd: repo, quiet: true, env: nixEnv() })`nix flake lock --update-input exo`;
  await git(repo, 'add', 'flake.lock');
  await git(repo, 'commit', '-q', '--allow-empty', '-m', 'update exo');
}

/**
 * The first deploy of a fresh sandbox, with the toolkit:
 * `node dist/cli/cli.js --config DIR/config/exo-deploy.toml deploy --yes`.
 * `via: 'nixos-rebuild'` switches every host with the stand-in instead (below the CLI).
 * @param {string} dir
 * @param {{via?: 'exo-deploy'|'nixos-rebuild', log?: (m: string) => void}} [opts]
 */
export async function deployFirstRelease(dir, { via = 'exo-deploy', log = defaultLog } = {}) {
  dir = path.resolve(dir);
  const config = path.join(dir, 'config');
  if (via === 'nixos-rebuild') {
    const state = await readState(dir);
    const runs = await Promise.all(state.hosts.map((h) => nixosRebuild(dir, 'switch', h)));
    runs.forEach((r, i) => {
      if (r.exitCode !== 0)
        throw new Error(
          `nixos-rebuild switch on ${state.hosts[i].name} exited ${r.exitCode}:\n${r.stderr}`,
        );
    });
    log(
      `first release switched on ${state.hosts.map((h) => h.name).join(' ')} with ${path.relative(REPO, NIXOS_REBUILD)}`,
    );
    return;
  }
  const cli = path.join(REPO, 'dist/cli/cli.js');
  if (!(await fs.pathExists(cli)))
    throw new Error(`${cli} is missing: run \`npm run build\` first`);
  log('deploying the first release with exo-deploy');
  await $({
    env: nixEnv(),
    stdio: ['ignore', 'inherit', 'inherit'],
  })`node ${cli} --config ${path.join(config, 'exo-deploy.toml')} deploy --yes`;
}

/**
 * Runs the stand-in nixos-rebuild against one host of the sandbox (no throw: check exitCode).
 * @param {string} dir
 * @param {'build'|'test'|'switch'|'boot'|'dry-activate'} action
 * @param {{name: string, address: string}} host
 * @param {string[]} [extra] e.g. ['--rollback']
 */
export function nixosRebuild(dir, action, host, extra = []) {
  dir = path.resolve(dir);
  return $({
    nothrow: true,
    quiet: true,
    cwd: dir,
    env: { ...nixEnv(), NIX_SSHOPTS: sshOptions(dir).join(' ') },
  })`${NIXOS_REBUILD} ${action} --flake ${`${path.join(dir, 'config')}#${host.name}`} --target-host ${`root@${host.address}`} ${extra}`;
}
