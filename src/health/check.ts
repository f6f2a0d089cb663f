// One host's health: systemd, exo's API, the journal, the cluster, resources, compatibility.
// `check` prints it; the deploy's gate and preflight use the same pieces.
import type { Config } from '../config/load.js';
import type { Host } from '../config/host.js';
import { ExoDeployError } from '../errors.js';
import {
  dfArgv,
  existsArgv,
  meminfoArgv,
  parseDf,
  parseMeminfo,
  readlinkArgv,
  type DiskUsage,
  type Memory,
} from '../programs/coreutils.js';
import { MAX_JOURNAL_LINES, parseJournal, unitJournalArgv } from '../programs/journalctl.js';
import { experimentalFeatures, parseNixVersion, showConfigArgv } from '../programs/nix.js';
import {
  parseUnitState,
  showUnitArgv,
  systemdVersionArgv,
  type UnitState,
} from '../programs/systemctl.js';
import type { Executor } from '../run/executor.js';
import { readClusterView, type Instance } from './cluster.js';
import { membershipProblems, SeenNodes } from './membership.js';
import { findFailures, type JournalMatch } from './journal-patterns.js';
import type { Fetch } from './http.js';
import { probe, type KeepBody, type ProbeResult } from './probes.js';

export interface HostCheck {
  host: string;
  healthy: boolean;
  reachable: boolean;
  /** Why it is not healthy; empty when healthy. */
  problems: string[];
  /** Worth knowing, not unhealthy (low disk, flakes off on the host, …). */
  warnings: string[];
  /** What could not be read (the unit's state, exo's journal, all of it): also among the
   * problems, since health that cannot be seen is not health. */
  unreadable: string[];
  checkedAt: string;
  unit: UnitState | null;
  probes: ProbeResult[];
  journal: { since: string; scanned: number; matches: JournalMatch[] };
  /** nodeId: this node's current id (/node_id). nodes: the ids /state lists, up to
   * LISTED_NODES (a deploy record holds one list per host, so a whole large cluster's list would
   * grow it with the square of the fleet); seen counts all. instances: what /state lists as
   * placed (null when /state did not answer). seenNodes: all the ids, compact and left out of
   * JSON, kept only when asked (keepSeenNodes) for comparing hosts' views. */
  cluster: {
    expected: number | null;
    seen: number | null;
    nodeId: string | null;
    nodes: string[];
    failedRunners: { runner: string; error: string }[];
    instances: PlacedInstance[] | null;
    seenNodes?: SeenNodes;
  };
  resources: { memory: Memory | null; disks: DiskUsage[] };
  compatibility: {
    nix: string | null;
    flakes: boolean | null;
    nixos: boolean | null;
    systemd: string | null;
  };
  system: { running: string | null; profile: string | null };
}

/** An instance /state lists, as a check keeps it: its model and the nodes its shards run on. */
export type PlacedInstance = Omit<Instance, 'runners'>;

export interface CheckOptions {
  health: Config['health'];
  nix: string;
  /** Epoch ms: journal lines from here on. */
  sinceMs: number;
  /** Only lines of the running exo process: what an earlier process logged is history. */
  sinceProcessStart?: boolean;
  /** When the process started, as an earlier check of it read: then the unit and the journal
   * are read together (one ssh session) instead of one after the other. A process started
   * since then only adds its predecessor's last lines, which that restart fails anyway. */
  knownProcessStartMs?: number;
  expectedNodes: number | null;
  /** Keep what /state lists (cluster.seenNodes), for judgeMembership. */
  keepSeenNodes?: boolean;
  fetch: Fetch;
}

const LOW_DISK_BYTES = 2 * 1024 ** 3;
const LISTED_NODES = 64;

/** The parts a check reads; the gate samples only the cheap, fast-changing ones. */
export type CheckPart = 'api' | 'unit' | 'journal' | 'resources' | 'compatibility' | 'system';
export const ALL_PARTS: readonly CheckPart[] = [
  'api',
  'unit',
  'journal',
  'resources',
  'compatibility',
  'system',
];
/** After an activation: exo's health and the system the host runs. The preflight has read
 * the host's Nix, systemd and disks, which an activation does not change. */
export const AFTER_ACTIVATION_PARTS: readonly CheckPart[] = ['api', 'unit', 'journal', 'system'];

