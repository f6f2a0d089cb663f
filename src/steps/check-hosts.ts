// Checking the selected hosts together: what `check` prints, and the deploy's preflight.
import type { Context } from '../context.js';
import {
  ALL_PARTS,
  checkHost,
  judgeMembership,
  type CheckPart,
  type HostCheck,
} from '../health/check.js';

export function expectedNodes(ctx: Context): number | null {
  if (ctx.options['expect-nodes'] !== undefined) return ctx.options['expect-nodes'];
  if (ctx.config.health.cluster_size > 0) return ctx.config.health.cluster_size;
  // --local knows nothing of the other nodes; a config's hosts are the cluster.
  return ctx.options.local ? null : ctx.config.hosts.length;
}

/** Whether the config's hosts are one exo cluster, so that each must see the others' current
 * node ids: cluster_size 0 (the hosts in the config) or at least their number. A smaller
 * cluster_size says they are several clusters or lone nodes, and only the count is checked.
 * `check --local` knows no other host's id: it checks the count (--expect-nodes) only. */
export function oneCluster(ctx: Context): boolean {
  const size = ctx.config.health.cluster_size;
  return !ctx.options.local && (size === 0 || size >= ctx.config.hosts.length);
}

/** What the module's health timer reads every few minutes on every host: exo's health, not the
 * machine's Nix and systemd versions, which only a deploy changes (and whose reads, two nix
 * processes among them, were half the check's CPU time). */
const LOCAL_PARTS: readonly CheckPart[] = ALL_PARTS.filter((p) => p !== 'compatibility');

export async function checkHosts(
  ctx: Context,
  sinceMs: number,
  sinceProcessStart = false,
): Promise<HostCheck[]> {
  const parts = ctx.options.local ? LOCAL_PARTS : ALL_PARTS;
  const together = oneCluster(ctx) && ctx.hosts.length > 1;
  const checks = await Promise.all(
    ctx.hosts.map((host) =>
      checkHost(
        ctx.executor(host),
        {
          health: ctx.config.health,
          nix: ctx.config.programs.nix,
          sinceMs,
          sinceProcessStart,
          expectedNodes: expectedNodes(ctx),
          keepSeenNodes: together,
          fetch: ctx.fetch,
        },
        parts,
      ),
    ),
  );
  if (together) judgeMembership(checks);
  return checks;
}
