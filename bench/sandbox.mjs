// 2, 3, 4 and 6: exo-deploy against real sandbox hosts (sandbox/fleet.mjs): one 3-host and
// one 1-host sandbox, up at the same time, measured one command at a time. Both are torn
// down at the end, also on failure.
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { at, figure, median, stepSpans } from './lib/stats.mjs';
import { nspawnOf } from '../sandbox/fleet.mjs';

const STEPS = [
  'preflight',
  'record',
  'build',
  'copy',
  'reboot check',
  'backup',
  'test',
  'health gate',
  'switch',
  'final check',
];
/** The last toolkit that evaluated every host again for test and switch (the committed bundle
 * of that commit is run as it was). */
const BEFORE_ONE_EVALUATION = '32a1f0c9f674a1db48c1fe839b1f22e87f75088c';
/** A host configuration's evaluation cost: about 1 s and 450 MB of Nix here. */
const EVALUATION_WORK = 3_000_000;

/** The toolkit's committed bundle at a commit, unpacked into a temporary folder: its cli.js. */
async function toolkitAt(repo, rev) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-bench-toolkit-'));
  const archive = await execa(
    'git',
    ['-C', repo, 'archive', '--format=tar', rev, 'package.json', 'dist/cli'],
    { encoding: 'buffer' },
  );
  await execa('tar', ['-x', '-C', dir], { input: archive.stdout });
  return path.join(dir, 'dist/cli/cli.js');
}
const SOAK = '5s';

/** Wall time of one CLI run, its --json document, and (with usage) its own CPU time.
 * cli: another build of the toolkit; env: more environment (the counting nix on PATH). */
