// exo-deploy smoke [--model M] [--min-nodes N]: place an instance across the cluster through
// exo's API, wait for it, ask one chat completion, remove it. Exit 0 when it all worked.
import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import type { Outcome } from '../output/outcome.js';
import { smokeSettings, smokeTest } from '../steps/smoke.js';

export async function run(ctx: Context): Promise<Outcome> {
  const host = ctx.hosts[0];
  if (!host) throw usageError('no host to run the smoke test against');
  const settings = smokeSettings(ctx);
  ctx.log.info(`smoke test through ${host.api}: ${settings.model} on ${settings.minNodes} node(s)`);
  const r = await smokeTest(host.api, settings, ctx.fetch, ctx.signal);
  const lines = [
    `smoke ${r.ok ? 'passed' : 'FAILED'}: ${r.model} via ${r.api}`,
    `  instance ${r.instanceId ?? '-'} on ${r.nodes} node(s)${r.placedAfterMs !== null ? `, ready after ${r.placedAfterMs} ms` : ''}`,
    ...(r.chat ? [`  chat: HTTP ${r.chat.status} in ${r.chat.latencyMs} ms${r.chat.reply ? `: ${JSON.stringify(r.chat.reply.slice(0, 80))}` : ''}`] : []),
    `  removed: ${r.removed ? 'yes' : 'no'}`,
    ...r.problems.map((p) => `  ✗ ${p}`),
  ];
  return { exitCode: r.ok ? ExitCode.ok : ExitCode.failed, data: r, text: lines.join('\n') };
}
