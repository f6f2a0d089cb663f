// Checking the selected hosts together: what `check` prints, and the deploy's preflight.
import type { Context } from '../context.js';
import { checkHost, type HostCheck } from '../health/check.js';

export function expectedNodes(ctx: Context): number | null {
  if (ctx.options['expect-nodes'] !== undefined) return ctx.options['expect-nodes'];
  if (ctx.config.health.cluster_size > 0) return ctx.config.health.cluster_size;
  // --local knows nothing of the other nodes; a config's hosts are the cluster.
  return ctx.options.local ? null : ctx.config.hosts.length;
}

export async function checkHosts(ctx: Context, sinceMs: number, sinceProcessStart = false): Promise<HostCheck[]> {
  return Promise.all(
    ctx.hosts.map((host) =>
      checkHost(ctx.executor(host), { health: ctx.config.health, nix: ctx.config.programs.nix, sinceMs, sinceProcessStart, expectedNodes: expectedNodes(ctx), fetch: ctx.fetch }),
    ),
  );
}
