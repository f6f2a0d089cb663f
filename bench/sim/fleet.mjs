// A simulated fleet for the scale benchmark: a run layer (ProcessRunner) and a fetch that
// play N hosts, so that exo-deploy's real scheduler, journal and report run at 1,000 hosts.
// It answers the same commands as test/unit/fake-fleet.ts (the unit tests' fleet), but each
// host has latencies drawn from a seeded distribution for the operations that take time
// (build, copy, activation, API probes), lookups are O(1) and answers are precomputed: its
// own CPU time is counted as the toolkit's, so it must stay small.
// Every other command (systemctl, journalctl, readlink, backup plumbing…) answers at once.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src');
const { shellUnquote } = await import(path.join(dist, 'run/shell-quote.js'));
const { formatTimestamp } = await import(path.join(dist, 'programs/systemctl.js'));
const { batchCommands, formatBatchOutput } = await import(path.join(dist, 'run/remote-batch.js'));

/** mulberry32: a small seeded PRNG. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Log-normal with the given median; sigma 0.4 (a long right tail, as real builds have). */
function lognormal(rand, medianMs, sigma = 0.4) {
  const u = Math.max(rand(), 1e-12);
  const v = rand();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return Math.max(0.5, Math.round(medianMs * Math.exp(sigma * z) * 10) / 10);
}

/** Per-host latencies (ms). */
export const LATENCY_MEDIANS = { build: 12, copy: 6, test: 4, switch: 4, probe: 2 };

const sys = (name, version) =>
  `/nix/store/${(name + version.replace(/\./g, '') + 'a'.repeat(32)).slice(0, 32)}-nixos-system-${name}-exo-${version}`;