async function cli(
  repo,
  sandbox,
  config,
  args,
  { usage = false, cli: cliPath = path.join(repo, 'dist/cli/cli.js'), env = {} } = {},
) {
  const usageFile = usage
    ? path.join(os.tmpdir(), `exo-deploy-bench-usage-${process.pid}.json`)
    : null;
  const node = [
    ...(usage ? ['--require', path.join(repo, 'bench/lib/usage.cjs')] : []),
    cliPath,
    '--config',
    config,
    ...args,
  ];
  const t0 = process.hrtime.bigint();
  const r = await execa(process.execPath, node, {
    reject: false,
    env: { ...sandbox.nixEnv(), ...(usageFile ? { BENCH_USAGE_FILE: usageFile } : {}), ...env },
    timeout: 300_000,
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let json = null;
  try {
    json = args.includes('--json') ? JSON.parse(String(r.stdout)) : null;
  } catch {
    /* not JSON */
  }
  const used = usageFile ? JSON.parse(await readFile(usageFile, 'utf8').catch(() => 'null')) : null;
  if (usageFile) await rm(usageFile, { force: true });
  return {
    exitCode: r.exitCode,
    stdout: String(r.stdout),
    stderr: String(r.stderr),
    json,
    wallMs,
    usage: used,
  };
}

const must = (r, what, code = 0) => {
  if (r.exitCode !== code)
    throw new Error(`${what}: exit ${r.exitCode} (expected ${code})\n${r.stderr.slice(-2000)}`);
  return r;
};

/** CPU time the whole machine has spent busy (every core; /proc/stat, minus idle and iowait), in ms. */
function machineBusyMs() {
  const [, ...ticks] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .map(Number);
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = ticks;
  return (user + nice + system + irq + softirq + steal) * 10; // USER_HZ = 100
}

/** Sandbox folders in use: run.mjs tears them down on Ctrl-C. */
export const liveSandboxes = new Set();

/** The systemd-nspawn PIDs of our own sandboxes (not someone else's run): each host's is the
 * child of the loop sandbox.json names, which boots it again after a reboot. */
export function ownPids() {
  const pids = new Set();
  for (const dir of liveSandboxes) {
    try {
      for (const h of JSON.parse(readFileSync(path.join(dir, 'sandbox.json'), 'utf8')).hosts) {
        const nspawn = h.pid ? nspawnOf(h.pid) : null;
        if (nspawn) pids.add(nspawn);
      }
    } catch {
      /* not written yet, or a host that is gone */
    }
  }
  return pids;
}

export async function onSandbox({
  repo,
  checkRuns = 10,
  rollouts = 3,
  recoveries = 3,
  onHostRuns = 5,
  signal,
  log,
  idle = async () => {},
}) {
  const sandbox = await import(path.join(repo, 'sandbox/fleet.mjs'));
  const quiet = () => {};
  const dirs = {
    three: await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-bench-3-')),
    one: await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-bench-1-')),
  };
  for (const dir of Object.values(dirs)) liveSandboxes.add(dir);
  const figures = [];
  const details = {};
  try {
    const t0 = Date.now();
    // allSettled: when one up fails, the other is still awaited before the teardown below
    const ups = await Promise.allSettled([
      sandbox.up({ dir: dirs.three, hosts: 3, deploy: false, signal, log: quiet }),
      sandbox.up({ dir: dirs.one, hosts: 1, deploy: false, signal, log: quiet }),
    ]);
    const failed = ups.find((u) => u.status === 'rejected');
    if (failed) throw failed.reason;
    const [s3, s1] = ups.map((u) => u.value);
    const fleets = {
      three: { dir: dirs.three, config: s3.deployConfig, hosts: s3.hosts },
      one: { dir: dirs.one, config: s1.deployConfig, hosts: s1.hosts },
    };
    for (const f of Object.values(fleets))
      await sandbox.tuneHealth(f.config, { soak: SOAK, ready_timeout: '30s', timeout: '2s' });
    const run = (f, args, opts) => cli(repo, sandbox, f.config, args, opts);
    await Promise.all(
      Object.values(fleets).map(async (f) =>
        must(await run(f, ['deploy', '--yes']), 'first deploy'),
      ),
    );
    log(
      `sandbox: 3-host and 1-host fleets up with exo 0.1.0 in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );

    const bench = {
      repo,
      sandbox,
      quiet,
      dirs,
      fleets,
      run,
      figures,
      details,
      idle,
      log,
      checkRuns,
      rollouts,
      recoveries,
      onHostRuns,
    };
    // A section that fails is reported and the next one runs; the fleets are torn down at the end.
    const section = async (name, fn) => {
      try {
        await fn();
      } catch (e) {
        log(`${name} failed: ${e.message.split('\n')[0]}`);
        details.errors ??= [];
        details.errors.push(`${name}: ${e.message}`);
      }
    };

    await section('check latency', () => checkLatency(bench));
    await section('lockstep rollout', () => lockstepRollout(bench));
    await section('evaluations per deploy', () => evaluationsPerDeploy(bench));
    await section('recovery', () => recovery(bench));
    await section('on-host check', () => onHostCheck(bench));
  } finally {
    for (const dir of Object.values(dirs)) {
      // the folder (and its sandbox.json) is removed only once down has removed everything
      const downed = await sandbox.down({ dir, log }).then(
        () => true,
        (e) =>
          log(
            `down ${dir} failed, left for \`npm run sandbox -- down --dir ${dir}\`: ${e.message}`,
          ),
      );
      if (downed) {
        liveSandboxes.delete(dir);
        await rm(dir, { recursive: true, force: true }).catch(() => {});
      }
    }
  }
  return { figures, details };
}