export async function checkHost(
  exec: Executor,
  options: CheckOptions,
  parts: readonly CheckPart[] = ALL_PARTS,
): Promise<HostCheck> {
  const host = exec.host;
  const result: HostCheck = {
    host: host.name,
    healthy: false,
    reachable: true,
    problems: [],
    warnings: [],
    unreadable: [],
    checkedAt: new Date().toISOString(),
    unit: null,
    probes: [],
    journal: { since: new Date(options.sinceMs).toISOString(), scanned: 0, matches: [] },
    cluster: {
      expected: options.expectedNodes,
      seen: null,
      nodeId: null,
      nodes: [],
      failedRunners: [],
      instances: null,
    },
    resources: { memory: null, disks: [] },
    compatibility: { nix: null, flakes: null, nixos: null, systemd: null },
    system: { running: null, profile: null },
  };
  // Probes first and alone: their latency is then the API's, not this process's busy moment.
  if (parts.includes('api')) await probeApi(host, options, result);
  const readers: Record<Exclude<CheckPart, 'api'>, () => Promise<void>> = {
    unit: () => readUnit(exec, result),
    journal: async () => {
      if (!options.sinceProcessStart) return readJournal(exec, options, result);
      const startedAt =
        options.knownProcessStartMs ??
        (result.unit ?? parseUnitState((await exec.run(showUnitArgv(exec.host.unit))).stdout))
          .startedAt;
      const sinceMs = Math.max(options.sinceMs, startedAt ?? 0);
      result.journal.since = new Date(sinceMs).toISOString();
      return readJournal(exec, { ...options, sinceMs }, result);
    },
    resources: () => readResources(exec, result),
    compatibility: () => readCompatibility(exec, options.nix, result),
    system: () => readSystem(exec, result),
  };
  try {
    // The journal since the process started needs the unit's start time: read the unit once, first.
    const unitFirst =
      Boolean(options.sinceProcessStart) &&
      options.knownProcessStartMs === undefined &&
      parts.includes('unit');
    if (unitFirst) await readers.unit();
    await Promise.all(
      parts
        .filter((p): p is Exclude<CheckPart, 'api'> => p !== 'api' && !(unitFirst && p === 'unit'))
        .map((p) => readers[p]()),
    );
  } catch (error) {
    if (!(error instanceof ExoDeployError)) throw error;
    result.reachable = false;
    result.problems.push(error.message);
  }
  result.healthy = result.problems.length === 0;
  return result;
}

/** What a check keeps of a /state: the count of the ids it lists, the ids themselves only
 * when they are few (LISTED_NODES) or asked for compactly (SeenNodes), the failed runners and
 * the instances. */
interface StateRead {
  seen: number;
  nodes: string[];
  seenNodes?: SeenNodes;
  failedRunners: { runner: string; error: string }[];
  /** All of them, unlike the nodes: a cluster holds a few models at once (each takes memory on
   * its nodes), and the gate notices an instance that goes missing. */
  instances: PlacedInstance[];
}

/** Reads a /state that has its shape; an error reading it is kept, and thrown where the check
 * uses the reading (as when it read the whole body there). */
function readState(body: unknown, keepSeenNodes: boolean): StateRead | { error: unknown } {
  try {
    const view = readClusterView(body);
    return {
      seen: view.nodes.length,
      nodes: view.nodes.length <= LISTED_NODES ? view.nodes : [],
      ...(keepSeenNodes ? { seenNodes: SeenNodes.of(view.nodes) } : {}),
      failedRunners: view.failedRunners,
      instances: view.instances.map(({ id, model, nodes }) => ({ id, model, nodes })),
    };
  } catch (error) {
    return { error };
  }
}

