// 5. Fleet scale, simulated: exo-deploy's real deploy (scheduler, run journal, report) against
// a simulated fleet of 10, 100 and 1,000 hosts at max_parallel 1, 10 and 50. Each run is a
// process of its own (./sim/one.mjs), so that its peak memory is its own.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { at, figure, median } from './lib/stats.mjs';
import { bundleFleet, fleetDir } from './sim/fleet-module.mjs';
import { idealLockstep } from './sim/ideal.mjs';
import { LATENCY_MEDIANS, seededLatencies } from './sim/latencies.mjs';

const run = promisify(execFile);

/** Latencies are scaled per configuration so that each run's ideal makespan is at least
 * `targetMs`: a few seconds of simulated work, not minutes (the 1,000-host, one-at-a-time
 * run is the exception: at scale 1 it is already ~30 s). */
export function scaleFor(hosts, limit, targetMs) {
  const unscaled = idealLockstep(seededLatencies(hosts, 1), limit).totalMs;
  return Math.max(1, Math.round(targetMs / unscaled));
}

export async function fleetScale(options) {
  // bundled once here: each run's process only loads it
  const bundle = await fleetDir();
  try {
    return await measure({ ...options, fleetModule: await bundleFleet(bundle.dir) });
  } finally {
    await bundle.remove();
  }
}

async function measure({
  repo,
  sizes = [10, 100, 1000],
  limits = [1, 10, 50],
  seeds = [1, 2, 3],
  targetMs = 3000,
  log,
  idle = async () => {},
  fleetModule,
}) {
  const one = path.join(repo, 'bench/sim/one.mjs');
  const results = [];
  for (const seed of seeds) {
    for (const hosts of sizes) {
      for (const limit of limits) {
        await idle();
        const scale = scaleFor(hosts, limit, targetMs);
        const { stdout } = await run(
          process.execPath,
          [one, String(hosts), String(limit), String(seed), String(scale)],
          { maxBuffer: 1 << 24, env: { ...process.env, EXO_DEPLOY_SIM_FLEET: fleetModule } },
        );
        const r = JSON.parse(stdout);
        if (r.outcome !== 'success')
          throw new Error(
            `simulated deploy ${hosts}×${limit} seed ${seed}: ${r.outcome} (exit ${r.exitCode}): ${r.error ?? ''}`,
          );
        results.push({ ...r, scale });
        log(
          `sim: ${hosts} hosts, max_parallel ${limit}, seed ${seed}: ${r.makespanMs.toFixed(0)} ms (ideal ${r.idealMs.toFixed(0)}), cpu ${r.cpuMs.toFixed(0)} ms, ${r.maxRssMB.toFixed(0)} MB`,
        );
      }
    }
  }
  const figures = [];
  const of = (hosts, limit) => results.filter((r) => r.hosts === hosts && r.maxParallel === limit);
  for (const hosts of sizes) {
    for (const limit of limits) {
      const rs = of(hosts, limit);
      const extra = {
        idealMs: median(rs.map((r) => r.idealMs)),
        makespanMs: median(rs.map((r) => r.makespanMs)),
        latencyMediansMs: Object.fromEntries(
          Object.entries(LATENCY_MEDIANS).map(([k, v]) => [k, v * rs[0].scale]),
        ),
        stepSpansMs: rs[0].stepSpansMs,
      };
      figures.push(
        figure(
          `fleet scale: makespan / ideal, ${hosts} hosts, max_parallel ${limit}`,
          rs.map((r) => r.makespanMs / r.idealMs),
          '×',
          at('<=', 1.1, 'makespan within 10% of the ideal for lockstep'),
          extra,
        ),
      );
    }
  }
  for (const hosts of sizes) {
    for (const limit of limits)
      figures.push(
        figure(
          `fleet scale: toolkit CPU per host, ${hosts} hosts, max_parallel ${limit}`,
          of(hosts, limit).map((r) => r.cpuMs / hosts),
          'ms/host',
        ),
      );
  }
  // What the makespan spends beyond the ideal, per host: the fixed cost a real (seconds-long)
  // build, copy and activation would have to dwarf.
  for (const hosts of sizes) {
    for (const limit of limits)
      figures.push(
        figure(
          `fleet scale: makespan beyond the ideal, per host, ${hosts} hosts, max_parallel ${limit}`,
          of(hosts, limit).map((r) => (r.makespanMs - r.idealMs) / hosts),
          'ms/host',
        ),
      );
  }
  const big = Math.max(...sizes);
  for (const limit of limits)
    figures.push(
      figure(
        `fleet scale: peak memory, ${big} hosts, max_parallel ${limit}`,
        of(big, limit).map((r) => r.maxRssMB),
        'MB',
        at('<', 200, 'under 200 MB at 1,000 hosts'),
      ),
    );
  // Flat cost per host: CPU per host at 1,000 hosts against 100 hosts, paired by seed and max_parallel.
  const mid = sizes.includes(100) ? 100 : sizes[0];
  const ratios = [];
  for (const limit of limits)
    for (const seed of seeds) {
      const a = results.find((r) => r.hosts === big && r.maxParallel === limit && r.seed === seed);
      const b = results.find((r) => r.hosts === mid && r.maxParallel === limit && r.seed === seed);
      if (a && b) ratios.push(a.cpuMs / big / (b.cpuMs / mid));
    }
  figures.push(
    figure(
      `fleet scale: CPU per host, ${big} hosts / ${mid} hosts`,
      ratios,
      '×',
      at(
        '<=',
        1.25,
        'cost per host flat as the fleet grows (at most 1.25 × from 100 to 1,000 hosts)',
      ),
    ),
  );
  return { figures, runs: results };
}
