// A smoke test through exo's real API: place an instance across nodes (POST /place_instance),
// wait in /state until it exists and every runner of it is RunnerReady, optionally ask one
// chat completion, and remove the instance whatever happened. exo places in the background and
// answers "Command received." at once, so the instance is looked for in /state rather than in
// the answer; its runners then download and load the model, which takes minutes for a real one.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../context.js';
import { readClusterView, type ClusterView, type Instance } from '../health/cluster.js';
import { CUT_SHORT, type Fetch } from '../health/http.js';
import { probe } from '../health/probes.js';

export interface SmokeSettings {
  model: string;
  minNodes: number;
  chat: boolean;
  /** Each request, and the wait for the instance to appear in /state. */
  timeoutMs: number;
  /** The wait for every runner of the instance to be ready. */
  readyTimeoutMs: number;
  /** Time between two reads of /state while waiting. */
  pollMs?: number;
  /** The wait for stale node ids to leave the topology before placing (see waitForSettledTopology). */
  settleTimeoutMs?: number;
}

/** exo's master drops a silent node after more than 30 s, checked every 10 s. */
const EXO_NODE_TIMEOUT_MS = 45_000;

export interface SmokeResult {
  ok: boolean;
  api: string;
  model: string;
  instanceId: string | null;
  nodes: number;
  /** ms waited before placing, until the topology held only the managed nodes' current ids. */
  settledAfterMs: number | null;
  /** ms from the placement request until the instance was in /state. */
  placedAfterMs: number | null;
  /** ms from the placement request until every runner of it was RunnerReady. */
  readyAfterMs: number | null;
  /** The last status /state gave each runner of the instance. */
  runners: Record<string, string>;
  chat: { ok: boolean; status: number | null; latencyMs: number; reply: string | null } | null;
  /** Whether the instance is gone at the end: removed by this test, or deleted by exo first. */
  removed: boolean;
  problems: string[];
  warnings: string[];
}

interface Answer {
  status: number;
  ok: boolean;
  json: unknown;
  /** Why the body could not be read after the status came (the connection dropped). */
  cutShort?: string;
}

/**
 * `cluster`: the APIs of every node of the cluster when all are managed here (this one
 * included). Before placing, the test then waits until this node's topology lists exactly their
 * current ids: right after a deploy, exo still lists the old processes' ids for up to ~40 s,
 * and its master may place onto them (or route the chat to their instances).
 */
