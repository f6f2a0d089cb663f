// Injected faults, chosen per release and optionally per host.
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, get, killAll, ready, request, runToExit, start, until } from './harness.js';

afterEach(() => killAll());

const RELEASE = (fault: string, fault_on: string[] = []) => ({ version: '1.0.3', fault, fault_on });

describe('exo stand-in faults', () => {
  it('crash-on-start: exits 1 at once with a Python traceback', async () => {
    const r = await runToExit([], RELEASE('crash-on-start'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Traceback (most recent call last):');
    expect(r.stderr).toMatch(/^RuntimeError: exo stand-in: injected fault 'crash-on-start'$/m);
  });

  it('exit-after:S: serves, then exits 1 with exo\'s unhandled-exception lines', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'e1', port: port!, release: RELEASE('exit-after:1') });
    await ready(s);
    const r = await s.exited;
    expect(r.code).toBe(1);
    expect(s.log()).toMatch(/\| CRITICAL\] EXO terminated due to unhandled exception$/m);
    expect(s.log()).toMatch(/^anyio\.BrokenResourceError$/m);
  });

  it('runner-exit:S: "Runner found to be dead" with exitcode=1, RunnerFailed in /state, repeated, stays up', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'r1', port: port!, release: RELEASE('runner-exit:1'), env: { EXO_STANDIN_WATCHDOG_INTERVAL: '0.5' } });
    await ready(s);
    const st0 = (await get(s.port, '/state')).json;
    expect(Object.keys(Object.values(st0.runners)[0] as object)).toEqual(['RunnerReady']);
    await until('two watchdog reports', () => (s.log().match(/^RuntimeError: Runner found to be dead$/gm) ?? []).length >= 2);
    expect(s.log()).toMatch(/\| ERROR {3}\] Runner terminated with exitcode=1\nRuntimeError: Runner found to be dead$/m);
    const runners = (await get(s.port, '/state/runners')).json;
    expect(Object.values(runners)).toEqual([{ RunnerFailed: { errorMessage: 'Terminated (exitcode=1)', diagnostics: [] } }]);
    expect((await get(s.port, '/models')).status).toBe(200);
    const chat = await request(s.port, 'POST', '/v1/chat/completions', { model: 'mlx-community/Llama-3.2-1B-Instruct-4bit', messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.status).toBe(500);
    expect(chat.json.error.message).toBe('Runner shutdown before completing command (exitcode=1)');
    expect(s.proc.exitCode).toBeNull();
  });

  it('queue-closed:S: the Queue-is-closed traceback, stays up', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'q1', port: port!, release: RELEASE('queue-closed:1') });
    await ready(s);
    await until('traceback', () => /^ValueError: Queue <multiprocessing\.queues\.Queue object at 0x[0-9a-f]+> is closed$/m.test(s.log()));
    expect((await get(s.port, '/state')).status).toBe(200);
    expect(s.proc.exitCode).toBeNull();
  });

  it('closed-resource:S: an anyio.ClosedResourceError traceback, stays up', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'c1', port: port!, release: RELEASE('closed-resource:1') });
    await ready(s);
    await until('traceback', () => /^anyio\.ClosedResourceError$/m.test(s.log()));
    expect(s.log()).toMatch(/\| WARNING \] Error in command processor\nTraceback \(most recent call last\):/);
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
    const st = (await get(s.port, '/state')).json;
    expect(Object.keys(Object.values(st.runners)[0] as object)).toEqual(['RunnerReady']);
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
});
