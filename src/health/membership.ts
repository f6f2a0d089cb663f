// Cluster membership judged by node ids, for hosts checked together. A count of the ids a
// node's /state lists proves little: exo keeps a silent node for 30-40 s, and a restarted node
// comes back under a new id, so a count can be made up of stale ids. What holds is that each
// checked host's current id (/node_id) is among the ids every other checked host lists. Stale
// or unmanaged ids neither satisfy nor break that; for nodes not managed here only a count is
// possible (cluster_size).

/** The ids one node's /state lists, kept as 32-bit hashes in a sorted array: a fleet's checks
 * hold one list per host until they are compared, each as long as the cluster, so strings
 * would cost the square of the fleet (~50 MB at 1,000 hosts), these 4 MB. A hash can only
 * hide a missing id by colliding with one of the others listed: at 1,000 nodes, a chance of
 * one in four million. */
export class SeenNodes {
  readonly count: number;
  private readonly keys: Uint32Array;

  constructor(ids: readonly string[]) {
    this.count = ids.length;
    const keys = new Uint32Array(ids.length);
    for (let i = 0; i < ids.length; i++) keys[i] = SeenNodes.key(ids[i] as string);
    this.keys = keys.sort();
  }

  /** new SeenNodes(ids), or the last one made here when it holds the same ids: the hosts of a
   * formed cluster list the same ids, and a fleet's check holds one list per host until it
   * compares them (1,000 hosts: one list, not 1,000 of 4 kB). */
  static of(ids: readonly string[]): SeenNodes {
    if (scratch.length < ids.length) scratch = new Uint32Array(ids.length);
    const keys = scratch.subarray(0, ids.length);
    for (let i = 0; i < ids.length; i++) keys[i] = SeenNodes.key(ids[i] as string);
    keys.sort();
    if (last?.count === ids.length && last.keys.every((k, i) => k === keys[i])) return last;
    last = new SeenNodes(ids);
    return last;
  }

  has(id: string): boolean {
    return this.hasKey(SeenNodes.key(id));
  }

  /** FNV-1a: the key of an id, computed once for an id looked up in many lists. */
  static key(id: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
    return h >>> 0;
  }

  hasKey(key: number): boolean {
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = keys[mid] as number;
      if (v === key) return true;
      if (v < key) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** Left out of JSON: records and status files list at most a few ids (HostCheck.cluster.nodes). */
  toJSON(): undefined {
    return undefined;
  }
}

/** SeenNodes.of's: the last list it made, and its buffer for the keys of the next. */
let last: SeenNodes | undefined;
let scratch = new Uint32Array(0);

export interface Member {
  host: string;
  /** Its current id (/node_id); null when it did not answer. */
  nodeId: string | null;
  /** What its /state lists; null when it did not answer. */
  seen: SeenNodes | null;
}

/** A node id as people compare them: its two ends. */
export const shortNodeId = (id: string) =>
  id.length > 10 ? `${id.slice(0, 4)}…${id.slice(-4)}` : id;

/**
 * Which members do not see which, by host. A viewer that lacks a peer's id is the one at fault;
 * when the viewer is not judged (a peer outside the gated batch), the problem goes to the judged
 * host it does not see. Members that did not answer are skipped: their probes failed already.
 */
export function membershipProblems(
  members: readonly Member[],
  judged: (host: string) => boolean = () => true,
): Map<string, string[]> {
  const problems = new Map<string, string[]>();
  const add = (host: string, problem: string) =>
    problems.set(host, [...(problems.get(host) ?? []), problem]);
  const known = members.filter((m): m is Member & { nodeId: string } => m.nodeId !== null);
  const keys = known.map((m) => SeenNodes.key(m.nodeId));
  const isJudged = known.map((m) => judged(m.host));
  const byId = new Map<string, string[]>();
  for (const m of known) byId.set(m.nodeId, [...(byId.get(m.nodeId) ?? []), m.host]);
  for (const [id, hosts] of byId) {
    if (hosts.length < 2) continue;
    for (const host of hosts.filter(judged))
      add(
        host,
        `${hosts.join(' and ')} answer as the same exo node (${shortNodeId(id)}): check their api addresses`,
      );
  }
  // Every viewer against every member: a fleet's square, so plain loops over precomputed keys.
  for (const viewer of members) {
    const seen = viewer.seen;
    if (!seen) continue;
    const viewerJudged = judged(viewer.host);
    const missing: number[] = [];
    for (let i = 0; i < known.length; i++) {
      const peer = known[i] as (typeof known)[number];
      if (
        seen.hasKey(keys[i] as number) ||
        peer.host === viewer.host ||
        peer.nodeId === viewer.nodeId
      )
        continue;
      if (viewerJudged || isJudged[i]) missing.push(i);
    }
    if (missing.length === 0) continue;
    const others =
      seen.count -
      new Set(known.filter((_, i) => seen.hasKey(keys[i] as number)).map((m) => m.nodeId)).size;
    for (const i of missing) {
      const peer = known[i] as (typeof known)[number];
      add(
        viewerJudged ? viewer.host : peer.host,
        `${viewer.host} does not see ${peer.host} (node ${shortNodeId(peer.nodeId)}); it sees ${seen.count} id(s), ${others} not of a checked host`,
      );
    }
  }
  return problems;
}
