// The rollout plan: which hosts are activated together, in what order, and which go back
// when a batch fails. Pure functions: the scheduler's rules are unit-tested on their own.
import type { Host } from '../config/host.js';
import type { RolloutSettings, Strategy } from '../config/schema.js';
import { onNewSystem, type HostPhase } from './record.js';

/** Batches in order; every host of a batch is activated, gated and switched together. */
export function planBatches(hosts: readonly Host[], strategy: Strategy, rollout: RolloutSettings): Host[][] {
  if (hosts.length === 0) return [];
  switch (strategy) {
    case 'lockstep':
      return [[...hosts]];
    case 'rolling': {
      const batches: Host[][] = [];
      for (let i = 0; i < hosts.length; i += rollout.batch_size) batches.push(hosts.slice(i, i + rollout.batch_size));
      return batches;
    }
    case 'canary': {
      const canary = hosts.find((h) => h.name === rollout.canary) ?? hosts[0];
      const rest = hosts.filter((h) => h !== canary);
      return rest.length ? [[canary as Host], rest] : [[canary as Host]];
    }
  }
}

/** Who goes back when `failed` (a batch) fails: with scope "all", every host on a new
 * system, batches already made permanent included; with "failed", that batch only. */
export function hostsToRollBack(phases: ReadonlyMap<string, HostPhase>, scope: RolloutSettings['rollback_scope'], failed: readonly string[]): string[] {
  return [...phases].filter(([name, phase]) => onNewSystem(phase) && (scope === 'all' || failed.includes(name))).map(([name]) => name);
}

/** Runs fn over items with at most `limit` at once (max_parallel), keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T).then((value) => ({ status: 'fulfilled', value }) as const, (reason: unknown) => ({ status: 'rejected', reason }) as const);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
