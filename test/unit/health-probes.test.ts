// The API part of a check: what a probe keeps of a body, its timeout, and what a check reads of
// /state (read as soon as it parses, so that a large cluster's ids are not held; hosts that list
// the same ids share one SeenNodes).
import { describe, expect, it } from 'vitest';
import { resolveHost } from '../../src/config/host.js';
import type { Config } from '../../src/config/load.js';
import { checkHost } from '../../src/health/check.js';
import type { Fetch } from '../../src/health/http.js';
import { SeenNodes } from '../../src/health/membership.js';
import { probe } from '../../src/health/probes.js';
import { silentLog } from '../../src/output/log.js';
import { createExecutor } from '../../src/run/executor.js';
import { fakeRunner } from '../sim/run-layer.js';
import { hostDefaults } from './host-defaults.js';

const answering =
  (bodies: Record<string, unknown>): Fetch =>
  async (url) => {
    const path = new URL(url).pathname;
    if (!(path in bodies)) return { ok: false, status: 404, text: async () => '{}' };
    return { ok: true, status: 200, text: async () => JSON.stringify(bodies[path]) };
  };

const id = (i: number) => i.toString(16).padStart(32, '0');
const state = (nodes: unknown[], extra: object = {}) => ({ topology: { nodes }, ...extra });

describe('probe', () => {
  const api = 'http://h1:52415';

  it('keeps the whole body unless told what to keep', async () => {
    const p = await probe(api, '/state', 1000, answering({ '/state': state(['a']) }));
    expect(p).toMatchObject({ path: '/state', ok: true, status: 200, body: state(['a']) });
  });

  it('keeps what keep returns, told whether the body has its shape, and no body for undefined', async () => {
    const seen: [unknown, boolean][] = [];
    const fetch = answering({ '/state': state(['a', 'b']), '/node_id': 7 });
    const count = await probe(api, '/state', 1000, fetch, (body, shapeOk) => {
      seen.push([body, shapeOk]);
      return (body as { topology: { nodes: unknown[] } }).topology.nodes.length;
    });
    expect(count).toMatchObject({ ok: true, body: 2 });
    const bad = await probe(api, '/node_id', 1000, fetch, (body, shapeOk) => {
      seen.push([body, shapeOk]);
      return undefined;
    });
    expect(bad).toEqual({
      path: '/node_id',
      ok: false,
      status: 200,
      latencyMs: expect.any(Number),
      error: '/node_id is not a node id string',
    });
    expect(seen).toEqual([
      [state(['a', 'b']), true],
      [7, false],
    ]);
  });

  it('gives up after its timeout with a TimeoutError, as AbortSignal.timeout does', async () => {
    let reason: unknown;
    const hang: Fetch = (_url, init) =>
      new Promise((_resolve, reject) =>
        init?.signal?.addEventListener('abort', () => {
          reason = init.signal?.reason;
          reject(init.signal?.reason);
        }),
      );
    const p = await probe(api, '/models', 50, hang);
    expect(p).toMatchObject({ ok: false, status: null, error: 'no answer within 50 ms' });
    expect(reason).toMatchObject({ name: 'TimeoutError' });
  });

  it('does not abort an answered probe later', async () => {
    let signal: AbortSignal | undefined;
    const fetch: Fetch = async (url, init) => {
      signal = init?.signal;
      return answering({ '/models': { data: [] } })(url, init);
    };
    expect(await probe(api, '/models', 30, fetch)).toMatchObject({ ok: true });
    await new Promise((r) => setTimeout(r, 80));
    expect(signal?.aborted).toBe(false);
  });
});