export async function smokeTest(
  api: string,
  s: SmokeSettings,
  doFetch: Fetch,
  signal?: AbortSignal,
  cluster: readonly string[] = [],
): Promise<SmokeResult> {
  const result: SmokeResult = {
    ok: false,
    api,
    model: s.model,
    instanceId: null,
    nodes: 0,
    settledAfterMs: null,
    placedAfterMs: null,
    readyAfterMs: null,
    runners: {},
    chat: null,
    removed: false,
    problems: [],
    warnings: [],
  };
  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const response = await doFetch(`${api}${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(Math.max(1000, s.timeoutMs)),
    });
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      return { status: response.status, ok: false, json: undefined, cutShort: reason(error) };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: response.status, ok: response.ok, json };
  };
  const readState = async (): Promise<ClusterView> => {
    const state = await call('GET', '/state');
    if (!state.ok) throw new Error(`GET /state: ${state.cutShort ?? `HTTP ${state.status}`}`);
    return readClusterView(state.json);
  };
  let exoDeleted = false;
  try {
    const nodeIdOf = async (base: string): Promise<string | null> => {
      const answer = await probe(base, '/node_id', Math.max(1000, s.timeoutMs), doFetch);
      return answer.ok ? (answer.body as string) : null;
    };
    if (cluster.length)
      await waitForSettledTopology(result, s, cluster, nodeIdOf, readState, signal);
    const before = new Set((await readState()).instances.map((i) => i.id));
    const postedAt = Date.now();
    const placed = await call('POST', '/place_instance', {
      model_id: s.model,
      sharding: 'Pipeline',
      instance_meta: 'MlxRing',
      min_nodes: s.minNodes,
    });
    if (!placed.ok) {
      result.problems.push(
        `POST /place_instance: HTTP ${placed.status} ${placed.cutShort ?? JSON.stringify(placed.json).slice(0, 200)}`,
      );
      return result;
    }
    const waited = await waitUntilReady(result, s, before, postedAt, readState, signal);
    exoDeleted = waited === 'deleted';
    if (waited === 'ready' && s.chat) await chatOnce(result, s, call);
  } catch (error) {
    if (signal?.aborted) throw error;
    result.problems.push(`${api}: ${reason(error)}`);
  } finally {
    if (result.instanceId && !exoDeleted) {
      const removed = await call('DELETE', `/instance/${result.instanceId}`).catch(
        (error: unknown) => ({ ok: false, status: null, cutShort: reason(error) }),
      );
      result.removed = removed.ok;
      if (!removed.ok)
        result.problems.push(
          `DELETE /instance/${result.instanceId}: ${removed.cutShort ?? `HTTP ${removed.status}`}: remove it by hand`,
        );
    }
    result.removed ||= exoDeleted;
  }
  result.ok = result.problems.length === 0;
  return result;
}

async function waitForSettledTopology(
  result: SmokeResult,
  s: SmokeSettings,
  cluster: readonly string[],
  nodeIdOf: (api: string) => Promise<string | null>,
  readState: () => Promise<ClusterView>,
  signal?: AbortSignal,
): Promise<void> {
  const start = Date.now();
  const limit = s.settleTimeoutMs ?? EXO_NODE_TIMEOUT_MS;
  for (;;) {
    const ids = await Promise.all(cluster.map(nodeIdOf));
    const current = new Set(ids.filter((id): id is string => id !== null));
    const listed = (await readState()).nodes;
    const extra = listed.filter((id) => !current.has(id));
    if (current.size === cluster.length && extra.length === 0 && listed.length === current.size) {
      result.settledAfterMs = Date.now() - start;
      return;
    }
    if (Date.now() - start >= limit) {
      result.warnings.push(
        `the topology still lists ${extra.length} id(s) that no managed node has now (${extra.join(', ')}) after ${limit} ms: exo may place onto them`,
      );
      return;
    }
    await sleep(s.pollMs ?? 500, undefined, { signal });
  }
}

/** Reads /state until the new instance of the model is there with every runner ready. A failed
 * runner, or exo deleting the instance (what it does after its runners failed five times),
 * ends the wait at once. */
async function waitUntilReady(
  result: SmokeResult,
  s: SmokeSettings,
  before: ReadonlySet<string>,
  postedAt: number,
  readState: () => Promise<ClusterView>,
  signal?: AbortSignal,
): Promise<'ready' | 'deleted' | 'failed'> {
  for (;;) {
    const view = await readState();
    const elapsed = Date.now() - postedAt;
    let instance: Instance | undefined;
    if (result.instanceId === null) {
      instance = view.instances.find((i) => !before.has(i.id) && i.model === s.model);
      if (instance) {
        result.instanceId = instance.id;
        result.nodes = instance.runners.length;
        result.placedAfterMs = elapsed;
        if (result.nodes < s.minNodes) {
          result.problems.push(
            `the instance spans ${result.nodes} node(s), fewer than ${s.minNodes}`,
          );
          return 'failed';
        }
      } else if (elapsed >= s.timeoutMs) {
        result.problems.push(
          `no instance of ${s.model} appeared in /state within ${s.timeoutMs} ms (too few nodes or too little memory? see exo's journal)`,
        );
        return 'failed';
      }
    } else {
      instance = view.instances.find((i) => i.id === result.instanceId);
      if (!instance) {
        result.problems.push(
          `exo deleted instance ${result.instanceId} after ${elapsed} ms, before its runners were ready (its runners failed: see exo's journal)`,
        );
        return 'deleted';
      }
    }
    if (instance) {
      const runners = instance.runners.map((id) => [id, view.runners.get(id)] as const);
      result.runners = Object.fromEntries(
        runners.map(([id, r]) => [id, r?.status ?? 'not in /state']),
      );
      const failed = runners.find(([, r]) => r?.status === 'RunnerFailed');
      if (failed) {
        result.problems.push(
          `instance ${instance.id}: runner ${failed[0]} failed: ${failed[1]?.error}`,
        );
        return 'failed';
      }
      if (runners.length > 0 && runners.every(([, r]) => r?.status === 'RunnerReady')) {
        result.readyAfterMs = elapsed;
        return 'ready';
      }
      if (elapsed >= s.readyTimeoutMs) {
        result.problems.push(
          `the runners of instance ${instance.id} were not all ready within ${s.readyTimeoutMs} ms (smoke ready_timeout): ${Object.entries(
            result.runners,
          )
            .map(([id, st]) => `${id} ${st}`)
            .join(', ')}`,
        );
        return 'failed';
      }
    }
    await sleep(s.pollMs ?? 500, undefined, { signal });
  }
}

