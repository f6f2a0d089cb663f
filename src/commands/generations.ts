// exo-deploy generations: each host's system generations, newest first.
import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { shortPath, table } from '../output/format.js';
import type { Outcome } from '../output/outcome.js';
import { readSystemState, type SystemState } from '../system/generations.js';

export async function run(ctx: Context): Promise<Outcome> {
  const states = await Promise.all(ctx.hosts.map((h) => readSystemState(ctx.executor(h))));
  return { exitCode: ExitCode.ok, data: { hosts: states }, text: states.map(render).join('\n\n') };
}

function render(state: SystemState): string {
  const rows = [['GEN', 'DATE', 'STATE', 'EXO', 'SYSTEM']];
  for (const g of state.generations) {
    const marks = [g.current ? 'current' : '', g.running ? 'running' : '']
      .filter(Boolean)
      .join(',');
    rows.push([String(g.number), g.date, marks || '-', g.exo, shortPath(g.path)]);
  }
  const runningElsewhere = state.running && !state.generations.some((g) => g.running);
  return [
    `${state.host}:`,
    table(rows),
    ...(runningElsewhere
      ? [
          `running ${shortPath(state.running)}: a system that is in no generation (a \`test\` activation)`,
        ]
      : []),
  ].join('\n');
}
