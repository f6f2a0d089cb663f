// The smoke test's waiting and judging, against a scripted exo API: runners that take their
// time, fail, or whose instance exo deletes; a chat answer cut short.
import { describe, expect, it } from 'vitest';
import type { Fetch, HttpResponse } from '../../src/health/http.js';
import { smokeTest, type SmokeSettings } from '../../src/steps/smoke.js';

const MODEL = 'mlx-community/Llama-3.2-1B-Instruct-4bit';
const settings: SmokeSettings = {
  model: MODEL,
  minNodes: 2,
  chat: true,
  timeoutMs: 2_000,
  readyTimeoutMs: 2_000,
  pollMs: 1,
};

interface Script {
  /** The runners' statuses at each read of /state after the placement; the last one stays. */
  statuses: string[][];
  /** From this read on (after the placement), exo has deleted the instance. */
  deletedAtRead?: number;
  chat?: 'ok' | 'cut-short';
}

function fakeExo(script: Script) {
  const calls: string[] = [];
  let placed = false;
  let reads = 0;
  let removed = false;
  const statusesAtChat: string[][] = [];
  const answer = (status: number, body: unknown): HttpResponse => ({
    ok: status < 300,
    status,
    text: async () => JSON.stringify(body),
  });
  const runners = () => script.statuses[Math.min(reads - 1, script.statuses.length - 1)] ?? [];
  const fetch: Fetch = async (url, init = {}) => {
    const { pathname } = new URL(url);
    calls.push(`${init.method ?? 'GET'} ${pathname}`);
    if (pathname === '/state') {
      if (placed) reads += 1;
      const gone = removed || (script.deletedAtRead !== undefined && reads >= script.deletedAtRead);
      const statuses = placed && !gone ? runners() : [];
      return answer(200, {
        topology: { nodes: ['n1', 'n2'] },
        instances: statuses.length
          ? {
              i9: {
                MlxRingInstance: {
                  instanceId: 'i9',
                  shardAssignments: {
                    modelId: MODEL,
                    nodeToRunner: Object.fromEntries(
                      statuses.map((_, n) => [`n${n + 1}`, `r${n + 1}`]),
                    ),
                  },
                },
              },
            }
          : {},
        runners: Object.fromEntries(
          statuses.map((s, n) => [
            `r${n + 1}`,
            { [s]: s === 'RunnerFailed' ? { errorMessage: 'Terminated (signal=9 (Killed))' } : {} },
          ]),
        ),
      });
    }
    if (pathname === '/place_instance') {
      placed = true;
      return answer(200, { message: 'Command received.', command_id: 'c1' });
    }
    if (pathname === '/v1/chat/completions') {
      statusesAtChat.push(runners());
      if (script.chat === 'cut-short') {
        return {
          ok: true,
          status: 200,
          text: () =>
            Promise.reject(
              Object.assign(new TypeError('fetch failed'), {
                cause: Object.assign(
                  new Error('the connection closed before the whole answer arrived'),
                  { code: 'ECONNRESET' },
                ),
              }),
            ),
        };
      }
      return answer(200, { choices: [{ message: { content: 'ok' } }] });
    }
    if (pathname === '/instance/i9' && init.method === 'DELETE') {
      removed = true;
      return answer(200, { message: 'Command received.', instance_id: 'i9' });
    }
    return answer(404, { detail: 'Not Found' });
  };
  return { fetch, calls, statusesAtChat, reads: () => reads };
}

const loading = [
  ['RunnerConnecting', 'RunnerIdle'],
  ['RunnerLoading', 'RunnerConnected'],
  ['RunnerWarmingUp', 'RunnerLoaded'],
  ['RunnerReady', 'RunnerWarmingUp'],
];

describe('smoke', () => {
  it('waits until every runner is RunnerReady, then chats, then removes the instance', async () => {
    const exo = fakeExo({ statuses: [...loading, ['RunnerReady', 'RunnerReady']] });
    const r = await smokeTest('http://10.0.0.1:52415', settings, exo.fetch);
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({
      ok: true,
      instanceId: 'i9',
      nodes: 2,
      removed: true,
      runners: { r1: 'RunnerReady', r2: 'RunnerReady' },
      chat: { ok: true, status: 200, reply: 'ok' },
    });
    expect(exo.statusesAtChat).toEqual([['RunnerReady', 'RunnerReady']]);
    expect(exo.reads()).toBe(5);
    expect(r.readyAfterMs).toBeGreaterThanOrEqual(r.placedAfterMs as number);
    expect(exo.calls.at(-1)).toBe('DELETE /instance/i9');
  });

  it('a runner that fails while loading ends the wait at once; the instance is removed', async () => {
    const exo = fakeExo({
      statuses: [
        ['RunnerConnecting', 'RunnerLoading'],
        ['RunnerFailed', 'RunnerLoading'],
        ['RunnerConnecting', 'RunnerLoading'],
      ],
    });
    const r = await smokeTest('http://10.0.0.1:52415', settings, exo.fetch);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual(['instance i9: runner r1 failed: Terminated (signal=9 (Killed))']);
    expect(exo.reads()).toBe(2);
    expect(r.chat).toBeNull();
    expect(r.readyAfterMs).toBeNull();
    expect(exo.calls.at(-1)).toBe('DELETE /instance/i9');
  });

  it('exo deleting the instance (its runners failed five times) fails at once, without a second removal', async () => {
    const exo = fakeExo({ statuses: [['RunnerConnecting', 'RunnerLoading']], deletedAtRead: 3 });
    const r = await smokeTest('http://10.0.0.1:52415', settings, exo.fetch);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.stringMatching(
        /^exo deleted instance i9 after \d+ ms, before its runners were ready \(its runners failed: see exo's journal\)$/,
      ),
    ]);
    expect(exo.reads()).toBe(3);
    expect(r.removed).toBe(true);
    expect(exo.calls).not.toContain('DELETE /instance/i9');
  });

  it('runners not ready within ready_timeout fail, saying where each one is', async () => {
    const exo = fakeExo({ statuses: [['RunnerReady', 'RunnerLoading']] });
    const r = await smokeTest(
      'http://10.0.0.1:52415',
      { ...settings, readyTimeoutMs: 30 },
      exo.fetch,
    );
    expect(r.problems).toEqual([
      'the runners of instance i9 were not all ready within 30 ms (smoke ready_timeout): r1 RunnerReady, r2 RunnerLoading',
    ]);
    expect(exo.calls.at(-1)).toBe('DELETE /instance/i9');
  });

  it('a chat answered 200 whose connection drops before the whole answer is a failed chat', async () => {
    const exo = fakeExo({ statuses: [['RunnerReady', 'RunnerReady']], chat: 'cut-short' });
    const r = await smokeTest('http://10.0.0.1:52415', settings, exo.fetch);
    expect(r.ok).toBe(false);
    expect(r.chat).toMatchObject({ ok: false, status: 200, reply: null });
    expect(r.problems).toEqual([
      'POST /v1/chat/completions: HTTP 200, then the connection closed before the whole answer arrived: exo drops the connection when a runner dies while answering (see its journal)',
    ]);
    expect(r.removed).toBe(true);
  });

  it('an instance on fewer nodes than asked fails, and is removed', async () => {
    const exo = fakeExo({ statuses: [['RunnerReady']] });
    const r = await smokeTest('http://10.0.0.1:52415', settings, exo.fetch);
    expect(r.problems).toEqual(['the instance spans 1 node(s), fewer than 2']);
    expect(exo.calls.at(-1)).toBe('DELETE /instance/i9');
  });
});