async function chatOnce(
  result: SmokeResult,
  s: SmokeSettings,
  call: (method: string, path: string, body?: unknown) => Promise<Answer>,
): Promise<void> {
  const t = Date.now();
  const chat = await call('POST', '/v1/chat/completions', {
    model: s.model,
    messages: [{ role: 'user', content: 'Reply with one word: ok' }],
    max_tokens: 8,
    stream: false,
  });
  const reply =
    (chat.json as { choices?: { message?: { content?: string } }[] } | undefined)?.choices?.[0]
      ?.message?.content ?? null;
  result.chat = {
    ok: chat.ok && reply !== null,
    status: chat.status,
    latencyMs: Date.now() - t,
    reply,
  };
  if (chat.cutShort === CUT_SHORT) {
    result.problems.push(
      `POST /v1/chat/completions: HTTP ${chat.status}, then ${CUT_SHORT}: exo drops the connection when a runner dies while answering (see its journal)`,
    );
  } else if (chat.cutShort) {
    result.problems.push(`POST /v1/chat/completions: HTTP ${chat.status}, then ${chat.cutShort}`);
  } else if (!result.chat.ok) {
    result.problems.push(
      `POST /v1/chat/completions: HTTP ${chat.status} ${JSON.stringify(chat.json).slice(0, 200)}`,
    );
  }
}

function reason(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  return e.cause?.message === CUT_SHORT ? CUT_SHORT : (e.cause?.code ?? e.message);
}

/** The APIs of the whole cluster when every node of it is a host here: one cluster
 * (ClusterView.one) of exactly the config's hosts (cluster_size 0 or their number; a larger
 * cluster_size means nodes this config does not list, whose ids the topology keeps). Otherwise
 * none, and the smoke test places without waiting for the topology. */
export function managedClusterApis(ctx: Context): string[] {
  const size = ctx.config.health.cluster_size;
  return ctx.cluster.one && (size === 0 || size === ctx.config.hosts.length)
    ? ctx.config.hosts.map((h) => h.api)
    : [];
}

/** From [smoke], then the caller's (the command line's); min_nodes 0 means all `hosts`. */
export function smokeSettings(
  config: Context['config'],
  hosts: number,
  given: Partial<Pick<SmokeSettings, 'model' | 'minNodes' | 'readyTimeoutMs'>> = {},
): SmokeSettings {
  const s = config.smoke;
  return {
    model: given.model ?? s.model,
    minNodes: given.minNodes ?? (s.min_nodes || hosts),
    chat: s.chat,
    timeoutMs: s.timeout,
    readyTimeoutMs: given.readyTimeoutMs ?? s.ready_timeout,
  };
}
