#!/usr/bin/env node
// npm run bench: exo-deploy's benchmarks against their targets, written to bench/results.md and
// bench/results.json. A benchmark, not a test: it never fails on a slow machine; each figure
// says whether this run met its target.
//
//   node bench/run.mjs [--only startup,sandbox,sim] [--quick] [--no-wait] [--no-build]
//
// It waits (up to 20 min) while CI or another sandbox runs on this machine (vitest or
// systemd-nspawn processes), so that neither slows the other. The sandbox part needs root
// and systemd-nspawn (see sandbox/README.md); elsewhere it is skipped and said so.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { onSandbox, liveSandboxes, ownPids } from './sandbox.mjs';
import { waitForIdle } from './lib/idle.mjs';
import { fleetScale } from './sim.mjs';
import { startup } from './startup.mjs';
import { METHOD } from './lib/method.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean' },
    'no-wait': { type: 'boolean' },
    'no-build': { type: 'boolean' },
    out: { type: 'string' },
  },
});
const parts = new Set((opts.only ?? 'startup,sandbox,sim').split(','));
const outDir = path.resolve(opts.out ?? path.join(repo, 'bench'));
const t0 = Date.now();
const log = (m) =>
  console.error(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);

const stop = new AbortController();
process.on('SIGINT', async () => {
  if (stop.signal.aborted) process.exit(130);
  stop.abort();
  log('interrupted: tearing down the sandboxes');
  const { down } = await import(path.join(repo, 'sandbox/fleet.mjs'));
  for (const dir of liveSandboxes)
    await down({ dir, log }).catch((e) => log(`down ${dir}: ${e.message}`));
  process.exit(130);
});

// Not alongside CI or another sandbox: wait before the run and before each measurement.
let waitedMs = 0;
const idle = opts['no-wait']
  ? async () => {}
  : async () => {
      waitedMs += await waitForIdle({ log, ours: ownPids });
    };
try {
  await idle();
} catch (e) {
  log(`${e.message}; not measuring alongside it`);
  process.exit(75);
}

if (!opts['no-build']) {
  log('npm run build');
  execFileSync('npm', ['run', '--silent', 'build'], {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

const tryRun = (file, args) => {
  try {
    return execFileSync(file, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
};
const machine = {
  cores: os.cpus().length,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
  node: process.version,
  nix: tryRun('nix', ['--version']),
  kernel: `${os.type()} ${os.release()}`,
  hostname: os.hostname(),
};

const quick = Boolean(opts.quick);
const figures = [];
const details = {};
const skipped = [];
if (parts.has('startup')) {
  log('1. start-up');
  figures.push(...(await startup({ repo, runs: quick ? 5 : 20, log, idle })));
}
if (parts.has('sandbox')) {
  const root = process.getuid?.() === 0;
  const nspawn = tryRun('which', ['systemd-nspawn']) !== null;
  if (!root || !nspawn) {
    skipped.push('2, 3, 4, 6 (sandbox): they need root and systemd-nspawn');
    log('sandbox figures skipped: they need root and systemd-nspawn');
  } else {
    log('2, 3, 4, 6: sandbox fleets');
    const r = await onSandbox({
      repo,
      signal: stop.signal,
      log,
      idle,
      ...(quick ? { checkRuns: 2, rollouts: 1, recoveries: 1, onHostRuns: 1 } : {}),
    });
    figures.push(...r.figures);
    details.sandbox = r.details;
    for (const e of r.details.errors ?? []) skipped.push(`sandbox ${e.split('\n')[0]}`);
  }
}
if (parts.has('sim')) {
  log('5. fleet scale, simulated');
  const r = await fleetScale({
    repo,
    log,
    idle,
    ...(quick ? { seeds: [1], sizes: [10, 100], targetMs: 500 } : {}),
  });
  figures.push(...r.figures);
  details.sim = r.runs;
}

const durationS = Math.round((Date.now() - t0) / 1000);
const withTarget = figures.filter((f) => f.target);
const results = {
  generatedAt: new Date().toISOString(),
  command: `node bench/run.mjs${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
  durationS,
  waitedForOthersS: Math.round(waitedMs / 1000),
  machine,
  summary: {
    targets: withTarget.length,
    met: withTarget.filter((f) => f.met).length,
    notMet: withTarget.filter((f) => !f.met).map((f) => f.name),
    skipped,
  },
  figures,
  details,
};
await mkdir(outDir, { recursive: true });
await writeFile(path.join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(path.join(outDir, 'results.md'), markdown(results));
log(
  `done in ${durationS} s: ${results.summary.met} of ${results.summary.targets} targets met; ${path.relative(process.cwd(), path.join(outDir, 'results.md'))}`,
);

function markdown(r) {
  const num = (x) => (Number.isFinite(x) ? String(x) : '–');
  const lines = [
    '# exo-deploy benchmarks',
    '',
    `Written by \`${r.command}\` (\`npm run bench\`) on ${r.generatedAt}, in ${r.durationS} s.`,
    '',
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, ${r.machine.nix ?? 'no nix'}, ${r.machine.kernel}.`,
    '',
    `Targets met: **${r.summary.met} of ${r.summary.targets}**.${r.summary.notMet.length ? ` Not met: ${r.summary.notMet.join('; ')}.` : ''}${r.summary.skipped.length ? ` Skipped: ${r.summary.skipped.join('; ')}.` : ''}`,
    '',
    'Every figure is the median of `runs` runs, with min and max; a ratio is taken per pair of runs made one after the other.',
    '',
    '| figure | median | min | max | unit | runs | target | met |',
    '| --- | ---: | ---: | ---: | --- | ---: | --- | --- |',
  ];
  for (const f of r.figures)
    lines.push(
      `| ${f.name} | ${num(f.median)} | ${num(f.min)} | ${num(f.max)} | ${f.unit} | ${f.runs} | ${f.target ? f.target.text : ''} | ${f.met === null ? '' : f.met ? 'yes' : '**no**'} |`,
    );
  lines.push('', METHOD);
  return `${lines.join('\n')}\n`;
}
