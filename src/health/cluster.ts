// What a node's /state says about the cluster: the node ids it lists, its runners' statuses
// and the instances placed. exo serialises a runner's status and an instance as tagged
// objects ({"RunnerReady": {…}}, {"MlxRingInstance": {…}}), in camelCase.
import { printable } from '../output/format.js';

/** A runner's lifecycle in exo (shared/types/worker/runners.py, the same in both eras): a new
 * runner goes Idle → Connecting → Connected → Loading → Loaded → WarmingUp → Ready; Running
 * while it serves; a failed one is Failed for a moment, then shut down and created again. */
const RUNNER_STATUSES = [
  'RunnerIdle',
  'RunnerConnecting',
  'RunnerConnected',
  'RunnerLoading',
  'RunnerLoaded',
  'RunnerWarmingUp',
  'RunnerReady',
  'RunnerRunning',
  'RunnerShuttingDown',
  'RunnerShutdown',
  'RunnerFailed',
] as const;
type RunnerStatus = (typeof RUNNER_STATUSES)[number];

export interface Runner {
  /** null: a tag this toolkit does not know. */
  status: RunnerStatus | null;
  /** RunnerFailed's errorMessage. */
  error: string | null;
}

export interface Instance {
  id: string;
  model: string | null;
  /** The runners of its shards, one per node. */
  runners: string[];
  /** The nodes its shards run on: exo deletes the instance once one of them leaves. */
  nodes: string[];
}

export interface ClusterView {
  nodes: string[];
  runners: Map<string, Runner>;
  failedRunners: { runner: string; error: string }[];
  instances: Instance[];
}

type Tagged = Record<string, unknown> | null | undefined;

/** The tag of a tagged object and what it wraps. */
function untag(value: unknown): [tag: string, inner: Record<string, unknown>] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const [entry] = Object.entries(value as Record<string, unknown>);
  return entry ? [entry[0], (entry[1] ?? {}) as Record<string, unknown>] : undefined;
}

export function readRunner(value: unknown): Runner {
  const [tag, inner] = untag(value) ?? ['', {}];
  const status = (RUNNER_STATUSES as readonly string[]).includes(tag)
    ? (tag as RunnerStatus)
    : null;
  const error =
    status === 'RunnerFailed'
      ? typeof inner.errorMessage === 'string'
        ? printable(inner.errorMessage)
        : 'RunnerFailed'
      : null;
  return { status, error };
}

function readInstances(instances: unknown): Instance[] {
  return Object.entries((instances ?? {}) as Record<string, Tagged>).map(([id, wrapped]) => {
    const assignments = (untag(wrapped)?.[1].shardAssignments ?? {}) as {
      modelId?: unknown;
      nodeToRunner?: Record<string, unknown>;
    };
    return {
      id,
      model: typeof assignments.modelId === 'string' ? assignments.modelId : null,
      runners: Object.values(assignments.nodeToRunner ?? {}).filter(
        (r): r is string => typeof r === 'string',
      ),
      nodes: Object.keys(assignments.nodeToRunner ?? {}),
    };
  });
}

export function readClusterView(state: unknown): ClusterView {
  const s = (state ?? {}) as {
    topology?: { nodes?: unknown };
    runners?: Record<string, unknown>;
    instances?: unknown;
  };
  const rawNodes = s.topology?.nodes;
  const nodes = Array.isArray(rawNodes)
    ? rawNodes.map((n) =>
        typeof n === 'string'
          ? n
          : String(
              (n as { nodeId?: string; node_id?: string }).nodeId ??
                (n as { node_id?: string }).node_id ??
                JSON.stringify(n),
            ),
      )
    : rawNodes && typeof rawNodes === 'object'
      ? Object.keys(rawNodes)
      : [];
  const runners = new Map(
    Object.entries(s.runners ?? {}).map(([id, status]) => [id, readRunner(status)]),
  );
  const failedRunners = [...runners].flatMap(([runner, r]) =>
    r.error !== null ? [{ runner, error: r.error }] : [],
  );
  return { nodes, runners, failedRunners, instances: readInstances(s.instances) };
}
