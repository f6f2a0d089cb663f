// 1. Start-up: `exo-deploy --version` and `--help` wall time against `node -e 0`, measured in
// the same loop, interleaved (node, --version, --help, node, …) so that drift hits all three.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { at, figure } from './lib/stats.mjs';

export async function startup({ repo, runs = 20, log, idle = async () => {} }) {
  const cli = path.join(repo, 'dist/cli/cli.js');
  const cases = { node: ['-e', '0'], version: [cli, '--version'], help: [cli, '--help'] };
  const time = (args) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return ms;
  };
  for (const args of Object.values(cases)) time(args); // warm the page cache
  const t = { node: [], version: [], help: [] };
  for (let i = 0; i < runs; i++) {
    if (i % 5 === 0) await idle();
    for (const [k, args] of Object.entries(cases)) t[k].push(time(args));
  }
  log(`start-up: node -e 0 ${t.node.map((x) => x.toFixed(0)).join(' ')} ms`);
  const figures = [figure('start-up: node -e 0 (baseline)', t.node, 'ms')];
  for (const k of ['version', 'help']) {
    figures.push(figure(`start-up: exo-deploy --${k}`, t[k], 'ms'));
    figures.push(
      figure(
        `start-up: --${k} / node -e 0`,
        t[k].map((x, i) => x / t.node[i]),
        '×',
        at('<=', 2.5, 'at most 2.5 × node -e 0 (paired runs)'),
      ),
    );
    figures.push(
      figure(
        `start-up: --${k} minus node -e 0`,
        t[k].map((x, i) => x - t.node[i]),
        'ms',
        at('<=', 100, 'no more than 100 ms above node -e 0 (paired runs)'),
      ),
    );
  }
  return figures;
}
