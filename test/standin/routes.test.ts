// One stand-in node: exo's routes, JSON shapes, log lines and SIGTERM behaviour.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RELEASES,
  freePorts,
  get,
  killAll,
  ready,
  request,
  start,
  until,
  untilRunnersReady,
  type StandIn,
} from './harness.js';

afterAll(() => killAll());

describe('exo stand-in, one node', () => {
  let s: StandIn;
  let id: string;

  beforeAll(async () => {
    const [port] = await freePorts(1);
    s = start({ name: 'h1', port: port!, release: RELEASES.zenoh });
    id = await ready(s);
    await untilRunnersReady(s);
  });

  it('GET /node_id is a bare JSON string: 16 random bytes in hex without leading zeros (zenoh era)', async () => {
    const r = await get(s.port, '/node_id');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.text).toMatch(/^"[1-9a-f][0-9a-f]{0,31}"$/);
    expect(r.json).toBe(id);
  });

  it('GET /models and /v1/models list the catalogue like exo', async () => {
    for (const p of ['/models', '/v1/models']) {
      const r = await get(s.port, p);
      expect(r.status).toBe(200);
      expect(r.json.object).toBe('list');
      expect(r.json.data.length).toBeGreaterThan(0);
      const m = r.json.data[0];
      expect(m).toMatchObject({ object: 'model', owned_by: 'exo' });
      expect(typeof m.id).toBe('string');
      expect(typeof m.created).toBe('number');
      expect(typeof m.storage_size_megabytes).toBe('number');
    }
    const d = await get(s.port, '/v1/models?status=downloaded');
    expect(d.json.data.map((m: { id: string }) => m.id)).toEqual([
      'mlx-community/Llama-3.2-1B-Instruct-4bit',
    ]);
  });

  it('GET /state has exo camelCase keys, the node in topology and a RunnerReady runner', async () => {
    const r = await get(s.port, '/state');
    expect(r.status).toBe(200);
    const st = r.json;
    expect(Object.keys(st)).toEqual([
      'instances',
      'runners',
      'downloads',
      'tasks',
      'lastSeen',
      'topology',
      'lastEventAppliedIdx',
      'nodeIdentities',
      'nodeMemory',
      'nodeDisk',
      'nodeSystem',
      'nodeNetwork',
      'nodeThunderbolt',
      'nodeThunderboltBridge',
      'nodeRdmaCtl',
      'nodeBackends',
      'thunderboltBridgeCycles',
      'instanceLinks',
      'prefillServerPorts',
      'customModelCards',
    ]);
    expect(st.topology.nodes).toEqual([id]);
    expect(st.topology.connections).toEqual({});
    expect(st.nodeIdentities[id].friendlyName).toBe('h1');
    expect(st.nodeMemory[id].ramTotal.inBytes).toBeGreaterThan(0);
    const runners = Object.values(st.runners) as Record<string, unknown>[];
    expect(runners).toHaveLength(1);
    expect(Object.keys(runners[0]!)).toEqual(['RunnerReady']);
    const inst = Object.values(st.instances)[0] as any;
    expect(Object.keys(inst)).toEqual(['MlxRingInstance']);
    expect(inst.MlxRingInstance.shardAssignments.nodeToRunner[id]).toBe(Object.keys(st.runners)[0]);
  });

  it("GET /state/{path} walks the JSON; a bad path is exo's 404 error", async () => {
    const r = await get(s.port, '/state/topology/nodes/0');
    expect(r.json).toBe(id);
    const bad = await get(s.port, '/state/topology/nope');
    expect(bad.status).toBe(404);
    expect(bad.json).toEqual({
      error: {
        message: "unable to find path 'topology.nope' in state json",
        type: 'Not Found',
        param: null,
        code: 404,
      },
    });
  });

  it("unknown routes answer like exo's static mount: no /health", async () => {
    const r = await get(s.port, '/health');
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ detail: 'Not Found' });
    const p = await request(s.port, 'POST', '/instances', { model: 'x', nodes: 2 });
    expect(p.status).toBe(405);
    expect(p.json).toEqual({ detail: 'Method Not Allowed' });
  });

  it('GET / is an HTML dashboard; GET /events is a JSON array', async () => {
    const r = await get(s.port, '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.text).toContain('<title>EXO</title>');
    const e = await get(s.port, '/events');
    expect(Array.isArray(e.json)).toBe(true);
    expect(e.json.some((ev: object) => 'InstanceCreated' in ev)).toBe(true);
  });

  it('logs exo-format startup lines, and one stand-in line with version, era, namespace and ports', () => {
    const log = s.log();
    expect(log).toMatch(/^\[ \d\d:\d\d:\d\d\.\d{4}(AM|PM) \| INFO {4}\] pid = \d+$/m);
    expect(log).toContain(`Starting node ${id}`);
    expect(log).toContain(
      `exo stand-in: exo 0.9.0 (zenoh era, package 0.3.70), namespace 0.3.70, api port ${s.port}, zenoh port 52414, discovery port 52413, host h1, fault none`,
    );
    expect(log).toContain(`Running on http://127.0.0.1:${s.port} (CTRL + C to quit)`);
    // colours like exo's loguru sink (colorize=True)
    expect(s.stderr()).toContain('\x1b[1mINFO    \x1b[0m');
  });

  it('exits 0 on SIGTERM after a shutdown line', async () => {
    s.proc.kill('SIGTERM');
    const r = await s.exited;
    expect(r.code).toBe(0);
    expect(s.log()).toMatch(/\| INFO {4}\] EXO Shutdown complete$/m);
  });
});

