// Injected faults of the whole process, chosen per release and optionally per host, or per
// process with EXO_STANDIN_FAULT. (runner-exit and queue-closed: runners.test.ts, chat.test.ts.)
import { afterEach, describe, expect, it } from 'vitest';
import {
  RELEASES,
  freePorts,
  get,
  killAll,
  ready,
  request,
  runToExit,
  start,
  until,
  topologyNodes,
  untilRunnersReady,
  untilSees,
} from './harness.js';

afterEach(() => killAll());

const RELEASE = (fault: string, fault_on: string[] = []) => ({
  ...RELEASES.zenoh,
  fault,
  fault_on,
});

describe('exo stand-in faults', () => {
  it('crash-on-start: exits 1 at once with a Python traceback', async () => {
    const r = await runToExit([], RELEASE('crash-on-start'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Traceback (most recent call last):');
    expect(r.stderr).toMatch(/^RuntimeError: exo stand-in: injected fault 'crash-on-start'$/m);
  });

  it("exit-after:S: serves, then exits 1 with exo's unhandled-exception lines", async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'e1', port: port!, release: RELEASE('exit-after:1') });
    await ready(s);
    const r = await s.exited;
    expect(r.code).toBe(1);
    expect(s.log()).toMatch(/\| CRITICAL\] EXO terminated due to unhandled exception$/m);
    expect(s.log()).toMatch(/^anyio\.BrokenResourceError$/m);
  });

  it('closed-resource:S: an anyio.ClosedResourceError traceback, stays up', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'c1', port: port!, release: RELEASE('closed-resource:1') });
    await ready(s);
    await until('traceback', () => /^anyio\.ClosedResourceError$/m.test(s.log()));
    expect(s.log()).toMatch(
      /\| WARNING \] Error in command processor\nTraceback \(most recent call last\):/,
    );
    expect((await get(s.port, '/state')).status).toBe(200);
  });

  it('hang: accepts connections, never answers; still stops on SIGTERM', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'g1', port: port!, release: RELEASE('hang') });
    await until('listening', () => s.log().includes('Starting API'));
    await until('accepting', () =>
      request(s.port, 'GET', '/node_id', undefined, 1000).then(
        () => false,
        (e: Error) => /timeout/.test(e.message), // connected, then no answer (not ECONNREFUSED)
      ),
    );
    s.proc.kill('SIGTERM');
    expect((await s.exited).code).toBe(0);
  });

  it('http-500: /models and /state answer 500, /node_id still 200', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'x1', port: port!, release: RELEASE('http-500') });
    await ready(s);
    for (const p of ['/models', '/v1/models', '/state', '/state/runners']) {
      const r = await get(s.port, p);
      expect(r.status).toBe(500);
      expect(r.text).toBe('Internal Server Error');
    }
  });

  it('slow-start:S: refuses connections at first, then is a healthy node', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 's1', port: port!, release: RELEASE('slow-start:1.5') });
    await until('started', () => s.log().includes('Starting API'));
    await expect(get(s.port, '/node_id')).rejects.toThrow(/ECONNREFUSED/);
    await ready(s);
    await untilRunnersReady(s);
  });

  it('fault_on limits the fault to the named hosts', async () => {
    const [p1, p2] = await freePorts(2);
    const release = RELEASE('http-500', ['bad']);
    const good = start({ name: 'good', port: p1!, release });
    const bad = start({ name: 'bad', port: p2!, release });
    await ready(good);
    await ready(bad);
    expect((await get(good.port, '/state')).status).toBe(200);
    expect((await get(bad.port, '/state')).status).toBe(500);
  });

  it("EXO_STANDIN_FAULT overrides the release's fault for this process, whatever fault_on says", async () => {
    const [p1, p2] = await freePorts(2);
    const release = RELEASE('http-500', ['nobody']);
    const plain = start({ name: 'plain', port: p1!, release });
    const over = start({
      name: 'over',
      port: p2!,
      release,
      env: { EXO_STANDIN_FAULT: 'http-500' },
    });
    await ready(plain);
    await ready(over);
    expect((await get(plain.port, '/state')).status).toBe(200);
    expect((await get(over.port, '/state')).status).toBe(500);
    expect(over.log()).toContain('fault http-500');
  });

  it('EXO_STANDIN_FAULT=isolated cuts one restarted host off; =none heals a faulty release', async () => {
    const ports = await freePorts(2);
    const a = start({
      name: 'a',
      port: ports[0]!,
      release: RELEASE('none'),
      peers: [ports[1]!],
      args: ['-v'],
    });
    const b = start({
      name: 'b',
      port: ports[1]!,
      release: RELEASE('http-500'),
      peers: [ports[0]!],
      env: { EXO_STANDIN_FAULT: 'none' },
    });
    const ids = [await ready(a), await ready(b)];
    await untilSees(a, ids);
    expect((await get(b.port, '/state')).status).toBe(200);
    process.kill(b.proc.pid!, 'SIGKILL');
    await b.exited;
    const b2 = start({
      name: 'b',
      port: ports[1]!,
      release: RELEASE('none'),
      peers: [ports[0]!],
      env: { EXO_STANDIN_FAULT: 'isolated' },
      args: ['-v'],
    });
    const id2 = await ready(b2);
    await until('b2 to ignore a', () =>
      b2.log().includes(`exo stand-in: ignoring node ${ids[0]} at `),
    );
    await until('a to ignore b2', () => a.log().includes(`exo stand-in: ignoring node ${id2} at `));
    expect(await topologyNodes(b2)).toEqual([id2]);
    expect((await get(a.port, '/state/topology/nodes')).json).not.toContain(id2);
  });

  it('an unknown EXO_STANDIN_FAULT: exit 1 with a clear message', async () => {
    const r = await runToExit([], RELEASE('none'), { EXO_STANDIN_FAULT: 'explode' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('exo-standin: EXO_STANDIN_FAULT: unknown fault "explode"');
  });
});