// 2. check latency: one host against three, on the same 3-host fleet, paired and alternated.
async function checkLatency({ fleets, run, figures, idle, log, checkRuns }) {
  const check = { one: [], three: [] };
  // The whole machine's CPU time during each check (the toolkit, ssh, and the hosts' sshd,
  // shells, systemctl, journalctl, nix, exo answering): divided by the cores, the least
  // wall time the check can take here, however concurrent.
  const machineCpu = { one: [], three: [] };
  for (let i = 0; i < checkRuns; i++) {
    await idle();
    const order = i % 2 ? ['three', 'one'] : ['one', 'three'];
    for (const k of order) {
      const before = machineBusyMs();
      const r = must(
        await run(fleets.three, ['check', '--json', ...(k === 'one' ? ['--hosts', 'h1'] : [])]),
        `check (${k})`,
      );
      machineCpu[k].push(machineBusyMs() - before);
      check[k].push(r.wallMs);
    }
  }
  log(
    `check: 1 host ${median(check.one).toFixed(0)} ms, 3 hosts ${median(check.three).toFixed(0)} ms`,
  );
  figures.push(figure('check --json: 1 host', check.one, 'ms'));
  figures.push(figure('check --json: 3 hosts', check.three, 'ms'));
  figures.push(
    figure(
      'check --json: 3 hosts / 1 host',
      check.three.map((x, i) => x / check.one[i]),
      '×',
      at('<=', 1.3, '3 hosts at most 1.3 × one host (paired runs)'),
    ),
  );
  const cores = os.cpus().length;
  figures.push(
    figure(
      `check --json, 1 host: CPU time of the whole machine / ${cores} cores (the least wall time it can take here)`,
      machineCpu.one.map((x) => x / cores),
      'ms',
    ),
  );
  figures.push(
    figure(
      `check --json, 3 hosts: CPU time of the whole machine / ${cores} cores (the least wall time it can take here)`,
      machineCpu.three.map((x) => x / cores),
      'ms',
    ),
  );
}

// 3. lockstep rollout of a healthy release: 1 host against 3 hosts, same release, same soak.
async function lockstepRollout({
  sandbox,
  quiet,
  fleets,
  run,
  figures,
  details,
  idle,
  log,
  rollouts,
}) {
  const roll = { one: [], three: [] };
  for (let i = 1; i <= rollouts; i++) {
    const version = `0.2.${i}`;
    for (const f of Object.values(fleets)) {
      await sandbox.release({ dir: f.dir, version, log: quiet });
      must(await run(f, ['update', 'exo', '--commit']), 'update exo');
    }
    await idle();
    for (const k of i % 2 ? ['one', 'three'] : ['three', 'one']) {
      const r = must(
        await run(fleets[k], ['deploy', '--yes', '--json'], { usage: true }),
        `deploy ${version} (${k})`,
      );
      if (r.json?.outcome !== 'success')
        throw new Error(`deploy ${version} (${k}): ${r.json?.outcome}`);
      roll[k].push({
        wallMs: r.wallMs,
        cpuMs: r.usage?.cpuMs ?? NaN,
        busyMs: r.usage?.busyMs ?? NaN,
        spans: stepSpans(r.json),
        recordMs: r.json.durationMs,
      });
    }
    log(
      `rollout ${version}: 1 host ${roll.one.at(-1).wallMs.toFixed(0)} ms, 3 hosts ${roll.three.at(-1).wallMs.toFixed(0)} ms`,
    );
  }
  for (const k of ['one', 'three']) {
    const n = k === 'one' ? 1 : 3;
    figures.push(
      figure(
        `lockstep rollout: ${n} host${n > 1 ? 's' : ''}, soak ${SOAK}`,
        roll[k].map((r) => r.wallMs),
        'ms',
      ),
    );
    for (const step of STEPS)
      figures.push(
        figure(
          `lockstep rollout, ${n} host${n > 1 ? 's' : ''}: step ${step}`,
          roll[k].map((r) => r.spans[step] ?? 0),
          'ms',
        ),
      );
    const hosts = `${n} host${n > 1 ? 's' : ''}`;
    figures.push(
      figure(
        `lockstep rollout, ${hosts}: toolkit's own time (wall time its event loop was busy, not waiting for a child, the network or the soak)`,
        roll[k].map((r) => r.busyMs),
        'ms',
      ),
    );
    figures.push(
      figure(
        `lockstep rollout, ${hosts}: toolkit's own time / wall time`,
        roll[k].map((r) => (100 * r.busyMs) / r.wallMs),
        '%',
        at('<', 5, 'under 5% of the total'),
      ),
    );
    figures.push(
      figure(
        `lockstep rollout, ${hosts}: toolkit's CPU time, every thread (GC, compiler, libuv), for reference`,
        roll[k].map((r) => r.cpuMs),
        'ms',
      ),
    );
    figures.push(
      figure(
        `lockstep rollout, ${hosts}: toolkit's CPU time / wall time, for reference`,
        roll[k].map((r) => (100 * r.cpuMs) / r.wallMs),
        '%',
      ),
    );
  }
  figures.push(
    figure(
      'lockstep rollout: 3 hosts / 1 host',
      roll.three.map((r, i) => r.wallMs / roll.one[i].wallMs),
      '×',
      at('<=', 1.5, '3 hosts at most 1.5 × one host (paired runs)'),
    ),
  );
  details.rollouts = roll;
}

