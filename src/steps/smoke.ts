// A smoke test through exo's real API: place an instance across nodes (POST /place_instance),
// wait for it and its runners in /state, optionally ask one chat completion, remove it.
// exo places in the background and answers "Command received." at once, so the instance is
// looked for in /state rather than in the answer.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../context.js';
import type { Fetch } from '../health/http.js';

export interface SmokeSettings {
  model: string;
  minNodes: number;
  chat: boolean;
  timeoutMs: number;
}

export interface SmokeResult {
  ok: boolean;
  api: string;
  model: string;
  instanceId: string | null;
  nodes: number;
  placedAfterMs: number | null;
  chat: { ok: boolean; status: number | null; latencyMs: number; reply: string | null } | null;
  removed: boolean;
  problems: string[];
}

type Instances = Record<string, Record<string, { shardAssignments?: { modelId?: string; nodeToRunner?: Record<string, string> } }>>;
type Runners = Record<string, Record<string, { errorMessage?: string }>>;

export async function smokeTest(api: string, s: SmokeSettings, doFetch: Fetch, signal?: AbortSignal): Promise<SmokeResult> {
  const started = Date.now();
  const result: SmokeResult = { ok: false, api, model: s.model, instanceId: null, nodes: 0, placedAfterMs: null, chat: null, removed: false, problems: [] };
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await doFetch(`${api}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(Math.max(1000, s.timeoutMs)) });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: response.status, ok: response.ok, json };
  };
  try {
    const before = new Set(Object.keys(((await call('GET', '/state')).json as { instances?: Instances }).instances ?? {}));
    const placed = await call('POST', '/place_instance', { model_id: s.model, sharding: 'Pipeline', instance_meta: 'MlxRing', min_nodes: s.minNodes });
    if (!placed.ok) {
      result.problems.push(`POST /place_instance: HTTP ${placed.status} ${JSON.stringify(placed.json).slice(0, 200)}`);
      return result;
    }
    // Wait for a new instance of the model, on enough nodes, with every runner ready.
    while (Date.now() - started < s.timeoutMs) {
      const state = (await call('GET', '/state')).json as { instances?: Instances; runners?: Runners };
      for (const [id, wrapped] of Object.entries(state.instances ?? {})) {
        const inner = Object.values(wrapped)[0];
        if (before.has(id) || inner?.shardAssignments?.modelId !== s.model) continue;
        const runners = Object.values(inner.shardAssignments.nodeToRunner ?? {});
        const failed = runners.map((r) => state.runners?.[r]?.RunnerFailed).find(Boolean);
        if (failed) result.problems.push(`instance ${id}: runner failed: ${failed.errorMessage ?? 'RunnerFailed'}`);
        result.instanceId = id;
        result.nodes = runners.length;
        if (failed || runners.every((r) => state.runners?.[r]?.RunnerReady)) break;
      }
      if (result.problems.length || (result.instanceId && result.nodes >= s.minNodes)) break;
      await sleep(500, undefined, { signal });
    }
    if (!result.instanceId) result.problems.push(`no instance of ${s.model} appeared in /state within ${s.timeoutMs} ms (too few nodes or too little memory? see exo's journal)`);
    else if (result.nodes < s.minNodes) result.problems.push(`the instance spans ${result.nodes} node(s), fewer than ${s.minNodes}`);
    else result.placedAfterMs = Date.now() - started;

    if (result.instanceId && !result.problems.length && s.chat) {
      const t = Date.now();
      const chat = await call('POST', '/v1/chat/completions', { model: s.model, messages: [{ role: 'user', content: 'Reply with one word: ok' }], max_tokens: 8, stream: false });
      const reply = (chat.json as { choices?: { message?: { content?: string } }[] }).choices?.[0]?.message?.content ?? null;
      result.chat = { ok: chat.ok && reply !== null, status: chat.status, latencyMs: Date.now() - t, reply };
      if (!result.chat.ok) result.problems.push(`POST /v1/chat/completions: HTTP ${chat.status} ${JSON.stringify(chat.json).slice(0, 200)}`);
    }
  } catch (error) {
    result.problems.push(`${api}: ${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`);
  } finally {
    if (result.instanceId) {
      const removed = await call('DELETE', `/instance/${result.instanceId}`).catch(() => ({ ok: false, status: null }));
      result.removed = removed.ok;
      if (!removed.ok) result.problems.push(`DELETE /instance/${result.instanceId}: HTTP ${removed.status}`);
    }
  }
  result.ok = result.problems.length === 0;
  return result;
}

/** From [smoke] and the command line; min_nodes 0 means every host selected. */
export function smokeSettings(ctx: Context) {
  const s = ctx.config.smoke;
  return { model: ctx.options.model ?? s.model, minNodes: ctx.options['min-nodes'] ?? (s.min_nodes || ctx.hosts.length), chat: s.chat, timeoutMs: s.timeout };
}
