// The health gate after activation: wait until exo answers, then watch it for the soak
// window. Every host of the rollout is gated together: one failure fails the gate. exo
// recovers from a runner failure on its own (Failed for a moment, then re-created, and after
// five attempts the instance is deleted), so a sample can miss the Failed status: an instance
// that disappears during the soak counts as that failure, as do exo's failure lines. exo also
// deletes an instance whose node left the cluster, and a restarted exo leaves under its
// former id some 30-40 s after it stopped: that deletion is the deploy's own restart, not a
// failure, unless the node that left is one a gated host runs now.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  checkHost,
  judgeMembership,
  listsNode,
  readPeer,
  type CheckOptions,
  type HostCheck,
  type PlacedInstance,
} from '../health/check.js';
import type { Log } from '../output/log.js';
import type { Context } from '../context.js';
import type { Executor } from '../run/executor.js';
import { checkOptions } from './check-hosts.js';

export interface GateOptions {
  /** Each sample's check: since the activation, the new process's journal lines only. Its
   * health settings are the gate's (ready_timeout, soak, interval). */
  check: CheckOptions;
  /** The gated hosts are one exo cluster with these peers (hosts outside the batch, read but
   * not gated): by the end of the soak each must see every other's current node id. Without
   * it only the count (expectedNodes) is checked. */
  cluster?: { peers: readonly Executor[] };
  /** Epoch ms when activation began: journal lines before it belong to the old system. */
  activatedAtMs: number;
  signal: AbortSignal;
  log: Log;
  now?: () => number;
}

interface HostGateResult {
  host: string;
  passed: boolean;
  /** ms from the start of the gate until exo answered /models. */
  readyAfterMs: number | null;
  problems: string[];
  lastSample: HostCheck | null;
}

export interface GateResult {
  passed: boolean;
  hosts: HostGateResult[];
  durationMs: number;
  /** Epoch ms of the first failing signal, when the gate failed. */
  failedAtMs: number | null;
  samples: number;
}

/** Consecutive failed samples of an API probe before it counts: one slow answer is not an outage. */
const PROBE_STRIKES = 2;

interface Watch {
  exec: Executor;
  result: HostGateResult;
  baseline: { pid: number; restarts: number } | null;
  probeStrikes: Map<string, number>;
  /** The instances /state listed during the soak, by id. */
  instances: Map<string, PlacedInstance>;
}