export function simFleet(count, seed, scale = 1) {
  const rand = prng(seed);
  const hosts = [];
  for (let i = 0; i < count; i++) {
    const name = `h${String(i + 1).padStart(4, '0')}`;
    const address = `10.${99 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    const lat = Object.fromEntries(
      Object.entries(LATENCY_MEDIANS).map(([k, m]) => [k, lognormal(rand, m * scale)]),
    );
    const old = sys(name, '1.0.0');
    hosts.push({
      name,
      address,
      target: `root@${address}`,
      lat,
      running: old,
      profile: 1,
      generations: new Map([[1, old]]),
      built: sys(name, '2.0.0'),
      pid: 100 + i,
      nodeId: `node-${name}`,
    });
  }
  const byTarget = new Map(hosts.map((h) => [h.target, h]));
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const byAddress = new Map(hosts.map((h) => [h.address, h]));
  // exo's /state on every node lists the whole cluster: built once, as bytes a real node would send.
  const stateBody = JSON.stringify({
    topology: { nodes: hosts.map((h) => h.nodeId) },
    runners: { r1: { RunnerReady: {} } },
  });
  return { hosts, byTarget, byName, byAddress, stateBody };
}

const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '', timedOut: false });
const versionOf = (p) => /exo-([\d.]+)$/.exec(p)?.[1] ?? 'unknown';
const releaseFiles = (files) =>
  files
    .map(
      (f) =>
        `${f}\0{"schemaVersion":1,"exo":{"version":"${versionOf(f.replace('/etc/exo/release.json', ''))}"}}\0`,
    )
    .join('');

function activate(host, path) {
  if (host.running !== path) {
    host.running = path;
    host.pid += 10;
  }
}

/** The ProcessRunner: what exo-deploy's execaRunner would return, after the host's latency. */
export function simRunner(fleet) {
  return async (spec) => {
    const answer = await answerFor(fleet, spec.argv);
    return { argv: spec.argv, durationMs: 0, ...answer };
  };
}

async function answerFor(fleet, argv) {
  if (argv[0] === 'ssh') {
    if (argv.includes('-O')) return ok();
    const host = fleet.byTarget.get(argv.at(-2));
    if (!host) return { exitCode: 255, stdout: '', stderr: 'ssh: unknown host', timedOut: false };
    const remote = shellUnquote(argv.at(-1));
    const batch = batchCommands(remote);
    // reads that share one session: answered one by one, framed as the batch script frames them
    if (batch)
      return ok(
        formatBatchOutput(
          batch.marker,
          batch.commands.map((c) => onHost(host, shellUnquote(c))),
        ),
      );
    return onHost(host, remote);
  }
  const batch = batchCommands(argv);
  if (batch)
    return ok(
      formatBatchOutput(
        batch.marker,
        await Promise.all(batch.commands.map((c) => onDeployer(fleet, shellUnquote(c)))),
      ),
    );
  return onDeployer(fleet, argv);
}

async function onDeployer(fleet, argv) {
  const [program, action] = argv;
  if (program === 'nix' && action === '--version') return ok('nix (Nix) 2.24.0\n');
  // one host to a Nix process (the sim's [build] setting): evaluated and built in its latency
  if (program === 'nix' && argv.includes('build') && argv.includes('--json')) {
    const hosts = argv
      .filter((a) => a.includes('#nixosConfigurations.'))
      .map((a) => fleet.byName.get(/#nixosConfigurations\.([^.]+)\./.exec(a)?.[1]));
    if (hosts.some((h) => !h))
      return { exitCode: 1, stdout: '', stderr: 'no such host', timedOut: false };
    await sleep(hosts.reduce((ms, h) => ms + h.lat.build, 0));
    return ok(
      JSON.stringify(hosts.map((h) => ({ drvPath: `${h.built}.drv`, outputs: { out: h.built } }))),
    );
  }
  // NixOS 25.11's nixos-rebuild: no --store-path, so exo-deploy activates by itself
  if (program === 'nixos-rebuild' && action === '--help')
    return ok(
      'usage: nixos-rebuild [-h] [--flake FLAKE] [--target-host TARGET_HOST] {switch,boot,test,build}\n',
    );
  if (program === 'nix' && argv.includes('copy')) {
    const target = argv.find((a) => a.startsWith('ssh://') || a.startsWith('ssh-ng://'));
    const host = target
      ? fleet.byTarget.get(target.replace(/^ssh(-ng)?:\/\//, '').split('?')[0])
      : undefined;
    await sleep(host?.lat.copy ?? 0);
    return ok();
  }
  if (program === 'sh' && argv[2]?.startsWith('for f do')) return ok(releaseFiles(argv.slice(4)));
  // the built systems have switch-to-configuration
  if (program === 'test') return ok();
  return {
    exitCode: 127,
    stdout: '',
    stderr: `sim: no rule for ${argv.join(' ')}`,
    timedOut: false,
  };
}

const MEMINFO = 'MemTotal: 100000000 kB\nMemAvailable: 50000000 kB\n';
const DF =
  'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/x 100000000 1 99999999 1% /\n';
const PROFILE = '/nix/var/nix/profiles/system';

function onHost(host, args) {
  const [program] = args;
  // the revert timer is armed (and never fires: the sim's deployer always confirms)
  if (program === 'systemd-run' && args.some((a) => a.startsWith('--on-active='))) return ok();
  if (program === 'systemd-run') return onHost(host, args.slice(args.indexOf('--') + 6));
  if (program === 'systemctl' && args[1] === 'show') {
    return ok(
      `LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nNRestarts=0\nMainPID=${host.pid}\nExecMainStartTimestamp=${formatTimestamp(Date.now() - 5000)}\nMemoryCurrent=1000\n`,
    );
  }
  if (program === 'systemctl') return ok('systemd 256 (256.8)\n');
  if (program === 'journalctl') return ok();
  if (program === 'readlink') {
    return ok(
      `${args
        .slice(3)
        .map((p) => {
          if (p === '/run/current-system') return host.running;
          if (p === PROFILE) return host.generations.get(host.profile);
          const m = /-(\d+)-link$/.exec(p);
          return m ? (host.generations.get(Number(m[1])) ?? p) : p;
        })
        .join('\n')}\n`,
    );
  }
  if (program === 'nix-env') {
    if (args[3] === '--list-generations') {
      return ok(
        [...host.generations.keys()]
          .map(
            (n) =>
              `   ${n}   2026-11-2${n % 10} 10:00:00   ${n === host.profile ? '(current)' : ''}`,
          )
          .join('\n'),
      );
    }
    if (args[3] === '--switch-generation') {
      host.profile = Number(args[4]);
      return ok();
    }
    if (args[3] === '--set') {
      const n = host.generations.size + 1;
      host.generations.set(n, args[4]);
      host.profile = n;
      return ok();
    }
  }
  if (program?.endsWith('/bin/switch-to-configuration')) {
    const action = args[1];
    return sleep(host.lat[action] ?? 0).then(() => {
      if (action !== 'boot') activate(host, program.replace('/bin/switch-to-configuration', ''));
      return ok();
    });
  }
  if (program === 'nix' && args[1] === '--version') return ok('nix (Nix) 2.24.0\n');
  if (program === 'nix' && (args.includes('show-config') || args.includes('config')))
    return ok('experimental-features = flakes nix-command\n');
  if (program === 'nix' && args.includes('diff-closures'))
    return ok('exo: 1.0.0 → 2.0.0, +1.2 KiB\n');
  if (program === 'cat') return ok(MEMINFO);
  if (program === 'df') return ok(DF);
  // a NixOS system has nixos-version and switch-to-configuration, and every host runs one
  if (program === 'test')
    return {
      exitCode: /(\/nixos-version|\/bin\/switch-to-configuration|^\/run\/current-system)$/.test(
        args.at(-1),
      )
        ? 0
        : 1,
      stdout: '',
      stderr: '',
      timedOut: false,
    };
  if (program === 'sh' && args[2]?.startsWith('for f do')) return ok(releaseFiles(args.slice(4)));
  if (['mkdir', 'tar', 'sh', 'ln', 'mv', 'sync', 'find', 'ls', 'rm'].includes(program)) return ok();
  return {
    exitCode: 127,
    stdout: '',
    stderr: `sim: no rule for ${args.join(' ')}`,
    timedOut: false,
  };
}

/** exo's API on every host: healthy, after the host's probe latency. */
export function simFetch(fleet) {
  const models = JSON.stringify({ data: [] });
  return async (input, init) => {
    const url = new URL(String(input));
    const host = fleet.byAddress.get(url.hostname);
    if (!host)
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    await sleep(host.lat.probe, undefined, init?.signal ? { signal: init.signal } : undefined);
    const body =
      url.pathname === '/node_id'
        ? JSON.stringify(host.nodeId)
        : url.pathname === '/models'
          ? models
          : url.pathname === '/state'
            ? fleet.stateBody
            : null;
    // the part of a Response that probes read; a real Response (undici) would add its own cost
    const text = body ?? '{"detail":"Not Found"}';
    return { ok: Boolean(body), status: body ? 200 : 404, text: async () => text };
  };
}

/** Greedy list scheduling of durations on `limit` workers, in order: what mapLimit does with no overhead. */
function listSchedule(durations, limit) {
  const free = new Array(Math.min(limit, durations.length)).fill(0);
  for (const d of durations) {
    let k = 0;
    for (let j = 1; j < free.length; j++) if (free[j] < free[k]) k = j;
    free[k] += d;
  }
  return Math.max(0, ...free);
}

/** The makespan of a lockstep deploy with no toolkit overhead: the phases are barriers;
 * build, copy, test and switch run at most max_parallel at once; the checks (preflight, the
 * gate's two samples with soak 0, the final check) run on every host at once and take one
 * probe round each. */
export function idealLockstep(fleet, limit) {
  const h = fleet.hosts;
  const probes = Math.max(...h.map((x) => x.lat.probe));
  const phases = {
    preflight: probes,
    build: listSchedule(
      h.map((x) => x.lat.build),
      limit,
    ),
    copy: listSchedule(
      h.map((x) => x.lat.copy),
      limit,
    ),
    test: listSchedule(
      h.map((x) => x.lat.test),
      limit,
    ),
    gate: 2 * probes,
    switch: listSchedule(
      h.map((x) => x.lat.switch),
      limit,
    ),
    'final check': probes,
  };
  return { totalMs: Object.values(phases).reduce((a, b) => a + b, 0), phases };
}