describe('the API part of a check', () => {
  const defaults = hostDefaults({ system_profile: '/p', current_system: '/c' });
  const exec = createExecutor(resolveHost('h1', { target: 'local', tags: [] }, defaults), {
    runner: fakeRunner(() => undefined).runner,
    cleanupRunner: fakeRunner(() => undefined).runner,
    log: silentLog,
    dryRun: false,
    defaultTimeoutMs: 1000,
    sshConnectTimeoutMs: 1000,
    sshProgram: 'ssh',
  });
  const check = (
    bodies: Record<string, unknown>,
    more: { expectedNodes?: number | null; keepSeenNodes?: boolean } = {},
  ) =>
    checkHost(
      exec,
      {
        health: {
          probes: ['/node_id', '/models', '/state'],
          timeout: 1000,
        } as unknown as Config['health'],
        nix: 'nix',
        sinceMs: 0,
        expectedNodes: more.expectedNodes ?? null,
        keepSeenNodes: more.keepSeenNodes,
        fetch: answering(bodies),
      },
      ['api'],
    );
  const many = Array.from({ length: 100 }, (_, i) => id(i));
  const runnersAndInstances = {
    runners: { r1: { RunnerFailed: { errorMessage: 'Terminated (exitcode=1)' } } },
    instances: {
      i1: {
        MlxRingInstance: { shardAssignments: { modelId: 'm1', nodeToRunner: { n1: 'r1' } } },
      },
    },
  };

  it('keeps a large cluster as a count (and compact ids when asked), no probe body but /node_id', async () => {
    const c = await check(
      {
        '/node_id': id(5),
        '/models': { data: [{ id: 'm1' }] },
        '/state': state(many, runnersAndInstances),
      },
      { expectedNodes: 101, keepSeenNodes: true },
    );
    expect(c.cluster).toMatchObject({
      expected: 101,
      seen: 100,
      nodeId: id(5),
      nodes: [],
      failedRunners: [{ runner: 'r1', error: 'Terminated (exitcode=1)' }],
      instances: [{ id: 'i1', model: 'm1' }],
    });
    expect(c.cluster.seenNodes?.count).toBe(100);
    expect(c.cluster.seenNodes?.has(id(99))).toBe(true);
    expect(c.cluster.seenNodes?.has(id(100))).toBe(false);
    expect(c.probes.map((p) => [p.path, 'body' in p ? p.body : 'none'])).toEqual([
      ['/node_id', id(5)],
      ['/models', 'none'],
      ['/state', 'none'],
    ]);
    expect(c.problems).toEqual([
      'runner r1 failed: Terminated (exitcode=1)',
      'exo sees 100 of 101 nodes in /state',
    ]);
  });

  it('lists a small cluster, and keeps no compact ids unless asked', async () => {
    const c = await check({ '/node_id': 'a', '/models': {}, '/state': state(['a', 'b']) });
    expect(c.cluster).toMatchObject({ seen: 2, nodes: ['a', 'b'], instances: [] });
    expect(c.cluster.seenNodes).toBeUndefined();
    expect(c.healthy).toBe(true);
  });

  it('reads nothing of a /state without a topology', async () => {
    const c = await check({ '/node_id': 'a', '/models': {}, '/state': { nodes: ['a'] } });
    expect(c.cluster).toMatchObject({ seen: null, nodes: [], instances: null });
    expect(c.problems).toEqual(['http://127.0.0.1:52415/state: /state has no topology']);
  });

  it('fails as before on a /state it cannot read', async () => {
    await expect(
      check({ '/node_id': 'a', '/models': {}, '/state': state([null]) }),
    ).rejects.toThrow(TypeError);
  });
});

describe('SeenNodes.of', () => {
  it('shares one list between hosts that list the same ids, in any order', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => id(i));
    const a = SeenNodes.of(ids);
    const b = SeenNodes.of([...ids].reverse());
    expect(b).toBe(a);
    expect(a.count).toBe(1000);
    expect(a.has(id(0)) && a.has(id(999)) && !a.has(id(1000))).toBe(true);
  });

  it('makes a new one for other ids, another count or a duplicate, as new SeenNodes would', () => {
    const a = SeenNodes.of(['a', 'b', 'c']);
    for (const other of [['a', 'b', 'd'], ['a', 'b'], ['a', 'b', 'c', 'c'], []]) {
      const s = SeenNodes.of(other);
      expect(s).not.toBe(a);
      expect(s.count).toBe(other.length);
      for (const x of ['a', 'b', 'c', 'd']) expect(s.has(x)).toBe(new SeenNodes(other).has(x));
    }
    expect(SeenNodes.of(['c', 'b', 'a'])).not.toBe(a); // only the last list is shared
    expect(SeenNodes.of(['a', 'c', 'b'])).toBe(SeenNodes.of(['b', 'a', 'c']));
  });
});