// 3b. evaluation: hosts whose configurations cost what a real NixOS configuration costs to
// evaluate (about a second and 450 MB each here), deployed by this toolkit and by the one
// before it evaluated each host once (commit BEFORE_ONE_EVALUATION, which ran nixos-rebuild
// build, test and switch, each evaluating anew), alternated. Every nix the deploy starts,
// its own or nixos-rebuild's, is counted by bench/lib/nix-counter.
async function evaluationsPerDeploy({
  repo,
  sandbox,
  quiet,
  fleets,
  run,
  figures,
  details,
  idle,
  log,
  rollouts,
}) {
  const before = await toolkitAt(repo, BEFORE_ONE_EVALUATION);
  // the toolkit before knew fewer settings (strict tables refuse the others): its own copy of
  // each config, beside it, without them
  const configBefore = async (f) => {
    const file = path.join(path.dirname(f.config), 'exo-deploy-before.toml');
    await writeFile(
      file,
      (await readFile(f.config, 'utf8'))
        .split('\n')
        .filter((l) => !/^(confirm_timeout|build_on) = /.test(l))
        .join('\n'),
    );
    return file;
  };
  try {
    const nixLog = path.join(os.tmpdir(), `exo-deploy-bench-nix-${process.pid}.jsonl`);
    const env = {
      PATH: `${path.join(repo, 'bench/lib/nix-counter')}:${process.env.PATH}`,
      BENCH_NIX_LOG: nixLog,
    };
    for (const f of Object.values(fleets))
      await sandbox.setEvaluationCost({ dir: f.dir, work: EVALUATION_WORK });
    const runs = { one: { before: [], after: [] }, three: { before: [], after: [] } };
    let release = 0;
    for (let i = 1; i <= rollouts; i++) {
      for (const k of i % 2 ? ['one', 'three'] : ['three', 'one']) {
        for (const which of i % 2 ? ['before', 'after'] : ['after', 'before']) {
          const version = `0.4.${++release}`;
          await sandbox.release({ dir: fleets[k].dir, version, log: quiet });
          must(await run(fleets[k], ['update', 'exo', '--commit']), 'update exo');
          await idle();
          await rm(nixLog, { force: true });
          const r =
            which === 'before'
              ? must(
                  await cli(
                    repo,
                    sandbox,
                    await configBefore(fleets[k]),
                    ['deploy', '--yes', '--json'],
                    { env, cli: before },
                  ),
                  `deploy ${version} (${k}, before)`,
                )
              : must(
                  await run(fleets[k], ['deploy', '--yes', '--json'], { env }),
                  `deploy ${version} (${k}, now)`,
                );
          if (r.json?.outcome !== 'success')
            throw new Error(`deploy ${version} (${k}, ${which}): ${r.json?.outcome}`);
          const nix = (await readFile(nixLog, 'utf8').catch(() => ''))
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l));
          const evaluating = nix.filter((n) => n.evaluated.length > 0);
          runs[k][which].push({
            wallMs: r.wallMs,
            evaluations: evaluating.reduce((sum, n) => sum + n.evaluated.length, 0),
            nixProcesses: evaluating.length,
            peakMB: Math.max(0, ...evaluating.map((n) => n.peakKiB / 1024)),
          });
        }
      }
      log(
        `evaluations, round ${i}: ${['one', 'three'].map((k) => `${k === 'one' ? 1 : 3} host(s) ${runs[k].before.at(-1).evaluations} before, ${runs[k].after.at(-1).evaluations} now`).join('; ')}`,
      );
    }
    await rm(nixLog, { force: true });
    for (const f of Object.values(fleets)) await sandbox.setEvaluationCost({ dir: f.dir, work: 0 });
    for (const k of ['one', 'three']) {
      const n = k === 'one' ? 1 : 3;
      const hosts = `${n} host${n > 1 ? 's' : ''}`;
      for (const which of ['before', 'after']) {
        const label =
          which === 'before'
            ? 'before (nixos-rebuild build, test, switch)'
            : 'now (one evaluation, the built path activated)';
        figures.push(
          figure(
            `evaluations per deploy, ${hosts}, ${label}`,
            runs[k][which].map((r) => r.evaluations),
            'evaluations',
            which === 'after' ? at('<=', n, 'one per host') : undefined,
          ),
        );
        figures.push(
          figure(
            `evaluating Nix processes per deploy, ${hosts}, ${label}`,
            runs[k][which].map((r) => r.nixProcesses),
            'processes',
          ),
        );
        figures.push(
          figure(
            `peak memory of an evaluating Nix process, ${hosts}, ${label}`,
            runs[k][which].map((r) => r.peakMB),
            'MB',
          ),
        );
        figures.push(
          figure(
            `lockstep rollout with a costly evaluation, ${hosts}, ${label}`,
            runs[k][which].map((r) => r.wallMs),
            'ms',
          ),
        );
      }
      figures.push(
        figure(
          `lockstep rollout with a costly evaluation, ${hosts}: now / before`,
          runs[k].after.map((r, i) => r.wallMs / runs[k].before[i].wallMs),
          '×',
        ),
      );
    }
    details.evaluations = runs;
  } finally {
    await rm(path.resolve(before, '../../..'), { recursive: true, force: true });
  }
}

