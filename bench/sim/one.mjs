// One simulated deploy, in a process of its own (so that its peak memory is its own):
//   node bench/sim/one.mjs HOSTS MAX_PARALLEL SEED
// exo-deploy's real `deploy` command (dist/src: config loading, the lock, the deployment with
// its scheduler, the fsynced journal, the report) with the run layer and fetch replaced by the
// simulated fleet (test/sim/fleet.ts, ./fleet-module.mjs), each host with its seeded latencies
// (./latencies.mjs). Prints one JSON line.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stepSpans } from '../lib/stats.mjs';
import { loadFleet } from './fleet-module.mjs';
import { idealLockstep } from './ideal.mjs';
import { seededLatencies } from './latencies.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const [count, limit, seed, scale = 1] = process.argv.slice(2).map(Number);
const { createContext } = await import(path.join(repo, 'dist/src/context.js'));
const { run: deploy } = await import(path.join(repo, 'dist/src/commands/deploy.js'));

const { answeringRunner, fleetFetch, fleetRule, simFleet } = await loadFleet();
const latencies = seededLatencies(count, seed, scale);
const fleet = simFleet(
  latencies.map((_, i) => `h${String(i + 1).padStart(4, '0')}`),
  { latency: (i) => latencies[i] },
);
const dir = await mkdtemp(path.join(process.env.BENCH_TMP || os.tmpdir(), 'exo-deploy-bench-sim-'));
try {
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  await writeFile(path.join(dir, 'flake.lock'), '{}\n');
  const config = path.join(dir, 'exo-deploy.toml');
  // soak 0 and a short interval: the gate's real sleeps would otherwise be the whole makespan
  await writeFile(
    config,
    `[health]\nsoak = "0s"\ninterval = "10ms"\nready_timeout = "30s"\ntimeout = "5s"\n[rollout]\nmax_parallel = ${limit}\n[build]\nhosts_per_evaluation = 1\nmax_evaluations = ${limit}\n${fleet.hosts.map((h) => `[hosts.${h.name}]\ntarget = "root@${h.address}"\n`).join('')}`,
  );
  const log = { info() {}, verbose() {}, step() {}, warn() {} };
  const runner = answeringRunner(fleetRule(fleet));
  const ctx = await createContext({ config, yes: true }, [], {
    runner,
    log,
    signal: new AbortController().signal,
    fetch: fleetFetch(fleet),
  });
  if (global.gc) global.gc();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const outcome = await deploy(ctx);
  const makespanMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await ctx.close();
  const ideal = idealLockstep(latencies, limit);
  process.stdout.write(
    `${JSON.stringify({
      hosts: count,
      maxParallel: limit,
      seed,
      outcome: outcome.data.outcome,
      exitCode: outcome.exitCode,
      makespanMs,
      idealMs: ideal.totalMs,
      idealPhases: ideal.phases,
      stepSpansMs: stepSpans(outcome.data),
      cpuMs: (cpu.user + cpu.system) / 1000,
      // VmHWM, not getrusage's maxRSS: Linux carries the parent's peak over fork and exec into
      // the child's maxRSS, so this process would report the bench runner's memory.
      maxRssMB:
        Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) /
        1024,
    })}\n`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
