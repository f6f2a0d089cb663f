// Checking the selected hosts together: what `check` prints, and the deploy's preflight.
import type { Context } from '../context.js';
import {
  ALL_PARTS,
  checkHost,
  judgeMembership,
  type CheckOptions,
  type CheckPart,
  type HostCheck,
} from '../health/check.js';

/** A host check's settings: the configuration's, the caller's window and what it asks more. */
export function checkOptions(
  ctx: Pick<Context, 'config' | 'fetch'>,
  window: Omit<CheckOptions, 'health' | 'nix' | 'fetch' | 'expectedNodes'> &
    Partial<Pick<CheckOptions, 'expectedNodes'>>,
): CheckOptions {
  return {
    health: ctx.config.health,
    nix: ctx.config.programs.nix,
    fetch: ctx.fetch,
    expectedNodes: null,
    ...window,
  };
}

/** What the module's health timer reads every few minutes on every host: exo's health, not the
 * machine's Nix and systemd versions, which only a deploy changes (and whose reads, two nix
 * processes among them, were half the check's CPU time). */
export const HEALTH_PARTS: readonly CheckPart[] = ALL_PARTS.filter((p) => p !== 'compatibility');

export async function checkHosts(
  ctx: Context,
  sinceMs: number,
  { sinceProcessStart = false, parts = ALL_PARTS } = {},
): Promise<HostCheck[]> {
  const together = ctx.cluster.one && ctx.hosts.length > 1;
  const options = checkOptions(ctx, {
    sinceMs,
    sinceProcessStart,
    expectedNodes: ctx.cluster.expectedNodes,
    keepSeenNodes: together,
  });
  const checks = await Promise.all(
    ctx.hosts.map((host) => checkHost(ctx.executor(host), options, parts)),
  );
  if (together) judgeMembership(checks);
  return checks;
}
