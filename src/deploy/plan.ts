// The rollout plan: which hosts are activated together, in what order, and which go back
// when a batch fails. Pure functions: the scheduler's rules are unit-tested on their own.
import type { Host } from '../config/host.js';
import type { RolloutSettings, Strategy } from '../config/schema.js';
import type { Release } from '../system/generations.js';
import { onNewSystem, type HostPhase } from './record.js';

/** Batches in order; every host of a batch is activated, gated and switched together. */
export function planBatches(
  hosts: readonly Host[],
  strategy: Strategy,
  rollout: RolloutSettings,
): Host[][] {
  if (hosts.length === 0) return [];
  switch (strategy) {
    case 'lockstep':
      return [[...hosts]];
    case 'rolling':
      return chunks(hosts, rollout.batch_size);
    case 'canary': {
      const canary = hosts.find((h) => h.name === rollout.canary) ?? hosts[0];
      const rest = hosts.filter((h) => h !== canary);
      return rest.length ? [[canary as Host], rest] : [[canary as Host]];
    }
  }
}

/** Who goes back when `failed` (a batch) fails: with scope "all", every host on a new
 * system, batches already made permanent included; with "failed", that batch only. */
export function hostsToRollBack(
  phases: ReadonlyMap<string, HostPhase>,
  scope: RolloutSettings['rollback_scope'],
  failed: readonly string[],
): string[] {
  return [...phases]
    .filter(([name, phase]) => onNewSystem(phase) && (scope === 'all' || failed.includes(name)))
    .map(([name]) => name);
}

/** items in order, `size` to a chunk (the last one may be smaller). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs fn over items with at most `limit` at once (max_parallel), keeping the order of results. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i).then(
        (value) => ({ status: 'fulfilled', value }) as const,
        (reason: unknown) => ({ status: 'rejected', reason }) as const,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A system in the cluster while a rollout runs: what a host runs now, or its new system. */
export interface RolloutSystem {
  host: string;
  system: 'now' | 'new';
  /** Its release.json; null when it has none. */
  release: Release | null;
}

/** A libp2p-era exo keys its network with this hard-coded version, the same for every 1.0
 * release, unless a namespace is pinned. */
const LIBP2P_NETWORK_VERSION = 'v0.0.1';

/** The namespace a system's exo finds peers in: the pinned one, else its era's default. null
 * when release.json cannot tell: the era is unknown, or a zenoh-era exo's default (its Python
 * package version, which release.json does not carry). */
export function effectiveNamespace(release: Release | null): string | null {
  if (!release?.era) return null;
  if (release.namespace !== null) return release.namespace;
  return release.era === 'libp2p' ? LIBP2P_NETWORK_VERSION : null;
}

/**
 * Why the systems a rollout mixes would not all form one exo cluster; [] when they would.
 * exo's rules: nodes of different eras (libp2p, zenoh) never see each other; within an era,
 * nodes join when their namespaces are equal, whatever their builds (two builds in one
 * namespace are one mixed-version cluster).
 */
export function clusterSplits(systems: readonly RolloutSystem[]): string[] {
  const reasons: string[] = [];
  const noEra = systems.filter((s) => !s.release?.era);
  if (noEra.length)
    reasons.push(
      `exo's era (libp2p or zenoh) is unknown on ${where(noEra)}: its release.json is missing or older than schema 2`,
    );
  const eras = groupBy(
    systems.filter((s) => s.release?.era),
    (s) => s.release?.era as string,
  );
  if (eras.size > 1)
    reasons.push(
      `${[...eras].map(([era, list]) => `${where(list)} run${list.length === 1 ? 's' : ''} a ${era}-era exo`).join(' but ')}, and the two eras never see each other`,
    );
  const zenohDefault = systems.filter(
    (s) => s.release?.era === 'zenoh' && s.release.namespace === null,
  );
  if (zenohDefault.length)
    reasons.push(
      `${where(zenohDefault)} run${zenohDefault.length === 1 ? 's' : ''} a zenoh-era exo with no pinned namespace: its default is exo's Python package version, which release.json cannot tell`,
    );
  const namespaces = groupBy(
    systems.filter((s) => effectiveNamespace(s.release) !== null),
    (s) => effectiveNamespace(s.release) as string,
  );
  if (namespaces.size > 1)
    reasons.push(
      `the namespaces differ: ${[...namespaces].map(([ns, list]) => `"${ns}"${ns === LIBP2P_NETWORK_VERSION && list.every((s) => s.release?.namespace === null) ? ' (the libp2p default)' : ''} on ${where(list)}`).join(', ')}`,
    );
  return reasons;
}

/** "h1, h2 (now) and h1 (new system)". */
function where(systems: readonly RolloutSystem[]): string {
  const now = systems.filter((s) => s.system === 'now').map((s) => s.host);
  const next = systems.filter((s) => s.system === 'new').map((s) => s.host);
  return [
    now.length ? `${now.join(', ')} (now)` : '',
    next.length ? `${next.join(', ')} (new system)` : '',
  ]
    .filter(Boolean)
    .join(' and ');
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}
