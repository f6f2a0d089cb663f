// exo-deploy smoke [--model M] [--min-nodes N] [--ready-timeout D]: place an instance across the
// cluster through exo's API, wait until its runners are ready, ask one chat completion, remove
// it. Exit 0 when it all worked.
import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import type { Outcome } from '../output/outcome.js';
import { managedClusterApis, smokeSettings, smokeTest } from '../steps/smoke.js';

export async function run(ctx: Context): Promise<Outcome> {
  const host = ctx.hosts[0];
  if (!host) throw usageError('no host to run the smoke test against');
  const settings = smokeSettings(ctx.config, ctx.hosts.length, {
    model: ctx.options.model,
    minNodes: ctx.options['min-nodes'],
    readyTimeoutMs: ctx.options['ready-timeout'],
  });
  ctx.log.info(
    `smoke test through ${host.api}: ${settings.model} on ${settings.minNodes} node(s), runners ready within ${settings.readyTimeoutMs} ms`,
  );
  const r = await smokeTest(host.api, settings, ctx.fetch, ctx.signal, managedClusterApis(ctx));
  const runners = Object.entries(r.runners);
  const lines = [
    `smoke ${r.ok ? 'passed' : 'FAILED'}: ${r.model} via ${r.api}`,
    ...(r.settledAfterMs
      ? [`  waited ${r.settledAfterMs} ms for the topology to drop node ids of replaced processes`]
      : []),
    `  instance ${r.instanceId ?? '-'} on ${r.nodes} node(s)${r.placedAfterMs !== null ? `, placed after ${r.placedAfterMs} ms` : ''}${r.readyAfterMs !== null ? `, runners ready after ${r.readyAfterMs} ms` : ''}`,
    ...(r.readyAfterMs === null && runners.length
      ? [`  runners: ${runners.map(([id, status]) => `${id} ${status}`).join(', ')}`]
      : []),
    ...(r.chat
      ? [
          `  chat: HTTP ${r.chat.status} in ${r.chat.latencyMs} ms${r.chat.reply ? `: ${JSON.stringify(r.chat.reply.slice(0, 80))}` : ''}`,
        ]
      : []),
    `  removed: ${r.instanceId === null ? 'no instance to remove' : r.removed ? `yes, instance ${r.instanceId} is gone` : 'NO: it is still placed'}`,
    ...r.problems.map((p) => `  ✗ ${p}`),
    ...r.warnings.map((w) => `  ! ${w}`),
  ];
  return { exitCode: r.ok ? ExitCode.ok : ExitCode.failed, data: r, text: lines.join('\n') };
}