async function probeApi(host: Host, options: CheckOptions, result: HostCheck): Promise<void> {
  // Only /node_id's body is kept: /state lists the whole cluster (and /models every model), so
  // keeping them would make a fleet's deploy record grow with the square of its size. What this
  // check needs of /state is read as soon as it parses (KeepBody says why).
  const keepSeenNodes = Boolean(options.keepSeenNodes);
  const keep = (path: string): KeepBody | undefined =>
    path === '/node_id'
      ? undefined
      : path === '/state'
        ? (body, shapeOk) => (shapeOk ? readState(body, keepSeenNodes) : undefined)
        : () => undefined;
  const probes = await Promise.all(
    options.health.probes.map((p) =>
      probe(host.api, p, options.health.timeout, options.fetch, keep(p)),
    ),
  );
  result.probes = probes.map(({ body, ...p }) =>
    p.path === '/node_id' && body !== undefined ? { ...p, body } : p,
  );
  for (const p of result.probes)
    if (!p.ok) result.problems.push(`${host.api}${p.path}: ${p.error}`);
  const nodeId = probes.find((p) => p.path === '/node_id' && p.ok)?.body;
  if (typeof nodeId === 'string') result.cluster.nodeId = nodeId;
  const state = probes.find((p) => p.path === '/state' && p.ok);
  if (!state) return;
  const read = state.body as StateRead | { error: unknown };
  if ('error' in read) throw read.error;
  result.cluster.seen = read.seen;
  result.cluster.nodes = read.nodes;
  if (read.seenNodes) result.cluster.seenNodes = read.seenNodes;
  result.cluster.failedRunners = read.failedRunners;
  result.cluster.instances = read.instances;
  for (const r of read.failedRunners) result.problems.push(`runner ${r.runner} failed: ${r.error}`);
  const expected = options.expectedNodes;
  if (expected !== null && read.seen < expected)
    result.problems.push(`exo sees ${read.seen} of ${expected} nodes in /state`);
}

/**
 * Hosts checked together must see each other: every check's current node id among the ids
 * every other check's /state lists (membership.ts says why a count is not enough). Peers are
 * hosts of the same cluster that are read but not judged (the rest of the cluster around a
 * rolling batch): they must see the judged hosts, and be seen by them. Marks the judged checks
 * unhealthy with a problem naming who does not see whom, drops the kept views, and returns the
 * problems it added, by host.
 */
export function judgeMembership(
  checks: readonly HostCheck[],
  peers: readonly HostCheck[] = [],
): Map<string, string[]> {
  const judged = new Set(checks.map((c) => c.host));
  const members = [...checks, ...peers].map((c) => ({
    host: c.host,
    nodeId: c.cluster.nodeId,
    seen: c.cluster.seenNodes ?? null,
  }));
  const problems = membershipProblems(members, (host) => judged.has(host));
  for (const c of checks) {
    const found = problems.get(c.host);
    if (found) {
      c.problems.push(...found);
      c.healthy = false;
    }
  }
  for (const c of [...checks, ...peers]) delete c.cluster.seenNodes;
  return problems;
}

/** Whether a check's /state lists a node id; true when it cannot tell (a large cluster's ids
 * read without keepSeenNodes). */
export function listsNode(c: HostCheck, id: string): boolean {
  const { seenNodes, nodes, seen } = c.cluster;
  if (seenNodes) return seenNodes.has(id);
  return nodes.includes(id) || (seen ?? 0) > nodes.length;
}

/** The API paths membership needs: a host's own id and the ids it sees. */
const MEMBERSHIP_PROBES = ['/node_id', '/state'];

/** A host of the cluster around the ones being judged, read only for who sees whom
 * (judgeMembership's peers): its own health is not the caller's finding. */
export function readPeer(
  exec: Executor,
  options: Pick<CheckOptions, 'health' | 'nix' | 'fetch'>,
): Promise<HostCheck> {
  const health = { ...options.health, probes: MEMBERSHIP_PROBES };
  return checkHost(
    exec,
    {
      health,
      nix: options.nix,
      fetch: options.fetch,
      sinceMs: Date.now(),
      expectedNodes: null,
      keepSeenNodes: true,
    },
    ['api'],
  );
}

function unreadable(result: HostCheck, what: string): void {
  result.unreadable.push(what);
  result.problems.push(what);
}

async function readUnit(exec: Executor, result: HostCheck): Promise<void> {
  const unit = exec.host.unit;
  const out = await exec.run(showUnitArgv(unit));
  if (out.exitCode !== 0) {
    unreadable(
      result,
      `cannot read ${unit}'s state: \`systemctl show ${unit}\` failed: ${out.stderr.trim().split('\n')[0] || `exit ${out.exitCode}`}`,
    );
    return;
  }
  const state = parseUnitState(out.stdout);
  result.unit = state;
  if (state.loadState === 'not-found') result.problems.push(`${unit} is not installed`);
  else if (state.activeState !== 'active')
    result.problems.push(
      `${unit} is ${state.activeState} (${state.subState}${state.result !== 'success' ? `, result ${state.result}` : ''})`,
    );
  if (state.memoryBytes === undefined && state.activeState === 'active')
    result.warnings.push(`${unit}: memory accounting is off`);
}