export async function runHealthGate(
  executors: readonly Executor[],
  options: GateOptions,
): Promise<GateResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const watches: Watch[] = executors.map((exec) => ({
    exec,
    result: {
      host: exec.host.name,
      passed: false,
      readyAfterMs: null,
      problems: [],
      lastSample: null,
    },
    baseline: null,
    probeStrikes: new Map(),
    instances: new Map(),
  }));
  let samples = 0;
  /** Instances exo removed with a node that left, said once for the cluster. */
  const removed = new Set<string>();
  let failedAtMs: number | null = null;
  const fail = (w: Watch, problems: string[]) => {
    w.result.problems.push(...problems);
    failedAtMs ??= now();
  };
  const finish = (passed: boolean): GateResult => {
    for (const w of watches) {
      w.result.passed = passed && w.result.problems.length === 0;
      if (w.result.lastSample) delete w.result.lastSample.cluster.seenNodes;
    }
    return {
      passed,
      hosts: watches.map((w) => w.result),
      durationMs: now() - started,
      failedAtMs,
      samples,
    };
  };

  // 1. Ready: every host answers /models within ready_timeout, without crashing on the way.
  const readyDeadline = started + options.check.health.ready_timeout;
  while (watches.some((w) => w.result.readyAfterMs === null)) {
    samples += 1;
    await Promise.all(
      watches
        .filter((w) => w.result.readyAfterMs === null)
        .map(async (w) => {
          const sample = await takeSample(w, options);
          const models = sample.probes.find((p) => p.path === '/models');
          // An exo that answers with a server error is up and broken, not still starting.
          const serverError =
            models?.status !== undefined && models.status !== null && models.status >= 500;
          const strikes = serverError ? (w.probeStrikes.get('/models') ?? 0) + 1 : 0;
          w.probeStrikes.set('/models', strikes);
          const problems = [
            ...crashProblems(w, sample),
            ...(strikes >= PROBE_STRIKES
              ? [`${w.exec.host.api}/models: ${models?.error} (${strikes} samples in a row)`]
              : []),
          ];
          if (problems.length) return fail(w, problems);
          if (models?.ok) {
            w.result.readyAfterMs = now() - started;
            w.baseline = { pid: sample.unit?.mainPid ?? 0, restarts: sample.unit?.restarts ?? 0 };
            options.log.info(`${w.exec.host.name}: exo answers after ${w.result.readyAfterMs} ms`);
          }
        }),
    );
    if (failedAtMs !== null) return finish(false);
    if (now() >= readyDeadline) {
      for (const w of watches.filter((x) => x.result.readyAfterMs === null)) {
        fail(w, [
          `exo did not answer ${w.exec.host.api}/models within ${options.check.health.ready_timeout} ms (ready_timeout): ${w.result.lastSample?.probes.find((p) => p.path === '/models')?.error ?? 'no answer'}`,
        ]);
      }
      return finish(false);
    }
    await sleep(options.check.health.interval, undefined, { signal: options.signal });
  }

  // 2. Soak: watch the whole cluster; any crash, failure line, failed runner or outage fails it.
  const soakEnd = now() + options.check.health.soak;
  options.log.info(`watching ${watches.length} host(s) for ${options.check.health.soak} ms (soak)`);
  for (;;) {
    samples += 1;
    const last = now() >= soakEnd;
    const judgeCluster = last && options.cluster !== undefined;
    const [, peers] = await Promise.all([
      Promise.all(
        watches.map(async (w) => {
          // the ids seen: for who sees whom at the end, and to tell whether an instance that
          // goes went with its node
          const sample = await takeSample(w, options, judgeCluster || w.instances.size > 0);
          const problems = [
            ...crashProblems(w, sample),
            ...soakProblems(w, sample, options, { last, current: currentIds(watches), removed }),
          ];
          if (problems.length) fail(w, problems);
        }),
      ),
      judgeCluster
        ? Promise.all((options.cluster?.peers ?? []).map((e) => readPeer(e, options.check)))
        : [],
    ]);
    if (judgeCluster) {
      // A cluster takes a moment to form: who sees whom is judged at the end of the soak.
      const notSeen = judgeMembership(
        watches.flatMap((w) => (w.result.lastSample ? [w.result.lastSample] : [])),
        peers,
      );
      for (const w of watches) {
        const problems = notSeen.get(w.exec.host.name);
        if (problems) fail(w, problems);
      }
    }
    if (failedAtMs !== null) return finish(false);
    if (last) return finish(true);
    await sleep(Math.min(options.check.health.interval, Math.max(0, soakEnd - now())), undefined, {
      signal: options.signal,
    });
  }
}

async function takeSample(
  w: Watch,
  options: GateOptions,
  keepSeenNodes = false,
): Promise<HostCheck> {
  // Only the new process's journal lines count: the old one may log errors while it stops.
  const knownProcessStartMs = w.result.lastSample?.unit?.startedAt ?? undefined;
  const sample = await checkHost(w.exec, { ...options.check, knownProcessStartMs, keepSeenNodes }, [
    'unit',
    'api',
    'journal',
  ]);
  w.result.lastSample = sample;
  return sample;
}

