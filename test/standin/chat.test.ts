// POST /v1/chat/completions as exo answers it: a streamed response whose 200 goes out first;
// the answer once the instance's runners are ready; a dropped connection (not a 500) when the
// runner dies mid-request; the SSE error event for a streamed request.
import { afterEach, describe, expect, it } from 'vitest';
import {
  FAST,
  RELEASES,
  freePorts,
  get,
  killAll,
  post,
  ready,
  runnerTags,
  start,
  until,
  untilRunnersReady,
  type Era,
} from './harness.js';

afterEach(() => killAll());

const MODEL = 'mlx-community/Llama-3.2-1B-Instruct-4bit';
const chat = (stream = false) => ({
  model: MODEL,
  messages: [{ role: 'user', content: 'hello' }],
  stream,
});

describe.each(['libp2p', 'zenoh'] as const)('chat completions, %s era', (era: Era) => {
  it('without an instance of the model: 404 "No instance found for model X"', async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'c', port: port!, release: { ...RELEASES[era], model: null } });
    await ready(s);
    const r = await post(s.port, '/v1/chat/completions', chat());
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body)).toEqual({
      error: {
        message: `No instance found for model ${MODEL}`,
        type: 'Not Found',
        param: null,
        code: 404,
      },
    });
  });

  it("on a ready instance: exo's JSON (nulls kept in v1.0.71, dropped on main) and its SSE stream", async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'c', port: port!, release: RELEASES[era] });
    await ready(s);
    await untilRunnersReady(s);
    const r = await post(s.port, '/v1/chat/completions', chat());
    expect(r.status).toBe(200);
    expect(r.complete).toBe(true);
    const body = JSON.parse(r.body);
    expect(body).toMatchObject({
      object: 'chat.completion',
      model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'stop' }],
    });
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.usage.total_tokens).toBeGreaterThan(0);
    if (era === 'libp2p')
      expect(body).toMatchObject({
        service_tier: null,
        choices: [{ logprobs: null, message: { tool_calls: null } }],
      });
    else expect(JSON.stringify(body)).not.toContain('null');

    const st = await post(s.port, '/v1/chat/completions', chat(true));
    expect(st.status).toBe(200);
    expect(st.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(st.body.startsWith(': keep-alive\n\n')).toBe(true);
    const events = st.body.split('\n\n').filter((e) => e.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    expect(chunks.every((c) => c.object === 'chat.completion')).toBe(true);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('stop');
    expect(chunks.at(-1).usage.total_tokens).toBeGreaterThan(0);
  });

  it('before the runner is ready: 200 at once, the answer when it is', async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'c',
      port: port!,
      release: { ...RELEASES[era], runner_load_seconds: 2 },
    });
    await ready(s);
    let tagsAtHeaders: Promise<Record<string, string>> | undefined;
    const r = await post(s.port, '/v1/chat/completions', chat(), 20_000, () => {
      tagsAtHeaders = runnerTags(s);
    });
    expect(r.status).toBe(200);
    expect(Object.values(await tagsAtHeaders!)).not.toContain('RunnerReady');
    expect(r.complete).toBe(true);
    expect(JSON.parse(r.body).choices[0].message.content).toContain('exo stand-in');
  });

  /** A node whose runner dies 1 s after starting, while a generation (60 s) outlasts it. */
  const startDyingRunner = async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'c',
      port: port!,
      release: { ...RELEASES[era], runner_load_seconds: 0.3, fault: 'runner-exit:1' },
      env: { ...FAST, EXO_STANDIN_COLOR: '0', EXO_STANDIN_CHAT_SECONDS: '60' },
    });
    await ready(s);
    await untilRunnersReady(s);
    return s;
  };

  it('the runner dies mid-request: status 200, then the connection drops (no 500); exo logs the ValueError', async () => {
    const s = await startDyingRunner();
    const r = await post(s.port, '/v1/chat/completions', chat());
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(r.body).toBe('');
    await until('the log', () =>
      s.log().includes('ValueError: Runner shutdown before completing command (exitcode=1)'),
    );
    expect(s.log()).toMatch(
      /\| ERROR {3}\] Error in ASGI Framework\nTraceback \(most recent call last\):\n[\s\S]*\nValueError: Runner shutdown before completing command \(exitcode=1\)\n/,
    );
  });

  it('streamed, the same death is an SSE error event and [DONE]', async () => {
    const s = await startDyingRunner();
    const r = await post(s.port, '/v1/chat/completions', chat(true));
    expect(r.status).toBe(200);
    expect(r.complete).toBe(true);
    const error = {
      message: 'Runner shutdown before completing command (exitcode=1)',
      type: 'InternalServerError',
      ...(era === 'libp2p' ? { param: null } : {}),
      code: 500,
    };
    expect(r.body).toBe(`: keep-alive\n\ndata: ${JSON.stringify({ error })}\n\ndata: [DONE]\n\n`);
  });

  it('a request waiting on a failing instance that gets deleted: 200, then dropped', async () => {
    const [port] = await freePorts(1);
    // the runner dies before it is ready, five times; the waiting request never starts
    const s = start({
      name: 'c',
      port: port!,
      release: { ...RELEASES[era], runner_load_seconds: 5, fault: 'runner-exit:0.2' },
      env: { ...FAST, EXO_STANDIN_COLOR: '0' },
    });
    await ready(s);
    const r = await post(s.port, '/v1/chat/completions', chat());
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    expect(s.log()).toContain('exceeded 5 retries, requesting deletion');
    expect(s.log()).toMatch(/\| ERROR {3}\] Error in ASGI Framework\n[\s\S]*\nAssertionError\n/);
    expect((await get(s.port, '/state/instances')).json).toEqual({});
  });
});