async function readJournal(
  exec: Executor,
  options: CheckOptions,
  result: HostCheck,
): Promise<void> {
  const out = await exec.run(unitJournalArgv(exec.host.unit, options.sinceMs), { root: true });
  if (out.exitCode !== 0) {
    unreadable(
      result,
      `cannot read ${exec.host.unit}'s journal, so exo's failure lines cannot be looked for: journalctl exited ${out.exitCode}: ${out.stderr.trim().split('\n')[0] ?? ''}`,
    );
    return;
  }
  const read = parseJournal(out.stdout);
  // journalctl gives the newest MAX_JOURNAL_LINES: with as many, older lines of the window
  // (where a failure may be) were not read
  if (read.length >= MAX_JOURNAL_LINES)
    unreadable(
      result,
      `exo wrote more than ${MAX_JOURNAL_LINES} journal lines since ${result.journal.since}: the earliest were not read, and a failure among them would be missed`,
    );
  // journalctl's --since takes whole seconds: the lines of the second before sinceMs (an old
  // process's last words, just before a rollback) are not this check's.
  const lines = read.filter((l) => l.at >= options.sinceMs);
  result.journal.scanned = lines.length;
  result.journal.matches = findFailures(lines, options.health.journal_patterns);
  if (result.journal.matches.length > 0) {
    const first = result.journal.matches[0] as JournalMatch;
    result.problems.push(
      `${result.journal.matches.length} exo failure line(s) in the journal since ${result.journal.since}, first at ${first.at}: ${first.message.split('\n')[0]}`,
    );
  }
}

async function readResources(exec: Executor, result: HostCheck): Promise<void> {
  const paths = ['/nix/store', exec.host.exoStateDir];
  const dfEach = async () => {
    // One path missing makes df exit 1 and print fewer rows: then ask path by path.
    const each = await Promise.all(
      paths.map(async (p) => {
        const out = await exec.run(dfArgv([p]), { root: true });
        return out.exitCode === 0 ? parseDf(out.stdout, [p]) : [];
      }),
    );
    return each.flat();
  };
  const [mem, disks] = await Promise.all([
    exec.run(meminfoArgv()),
    // as root: exo's state may be under /var/lib/private (0700), which df cannot stat otherwise
    exec
      .run(dfArgv(paths), { root: true })
      .then((out) => (out.exitCode === 0 ? parseDf(out.stdout, paths) : dfEach())),
  ]);
  result.resources.memory = mem.exitCode === 0 ? parseMeminfo(mem.stdout) : null;
  result.resources.disks = disks;
  for (const d of result.resources.disks) {
    if (d.availableBytes < LOW_DISK_BYTES)
      result.warnings.push(
        `${d.path}: only ${(d.availableBytes / 1024 ** 3).toFixed(1)} GiB free on ${d.mount}`,
      );
  }
}

async function readCompatibility(exec: Executor, nix: string, result: HostCheck): Promise<void> {
  const [version, nixos, systemd] = await Promise.all([
    exec.run([nix, '--version']),
    exec.run(existsArgv('/etc/NIXOS')),
    exec.run(systemdVersionArgv()),
  ]);
  const v = version.exitCode === 0 ? parseNixVersion(version.stdout) : undefined;
  result.compatibility.nix = v?.text ?? null;
  result.compatibility.nixos = nixos.exitCode === 0;
  result.compatibility.systemd =
    systemd.exitCode === 0 ? (systemd.stdout.split('\n')[0] ?? null) : null;
  if (!v) result.problems.push('nix is not installed or does not answer `nix --version`');
  else {
    const config = await exec.run(showConfigArgv(nix, v));
    result.compatibility.flakes =
      config.exitCode === 0
        ? experimentalFeatures(config.stdout).includes('flakes') || v.major >= 3
        : null;
  }
  if (!result.compatibility.systemd)
    result.problems.push('systemd does not answer `systemctl --version`');
  if (!result.compatibility.nixos) result.warnings.push('not NixOS (no /etc/NIXOS)');
}

async function readSystem(exec: Executor, result: HostCheck): Promise<void> {
  const out = await exec.run(readlinkArgv([exec.host.currentSystem, exec.host.systemProfile]));
  const [running, profile] = out.stdout.split('\n');
  // readlink -m prints a path that is not a link (or is missing) as given.
  result.system.running = running && running !== exec.host.currentSystem ? running : null;
  result.system.profile = profile && profile !== exec.host.systemProfile ? profile : null;
}