/** Signals that fail the gate at once, in either phase. */
function crashProblems(w: Watch, s: HostCheck): string[] {
  const problems: string[] = [];
  const unitName = w.exec.host.unit;
  if (!s.reachable) problems.push(...s.problems);
  else problems.push(...s.unreadable);
  if (s.unit?.activeState === 'failed') problems.push(`${unitName} failed (${s.unit.result})`);
  if (s.unit && w.baseline && s.unit.restarts > w.baseline.restarts)
    problems.push(
      `${unitName} restarted ${s.unit.restarts - w.baseline.restarts} time(s): exo crashed`,
    );
  if (s.unit && !w.baseline && s.unit.restarts > 0 && s.unit.activeState !== 'active')
    problems.push(
      `${unitName} is crash-looping (${s.unit.restarts} restart(s), ${s.unit.subState})`,
    );
  for (const m of s.journal.matches) problems.push(`journal ${m.at}: ${m.message.split('\n')[0]}`);
  for (const r of s.cluster.failedRunners) problems.push(`runner ${r.runner} failed: ${r.error}`);
  return problems.slice(0, 10);
}

/** The node ids the gated hosts run under now, as their last samples read them. */
function currentIds(watches: readonly Watch[]): Set<string> {
  return new Set(watches.flatMap((w) => w.result.lastSample?.cluster.nodeId ?? []));
}

/** last: the soak's last sample. current: the gated hosts' node ids now. removed: the
 * instances already said to have gone with a node that left. */
function soakProblems(
  w: Watch,
  s: HostCheck,
  options: GateOptions,
  { last, current, removed }: { last: boolean; current: ReadonlySet<string>; removed: Set<string> },
): string[] {
  const problems: string[] = [];
  const unitName = w.exec.host.unit;
  if (s.unit && s.unit.activeState !== 'active')
    problems.push(`${unitName} is ${s.unit.activeState} (${s.unit.subState})`);
  if (s.unit && w.baseline && s.unit.mainPid !== w.baseline.pid && s.unit.activeState === 'active')
    problems.push(
      `exo's main PID changed from ${w.baseline.pid} to ${s.unit.mainPid}: it restarted`,
    );
  for (const p of s.probes) {
    const strikes = p.ok ? 0 : (w.probeStrikes.get(p.path) ?? 0) + 1;
    w.probeStrikes.set(p.path, strikes);
    if (strikes >= PROBE_STRIKES)
      problems.push(`${w.exec.host.api}${p.path}: ${p.error} (${strikes} samples in a row)`);
  }
  const instances = s.cluster.instances;
  if (instances) {
    const listed = new Set(instances.map((i) => i.id));
    for (const [id, { model, nodes }] of w.instances) {
      if (listed.has(id)) continue;
      const of = `instance ${id}${model ? ` of ${model}` : ''}`;
      const left = nodes.filter((n) => !listsNode(s, n));
      if (left.length > 0 && !left.some((n) => current.has(n))) {
        if (!removed.has(id))
          options.log.warn(
            `exo removed ${of}: its node ${left.join(', ')} left the cluster, and no gated host runs under that id now (a restarted exo's former id); place it again if it is needed`,
          );
        removed.add(id);
      } else
        problems.push(
          `exo deleted ${of} (its runners failed, or the node it ran on left the cluster)`,
        );
    }
    w.instances = new Map(instances.map((i) => [i.id, i]));
  }
  // A cluster takes a moment to form: its size must be reached by the end of the soak.
  const expected = options.check.expectedNodes;
  if (last && expected !== null && (s.cluster.seen ?? 0) < expected)
    problems.push(
      `exo sees ${s.cluster.seen ?? 0} of ${expected} nodes in /state at the end of the soak`,
    );
  return problems;
}

/** After a rollback's activation: exo answers /models within ready_timeout without crashing
 * (no soak, no cluster size: the rest of the cluster may still be on another version). */
export function waitUntilServing(
  ctx: Context,
  exec: Executor,
  activatedAtMs: number,
): Promise<GateResult> {
  return runHealthGate([exec], {
    check: {
      ...checkOptions(ctx, { sinceMs: activatedAtMs, sinceProcessStart: true }),
      health: { ...ctx.config.health, soak: 0 },
    },
    activatedAtMs,
    signal: ctx.signal,
    log: ctx.log,
  });
}