// 4. recovery: a 3-host lockstep rollout whose runners die 2 s after start on h2.
async function recovery({
  sandbox,
  quiet,
  dirs,
  fleets,
  run,
  figures,
  details,
  idle,
  log,
  recoveries,
}) {
  const rec = { recovery: [], detection: [], gateDetection: [], faultBeforeGate: [] };
  const h2 = fleets.three.hosts.find((h) => h.name === 'h2');
  for (let i = 1; i <= recoveries; i++) {
    const version = `0.3.${i}`;
    await sandbox.release({
      dir: dirs.three,
      version,
      fault: 'runner-exit:2',
      faultOn: ['h2'],
      log: quiet,
    });
    must(await run(fleets.three, ['update', 'exo', '--commit']), 'update exo');
    await idle();
    const r = must(
      await run(fleets.three, ['deploy', '--yes', '--json']),
      `deploy ${version} with runner-exit on h2`,
      1,
    );
    const record = r.json;
    if (record?.outcome !== 'rolled-back')
      throw new Error(`deploy ${version}: outcome ${record?.outcome}, expected rolled-back`);
    const failedAtMs = record.gate?.failedAtMs;
    const rollbacks = record.steps.filter((s) => s.step === 'rollback');
    if (!failedAtMs || rollbacks.length !== 3 || rollbacks.some((s) => !s.ok))
      throw new Error(`deploy ${version}: no gate failure time or not every host rolled back`);
    const recoveredAtMs = Math.max(...rollbacks.map((s) => Date.parse(s.startedAt) + s.durationMs));
    // fault onset: the first "Runner found to be dead" line of h2's new exo, by its journal time
    const tested = record.steps.find((s) => s.step === 'test' && s.host === 'h2');
    const since = Math.floor(Date.parse(tested.startedAt) / 1000);
    // (--all: exo colours its lines, so journald keeps MESSAGE as bytes, which -o json prints as a number array)
    const journal = await sandbox.sshHost(
      dirs.three,
      h2.address,
      `journalctl -u exo.service -o json --all --since @${since} --no-pager`,
    );
    const message = (e) =>
      Array.isArray(e.MESSAGE) ? Buffer.from(e.MESSAGE).toString('utf8') : String(e.MESSAGE ?? '');
    const onset = String(journal.stdout)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((e) => message(e).includes('Runner found to be dead'));
    const onsetMs = onset ? Number(onset.__REALTIME_TIMESTAMP) / 1000 : NaN;
    const healthy = record.hosts.every(
      (h) => h.phase === 'rolled-back' && h.finalCheck?.system?.running === h.before.running,
    );
    if (!healthy)
      throw new Error(`deploy ${version}: not every host is back on its previous system`);
    // With runner-exit:2 the fault may come while `test` still runs on the other hosts,
    // before the gate has started: the gate's own reaction is from the later of the two.
    const gateStartMs = Date.parse(record.steps.find((s) => s.step === 'health gate').startedAt);
    rec.recovery.push(recoveredAtMs - failedAtMs);
    rec.detection.push(failedAtMs - onsetMs);
    rec.gateDetection.push(failedAtMs - Math.max(onsetMs, gateStartMs));
    rec.faultBeforeGate.push(onsetMs < gateStartMs);
    log(
      `recovery ${version}: fault → gate failure ${(failedAtMs - onsetMs).toFixed(0)} ms, gate failure → every host back ${(recoveredAtMs - failedAtMs).toFixed(0)} ms`,
    );
  }
  figures.push(
    figure(
      'recovery: first failing health signal → every host healthy on its previous system (3 hosts, runner-exit on h2)',
      rec.recovery,
      'ms',
      at('<=', 15000, 'at most 15 s on the sandbox'),
    ),
  );
  figures.push(
    figure('recovery: detection, fault onset (journal) → gate failure', rec.detection, 'ms'),
  );
  figures.push(
    figure(
      `recovery: detection by the gate, the later of fault onset and gate start → gate failure (the fault came before the gate in ${rec.faultBeforeGate.filter(Boolean).length} of ${rec.faultBeforeGate.length} runs)`,
      rec.gateDetection,
      'ms',
    ),
  );
  details.recovery = rec;
}

