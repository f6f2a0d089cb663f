// What a node's /state says about the cluster: how many nodes it sees, and failed runners.
export interface ClusterView {
  nodes: string[];
  failedRunners: { runner: string; error: string }[];
}

export function readClusterView(state: unknown): ClusterView {
  const s = (state ?? {}) as { topology?: { nodes?: unknown }; runners?: Record<string, unknown> };
  const rawNodes = s.topology?.nodes;
  const nodes = Array.isArray(rawNodes)
    ? rawNodes.map((n) => (typeof n === 'string' ? n : String((n as { nodeId?: string; node_id?: string }).nodeId ?? (n as { node_id?: string }).node_id ?? JSON.stringify(n))))
    : rawNodes && typeof rawNodes === 'object'
      ? Object.keys(rawNodes)
      : [];
  const failedRunners = Object.entries(s.runners ?? {}).flatMap(([runner, status]) => {
    const failed = (status as { RunnerFailed?: { errorMessage?: string } } | null)?.RunnerFailed;
    return failed ? [{ runner, error: failed.errorMessage ?? 'RunnerFailed' }] : [];
  });
  return { nodes, failedRunners };
}
