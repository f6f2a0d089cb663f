// place_instance, chat completions and instance deletion on a two-node stand-in cluster.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePorts,
  get,
  killAll,
  ready,
  request,
  start,
  until,
  untilSees,
  type StandIn,
} from './harness.js';

afterAll(() => killAll());

const MODEL = 'mlx-community/Qwen3-0.6B-4bit';

describe('exo stand-in instances', () => {
  let a: StandIn;
  let b: StandIn;
  let ids: string[];

  beforeAll(async () => {
    const [pa, pb] = await freePorts(2);
    a = start({ name: 'a', port: pa!, release: { version: '1.0.3' }, peers: [pb!] });
    b = start({ name: 'b', port: pb!, release: { version: '1.0.3' }, peers: [pa!] });
    ids = [await ready(a), await ready(b)];
    await untilSees(a, ids);
    await untilSees(b, ids);
  });

  const instancesOf = async (s: StandIn, model: string) => {
    const st = (await get(s.port, '/state')).json;
    return Object.values(st.instances)
      .map((i: any) => i.MlxRingInstance)
      .filter((i: any) => i.shardAssignments.modelId === model);
  };

  it('chat without an instance: 404 "No instance found for model X"', async () => {
    const r = await request(a.port, 'POST', '/v1/chat/completions', {
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.status).toBe(404);
    expect(r.json).toEqual({
      error: {
        message: `No instance found for model ${MODEL}`,
        type: 'Not Found',
        param: null,
        code: 404,
      },
    });
  });

  it('malformed bodies are FastAPI 422s', async () => {
    const r = await request(a.port, 'POST', '/place_instance', { sharding: 'Pipeline' });
    expect(r.status).toBe(422);
    expect(r.json.detail[0]).toMatchObject({
      type: 'missing',
      loc: ['body', 'model_id'],
      msg: 'Field required',
    });
    const bad = await request(a.port, 'POST', '/place_instance', '{not json');
    expect(bad.status).toBe(422);
    expect(bad.json.detail[0].type).toBe('json_invalid');
  });

  it('place_instance with too few nodes: "Command received.", a warning in the log, no instance', async () => {
    const r = await request(a.port, 'POST', '/place_instance', {
      model_id: MODEL,
      sharding: 'Pipeline',
      instance_meta: 'MlxRing',
      min_nodes: 3,
    });
    expect(r.status).toBe(200);
    expect(r.json.message).toBe('Command received.');
    await until('placement warning', () =>
      /^ValueError: No cycles found with sufficient memory$/m.test(a.log()),
    );
    expect(await instancesOf(a, MODEL)).toEqual([]);
  });

  it('place_instance on two nodes, chat, GET and DELETE the instance', async () => {
    const r = await request(a.port, 'POST', '/place_instance', {
      model_id: MODEL,
      sharding: 'Pipeline',
      instance_meta: 'MlxRing',
      min_nodes: 2,
    });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ message: 'Command received.', model_card: { modelId: MODEL } });
    expect(r.json.command_id).toMatch(/^[0-9a-f-]{36}$/);

    // the instance shows up cluster-wide, with a RunnerReady runner on each node
    const inst = await until('instance on b', async () => (await instancesOf(b, MODEL))[0]);
    expect(Object.keys(inst.shardAssignments.nodeToRunner).sort()).toEqual([...ids].sort());
    await until('both runners ready on a', async () => {
      const runners = (await get(a.port, '/state/runners')).json;
      return Object.values(inst.shardAssignments.nodeToRunner).every(
        (rid: any) => runners[rid]?.RunnerReady,
      );
    });

    const one = await get(b.port, `/instance/${inst.instanceId}`);
    expect(one.status).toBe(200);
    expect(one.json.MlxRingInstance.instanceId).toBe(inst.instanceId);

    const chat = await request(b.port, 'POST', '/v1/chat/completions', {
      model: MODEL,
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(chat.status).toBe(200);
    expect(chat.json).toMatchObject({
      object: 'chat.completion',
      model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'stop' }],
    });
    expect(chat.json.usage.total_tokens).toBeGreaterThan(0);

    const stream = await request(a.port, 'POST', '/v1/chat/completions', {
      model: MODEL,
      stream: true,
      messages: [{ role: 'user', content: 'hello' }],
    });
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    // exo streams ChatCompletionResponse objects: "chat.completion", after a keep-alive comment
    expect(stream.text).toMatch(/^: keep-alive\n\ndata: \{.*"object":"chat\.completion"/);
    expect(stream.text.trimEnd().endsWith('data: [DONE]')).toBe(true);

    // delete through the node that did not place it: the command reaches the placing node
    const del = await request(b.port, 'DELETE', `/instance/${inst.instanceId}`);
    expect(del.status).toBe(200);
    expect(del.json).toMatchObject({ message: 'Command received.', instance_id: inst.instanceId });
    await until(
      'instance gone on both',
      async () =>
        (await instancesOf(a, MODEL)).length === 0 && (await instancesOf(b, MODEL)).length === 0,
    );
    // its runners shut down cleanly: RunnerShutdown takes them out of the state
    await until('runners gone on both', async () => {
      const ra = (await get(a.port, '/state/runners')).json;
      const rb = (await get(b.port, '/state/runners')).json;
      return Object.values(inst.shardAssignments.nodeToRunner).every(
        (rid: any) => !(rid in ra) && !(rid in rb),
      );
    });
    expect(a.log()).toMatch(/\| INFO {4}\] runner shutting down$/m);

    const gone = await get(a.port, `/instance/${inst.instanceId}`);
    expect(gone.status).toBe(404);
    expect(gone.json.error.message).toBe('Instance not found');
    const again = await request(a.port, 'DELETE', `/instance/${inst.instanceId}`);
    expect(again.status).toBe(404);
  });

  it('Tensor sharding of a model without tensor support fails in the master, like exo', async () => {
    const r = await request(a.port, 'POST', '/place_instance', {
      model_id: MODEL,
      sharding: 'Tensor',
      min_nodes: 1,
    });
    expect(r.status).toBe(200);
    await until('warning', () =>
      a
        .log()
        .includes(
          `ValueError: Requested Tensor sharding but this model does not support tensor parallelism: ${MODEL}`,
        ),
    );
  });

  it('an unknown model id is a 500 (exo cannot load its card offline)', async () => {
    const r = await request(a.port, 'POST', '/place_instance', {
      model_id: 'nobody/nothing',
      min_nodes: 1,
    });
    expect(r.status).toBe(500);
  });
});