// 6. on-host cost of `exo-deploy check --local`, on the 1-host fleet's h1. The target is
// measured with a Node that exo-deploy supports (package.json engines: >= 20; the Nix
// package uses nodejs_22): this machine's, copied to the host. The host's own Debian
// Node 18 is built without a code cache or start-up snapshot (process.config), which
// alone costs it ~100 ms of CPU at every start; it is measured too, for reference.
async function onHostCheck({
  repo,
  sandbox,
  dirs,
  fleets,
  figures,
  details,
  idle,
  log,
  onHostRuns,
}) {
  const host = fleets.one.hosts[0];
  // What the Nix package installs: package.json and the bundle (it holds every dependency).
  const files = ['package.json', 'dist/cli', 'bench/lib/usage.cjs'];
  const tar = execa('tar', ['-C', repo, '-cf', '-', ...files], { encoding: 'buffer' });
  const ssh = (command, input) =>
    execa(
      'ssh',
      [...sandbox.sshOptions(dirs.one), '-o', 'BatchMode=yes', `root@${host.address}`, command],
      { input },
    );
  await ssh(
    'rm -rf /opt/exo-deploy && mkdir -p /opt/exo-deploy/bin && tar -xf - -C /opt/exo-deploy',
    (await tar).stdout,
  );
  await ssh(
    'cat > /opt/exo-deploy/bin/node && chmod +x /opt/exo-deploy/bin/node',
    readFileSync(process.execPath),
  );
  const measure = async (node) => {
    const version = (
      await sandbox.sshHost(dirs.one, host.address, `${node} --version`)
    ).stdout.trim();
    const runs = [];
    await idle();
    for (let i = 0; i <= onHostRuns; i++) {
      const r = await sandbox.sshHost(
        dirs.one,
        host.address,
        `cd /opt/exo-deploy && BENCH_USAGE_FILE=/tmp/bench-usage.json ${node} --require ./bench/lib/usage.cjs dist/cli/cli.js check --local --json >/tmp/bench-check.json 2>/tmp/bench-check.err; echo "exit $?"; cat /tmp/bench-usage.json; head -c 300 /tmp/bench-check.err`,
      );
      const [exitLine, usageLine] = String(r.stdout).split('\n');
      const u = JSON.parse(usageLine || 'null');
      if (!u) throw new Error(`check --local on ${host.name}: ${r.stdout} ${r.stderr}`);
      if (i > 0) runs.push({ ...u, exit: exitLine }); // the first run warms the page cache
    }
    // Node's own start-up on this host, for the reader to subtract
    const bare = [];
    for (let i = 0; i < Math.max(3, onHostRuns); i++) {
      const r = await sandbox.sshHost(
        dirs.one,
        host.address,
        `BENCH_USAGE_FILE=/tmp/bench-usage.json ${node} --require /opt/exo-deploy/bench/lib/usage.cjs -e 0 && cat /tmp/bench-usage.json`,
      );
      bare.push(JSON.parse(String(r.stdout)));
    }
    log(
      `on-host check --local (node ${version}): cpu ${median(runs.map((u) => u.cpuMs)).toFixed(0)} ms + children ${median(runs.map((u) => u.childrenCpuMs)).toFixed(0)} ms, peak ${median(runs.map((u) => u.vmHwmKB / 1024)).toFixed(0)} MB; node -e 0: ${median(bare.map((u) => u.cpuMs)).toFixed(0)} ms`,
    );
    return { version, runs, bare };
  };
  const supported = await measure('/opt/exo-deploy/bin/node');
  const debian = await measure('node');
  details.onHost = {
    supported: { node: supported.version, exits: supported.runs.map((u) => u.exit) },
    debian: { node: debian.version, exits: debian.runs.map((u) => u.exit) },
  };
  const { runs, version } = supported;
  figures.push(
    figure(
      `on-host check --local: CPU time, exo-deploy and the programs it runs (Node ${version})`,
      runs.map((u) => u.cpuMs + u.childrenCpuMs),
      'ms',
      at('<', 300, 'under 300 ms CPU'),
    ),
  );
  figures.push(
    figure(
      `on-host check --local: CPU time of the exo-deploy process alone (Node ${version})`,
      runs.map((u) => u.cpuMs),
      'ms',
    ),
  );
  figures.push(
    figure(
      `on-host: node -e 0 CPU time (Node ${version})`,
      supported.bare.map((u) => u.cpuMs),
      'ms',
    ),
  );
  figures.push(
    figure(
      `on-host check --local: wall time (Node ${version})`,
      runs.map((u) => u.wallMs),
      'ms',
    ),
  );
  figures.push(
    figure(
      `on-host check --local: peak memory (VmHWM of the exo-deploy process, Node ${version})`,
      runs.map((u) => u.vmHwmKB / 1024),
      'MB',
      at('<', 80, 'under 80 MB'),
    ),
  );
  figures.push(
    figure(
      `on-host check --local: CPU time, exo-deploy and the programs it runs (the host's Debian Node ${debian.version}, no code cache: reference)`,
      debian.runs.map((u) => u.cpuMs + u.childrenCpuMs),
      'ms',
    ),
  );
  figures.push(
    figure(
      `on-host: node -e 0 CPU time (the host's Debian Node ${debian.version})`,
      debian.bare.map((u) => u.cpuMs),
      'ms',
    ),
  );
  figures.push(
    figure(
      `on-host check --local: peak memory (the host's Debian Node ${debian.version})`,
      debian.runs.map((u) => u.vmHwmKB / 1024),
      'MB',
    ),
  );
}