describe('exo stand-in options', () => {
  it("-v switches to exo's DEBUG format and logs API requests", async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'hv', port: port!, release: RELEASES.zenoh, args: ['-v'] });
    await ready(s);
    await get(s.port, '/state');
    await until('debug line', () => s.log().includes('API request: GET /state'));
    expect(s.log()).toMatch(
      /^\[ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| DEBUG {4}\| exo\.api\.main:[a-z_]+:\d+ \] API request: GET \/state$/m,
    );
  });

  it('EXO_STANDIN_COLOR=0 gives plain lines', async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'hc',
      port: port!,
      release: RELEASES.zenoh,
      env: { EXO_STANDIN_COLOR: '0' },
    });
    await ready(s);
    expect(s.stderr()).not.toContain('\x1b[');
  });

  it('--no-worker: no runners, no instances', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'hw', port: port!, release: RELEASES.zenoh, args: ['--no-worker'] });
    await ready(s);
    const st = (await get(s.port, '/state')).json;
    expect(st.runners).toEqual({});
    expect(st.instances).toEqual({});
  });

  it('--no-api: no exo routes', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'hn', port: port!, release: RELEASES.zenoh, args: ['--no-api'] });
    await until(
      'discovery route',
      async () => (await get(s.port, '/_standin/discovery')).status === 200,
    );
    expect((await get(s.port, '/node_id')).status).toBe(404);
  });

  it('a second stand-in on a taken port exits 1 with a bind traceback', async () => {
    const [port] = await freePorts(1);
    const a = start({ name: 'p1', port: port!, release: RELEASES.zenoh });
    await ready(a);
    const b = start({ name: 'p2', port: port!, release: RELEASES.zenoh });
    expect((await b.exited).code).toBe(1);
    expect(b.log()).toContain('address already in use');
  });
});

describe('exo stand-in, libp2p era', () => {
  it("/state has v1.0.71's keys; /node_id is a libp2p peer id", async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'l', port: port!, release: RELEASES.libp2p });
    const id = await ready(s);
    expect(id).toMatch(/^12D3KooW/);
    const st = (await get(s.port, '/state')).json;
    expect(Object.keys(st)).toEqual([
      'instances',
      'runners',
      'downloads',
      'tasks',
      'lastSeen',
      'topology',
      'lastEventAppliedIdx',
      'nodeIdentities',
      'nodeMemory',
      'nodeDisk',
      'nodeSystem',
      'nodeNetwork',
      'nodeThunderbolt',
      'nodeThunderboltBridge',
      'nodeRdmaCtl',
      'thunderboltBridgeCycles',
    ]);
    expect(st.topology.nodes).toEqual([id]);
  });
});
