// exo's HTTP API (src/exo/api/main.py): the routes a deployment tool uses, with exo's JSON
// shapes, plus the stand-in's own discovery route. Chat completions behave as exo's streamed
// responses do: status 200 at once, the answer when the instance's runners are ready, and a
// dropped connection when the runner dies mid-request.

import crypto from 'node:crypto';
import { tagOf } from './era.mjs';
import {
  cors,
  readBody,
  readJsonBody,
  send,
  sendError,
  sendJson,
  sendText500,
  validate,
} from './http.mjs';
import { emit, logger, loguruTraceback } from './log.mjs';
import { CATALOGUE, cardFor } from './models.mjs';

const uuid = () => crypto.randomUUID();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CHAT_POLL_MS = 50;
const KEEPALIVE_MS = 10_000; // src/exo/api/keepalive.py with_sse_keepalive(interval=10.0)
const CHAT_SECONDS = () => {
  const v = Number(process.env.EXO_STANDIN_CHAT_SECONDS);
  return process.env.EXO_STANDIN_CHAT_SECONDS !== undefined && v >= 0 ? v : 0.05;
};

/** pydantic's model_dump_json(exclude_none=True), which main uses for chat answers. */
function dropNulls(x) {
  if (Array.isArray(x)) return x.map(dropNulls);
  if (x && typeof x === 'object')
    return Object.fromEntries(
      Object.entries(x)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, dropNulls(v)]),
    );
  return x;
}

export class Api {
  constructor(node) {
    this.node = node;
  }

  get http500() {
    return this.node.fault.kind === 'http-500';
  }

  async handle(req, res) {
    const node = this.node;
    const url = new URL(req.url || '/', 'http://x');
    const p = decodeURIComponent(url.pathname);
    const m = req.method || 'GET';
    if (!p.startsWith('/_standin/'))
      logger.debug(`API request: ${m} ${url.pathname}`, 'exo.api.main:_log_requests:1');
    res.setHeader('server', 'hypercorn-h11');
    cors(req, res);
    if (m === 'OPTIONS' && req.headers.origin && req.headers['access-control-request-method']) {
      res.setHeader('access-control-allow-methods', 'DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT');
      res.setHeader('access-control-max-age', '600');
      if (req.headers['access-control-request-headers'])
        res.setHeader(
          'access-control-allow-headers',
          req.headers['access-control-request-headers'],
        );
      return send(res, 200, 'OK', 'text/plain; charset=utf-8');
    }

    // the stand-in's discovery (exo discovers over libp2p / zenoh, not over its API)
    if (p === '/_standin/discovery' && m === 'GET') return sendJson(res, 200, node.discovery());

    if (!node.args.spawn_api) return sendJson(res, 404, { detail: 'Not Found' });

    if (m === 'GET' && p === '/node_id') return sendJson(res, 200, node.nodeId);
    if (m === 'GET' && (p === '/models' || p === '/v1/models')) {
      if (this.http500) return sendText500(res);
      return sendJson(res, 200, this.models(url.searchParams.get('status')));
    }
    if (m === 'GET' && (p === '/state' || p.startsWith('/state/'))) {
      if (this.http500) return sendText500(res);
      return this.state(p, res);
    }
    if (m === 'POST' && p === '/place_instance') return this.placeInstance(req, res);
    if (m === 'POST' && p === '/instance') {
      await readBody(req);
      return sendJson(res, 501, {
        detail: 'POST /instance is not implemented by the exo stand-in; use /place_instance',
      });
    }
    if (m === 'GET' && p === '/instance/previews') return this.previews(url, res);
    const im = /^\/instance\/([^/]+)$/.exec(p);
    if (im && (m === 'GET' || m === 'DELETE')) {
      const iid = im[1];
      const all = node.allInstances();
      if (!all.has(iid)) return sendError(res, 404, 'Instance not found');
      if (m === 'GET') return sendJson(res, 200, all.get(iid));
      const r = await node.requestDeleteInstance(iid);
      if (r.status === 200)
        return sendJson(res, 200, {
          message: 'Command received.',
          command_id: uuid(),
          instance_id: iid,
        });
      if (r.status === 404) return sendError(res, 404, 'Instance not found');
      return sendError(res, 500, 'Failed to reach the node that placed the instance');
    }
    if (m === 'POST' && p === '/v1/chat/completions') return this.chat(req, res);
    if (m === 'GET' && p === '/events') return sendJson(res, 200, node.events);
    if ((m === 'GET' || m === 'HEAD') && (p === '/' || p === '/index.html'))
      return send(res, 200, this.dashboard(), 'text/html; charset=utf-8');
    // everything else falls through to exo's static-files mount
    if (m === 'GET' || m === 'HEAD') return sendJson(res, 404, { detail: 'Not Found' });
    return sendJson(res, 405, { detail: 'Method Not Allowed' });
  }

  state(p, res) {
    const st = this.node.state();
    if (p === '/state' || p === '/state/') return sendJson(res, 200, st);
    const sub = p.slice('/state/'.length);
    let x = st;
    try {
      for (const attr of sub.split('/')) {
        if (attr === '') continue;
        if (Array.isArray(x)) {
          if (!/^-?\d+$/.test(attr)) throw new Error('bad index');
          let i = parseInt(attr, 10);
          if (i < 0) i += x.length;
          if (i < 0 || i >= x.length) throw new Error('out of range');
          x = x[i];
        } else if (x && typeof x === 'object') {
          if (!Object.hasOwn(x, attr)) throw new Error('no key');
          x = x[attr];
        } else {
          throw new Error('not a container');
        }
      }
    } catch {
      return sendError(res, 404, `unable to find path '${sub.replaceAll('/', '.')}' in state json`);
    }
    return sendJson(res, 200, x);
  }

  models(status) {
    let cards = CATALOGUE;
    if (status === 'downloaded') {
      const st = this.node.state();
      const have = new Set();
      for (const list of Object.values(st.downloads)) {
        for (const d of list)
          if (d.DownloadCompleted)
            have.add(Object.values(d.DownloadCompleted.shardMetadata)[0].modelCard.modelId);
      }
      cards = cards.filter((c) => have.has(c.modelId));
    }
    const created = Math.floor(Date.now() / 1000);
    return {
      object: 'list',
      data: cards.map((c) => ({
        id: c.modelId,
        object: 'model',
        created,
        owned_by: 'exo',
        hugging_face_id: c.modelId,
        name: c.modelId.split('/').pop(),
        description: '',
        context_length: c.contextLength,
        tags: [],
        storage_size_megabytes: Math.floor(c.storageSize.inBytes / (1024 * 1024)),
        supports_tensor: c.supportsTensor,
        tasks: c.tasks,
        is_custom: false,
        family: c.family,
        quantization: c.quantization,
        base_model: c.baseModel,
        capabilities: c.capabilities,
        reasoning_dialect: c.reasoningDialect,
      })),
    };
  }

  async placeInstance(req, res) {
    const node = this.node;
    const body = await readJsonBody(req, res);
    if (body === undefined) return;
    const v = validate(body, {
      model_id: { type: 'string', required: true },
      sharding: { enum: ['Pipeline', 'Tensor'], def: 'Pipeline' },
      instance_meta: { enum: ['MlxRing', 'MlxJaccl'], def: 'MlxRing' },
      min_nodes: { type: 'int', def: 1 },
    });
    if (v.errors) return sendJson(res, 422, { detail: v.errors });
    const { model_id: modelId, sharding, instance_meta: meta, min_nodes: minNodes } = v.value;
    const c = cardFor(modelId);
    if (!c) {
      // exo would fetch the model card from Hugging Face; the stand-in is offline
      logger.error(
        `Exception in ASGI application: could not load model card for ${modelId}`,
        'hypercorn.error:error:1',
      );
      return sendText500(res);
    }
    const commandId = uuid();
    sendJson(res, 200, { message: 'Command received.', command_id: commandId, model_card: c });
    // the master processes the command after the API answered, as in exo
    setImmediate(() => {
      const err = node.placementError(c, sharding, meta, minNodes);
      if (err) {
        emit(
          'WARNING',
          'Error in command processor',
          'exo.master.main:_command_processor:468',
          loguruTraceback(
            [
              ['exo/master/main.py', '_command_processor', 'placement = place_instance('],
              [
                'exo/master/placement.py',
                'place_instance',
                `raise ValueError("${err.replaceAll('"', "'")}")`,
              ],
            ],
            'ValueError',
            err,
          ),
        );
        return;
      }
      node.createInstance(c, sharding, meta, node.placementNodes().slice(0, minNodes));
    });
  }

  previews(url, res) {
    const node = this.node;
    const modelId = url.searchParams.get('model_id');
    if (!modelId)
      return sendJson(res, 422, {
        detail: [
          { type: 'missing', loc: ['query', 'model_id'], msg: 'Field required', input: null },
        ],
      });
    const c = cardFor(modelId);
    if (!c)
      return sendError(
        res,
        400,
        `Failed to load model card: model ${modelId} is not known to the exo stand-in`,
      );
    const n = node.placementNodes().length;
    const previews = [];
    for (const sharding of ['Pipeline', 'Tensor']) {
      for (const meta of ['MlxRing', 'MlxJaccl']) {
        let failed = false;
        for (let k = 1; k <= Math.max(1, n); k++) {
          const err = node.placementError(c, sharding, meta, k);
          if (err) {
            if (!failed)
              previews.push({
                model_id: c.modelId,
                sharding,
                instance_meta: meta,
                instance: null,
                memory_delta_by_node: null,
                error: err,
              });
            failed = true;
            continue;
          }
          const nodes = node.placementNodes().slice(0, k);
          const per = Math.floor(c.storageSize.inBytes / k);
          previews.push({
            model_id: c.modelId,
            sharding,
            instance_meta: meta,
            instance: null,
            memory_delta_by_node: Object.fromEntries(nodes.map((x) => [x.nodeId, per])),
            error: null,
          });
        }
      }
    }
    return sendJson(res, 200, { previews });
  }

  /**
   * POST /v1/chat/completions. exo answers with a StreamingResponse for both stream and
   * non-stream requests: the 200 goes out before the runners have done anything.
   */
  async chat(req, res) {
    const node = this.node;
    const era = node.era;
    const body = await readJsonBody(req, res);
    if (body === undefined) return;
    const v = validate(body, {
      model: { type: 'string', required: true },
      messages: { type: 'array', required: true },
      stream: { type: 'bool', def: false },
    });
    if (v.errors) return sendJson(res, 422, { detail: v.errors });
    const { model, messages, stream } = v.value;
    const found = [...node.allInstances().entries()].find(
      ([, i]) => Object.values(i)[0].shardAssignments.modelId === model,
    );
    if (!found) return sendError(res, 404, `No instance found for model ${model}`);
    const [iid] = found;
    const commandId = uuid();

    res.writeHead(
      200,
      stream
        ? {
            'content-type': 'text/event-stream; charset=utf-8',
            'cache-control': 'no-cache',
            connection: 'close',
            'x-accel-buffering': 'no',
          }
        : { 'content-type': 'application/json' },
    );
    res.flushHeaders();
    let gone = false;
    res.on('close', () => {
      gone = true;
    });
    let keepalive = null;
    if (stream) {
      res.write(': keep-alive\n\n');
      keepalive = setInterval(() => {
        if (!gone) res.write(': keep-alive\n\n');
      }, KEEPALIVE_MS);
    }

    let outcome;
    try {
      outcome = await this.runTask(iid, () => gone);
    } finally {
      clearInterval(keepalive);
    }
    if (gone) return;

    if (outcome.kind === 'error') {
      if (stream) {
        // generate_chat_stream turns the ErrorChunk into an SSE error event
        const error = {
          message: outcome.message,
          type: 'InternalServerError',
          param: null,
          code: 500,
        };
        res.write(
          `data: ${JSON.stringify({ error: era === 'libp2p' ? error : dropNulls(error) })}\n\n`,
        );
        res.end('data: [DONE]\n\n');
        return;
      }
      // collect_chat_response raises; hypercorn logs it and drops the started response
      this.dropResponse(res, 'ValueError', outcome.message, 'raise ValueError(error_message)');
      return;
    }
    if (outcome.kind === 'closed') {
      // the instance was deleted: exo closes the command's stream without an answer
      if (stream) {
        res.end();
        return;
      }
      this.dropResponse(res, 'AssertionError', null, 'assert model is not None');
      return;
    }

    const last = [...messages].reverse().find((x) => x && x.role === 'user');
    const prompt = last && typeof last.content === 'string' ? last.content : '';
    const text = `Hello from the exo stand-in on ${node.hostname}.`;
    const pt = Math.max(1, Math.ceil(prompt.length / 4));
    const words = text.split(' ');
    const usage = {
      prompt_tokens: pt,
      completion_tokens: words.length,
      total_tokens: pt + words.length,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
    const created = Math.floor(Date.now() / 1000);
    const message = (content) => ({
      role: 'assistant',
      content,
      reasoning_content: null,
      name: null,
      tool_calls: null,
      tool_call_id: null,
      function_call: null,
    });
    const dump = (o) => JSON.stringify(era === 'libp2p' ? o : dropNulls(o));
    if (stream) {
      words.forEach((w, i) => {
        const lastOne = i === words.length - 1;
        // exo's streamed chunks are ChatCompletionResponse objects ("chat.completion")
        const chunk = {
          id: commandId,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              delta: message((i ? ' ' : '') + w),
              logprobs: null,
              finish_reason: lastOne ? 'stop' : null,
              usage: null,
            },
          ],
          usage: lastOne ? usage : null,
          service_tier: null,
        };
        res.write(`data: ${dump(chunk)}\n\n`);
      });
      res.end('data: [DONE]\n\n');
      return;
    }
    res.end(
      dump({
        id: commandId,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: message(text), logprobs: null, finish_reason: 'stop' }],
        usage,
        service_tier: null,
      }),
    );
  }

  /**
   * The generation: waits until every runner of the instance is ready (exo's worker forwards
   * a task only then), runs it, and watches for the instance's deletion and dead runners.
   * Resolves { kind: 'done' | 'error' (with message) | 'closed' }.
   */
  async runTask(iid, clientGone) {
    const node = this.node;
    const runnersOf = () => {
      const inst = node.allInstances().get(iid);
      return inst ? Object.values(inst)[0].shardAssignments.nodeToRunner : null;
    };
    for (;;) {
      // wait for the runners
      for (;;) {
        if (clientGone()) return { kind: 'closed' };
        const n2r = runnersOf();
        if (!n2r) return { kind: 'closed' };
        const all = node.allRunnerStatuses();
        if (
          Object.values(n2r).every((rid) =>
            ['RunnerReady', 'RunnerRunning'].includes(tagOf(all[rid])),
          )
        )
          break;
        await sleep(CHAT_POLL_MS);
      }
      const n2r = runnersOf();
      const localRid = n2r[node.nodeId];
      const remote = Object.values(n2r).filter((r) => r !== localRid);
      const sup = localRid && node.worker ? node.worker.supervisors.get(localRid) : undefined;
      let settled = null;
      if (sup) {
        node.worker
          .generate(localRid, CHAT_SECONDS())
          .then(
            () => ({ kind: 'done' }),
            (e) => (e.closed ? { kind: 'closed' } : { kind: 'error', message: e.message }),
          )
          .then((r) => {
            settled = r;
          });
      }
      const started = Date.now();
      for (;;) {
        if (settled) return settled;
        if (clientGone()) return { kind: 'closed' };
        if (!runnersOf()) return { kind: 'closed' };
        // a runner that was replaced without failing the task (v1.0.71's runner reports its
        // own crash and exits 0): the task is still pending and goes to the next runner
        if (sup && node.worker.supervisors.get(localRid) !== sup) break;
        const all = node.allRunnerStatuses();
        // a remote runner's supervisor fails the task when it finds its runner dead
        const failedRemote = remote.map((r) => all[r]).find((st) => tagOf(st) === 'RunnerFailed');
        if (failedRemote) {
          const m = /^Terminated \((.*)\)$/s.exec(
            String(failedRemote.RunnerFailed.errorMessage || ''),
          );
          if (m)
            return {
              kind: 'error',
              message: `Runner shutdown before completing command (${m[1]})`,
            };
          break; // a runner's own failure report: no error chunk, the task waits for the next runner
        }
        // without a local runner, the generation ends when every remote process is alive for it
        if (
          !sup &&
          Date.now() - started >= CHAT_SECONDS() * 1000 &&
          remote.every((r) => node.runnerProcessAlive(r))
        )
          return { kind: 'done' };
        await sleep(CHAT_POLL_MS);
      }
    }
  }

  /** hypercorn: "Error in ASGI Framework" with the app's exception, then the connection closes. */
  dropResponse(res, excType, excValue, src) {
    emit(
      'ERROR',
      'Error in ASGI Framework',
      'hypercorn.error:exception:1',
      loguruTraceback(
        [
          ['hypercorn/protocol/http_stream.py', 'handle_request', 'await self.app_send('],
          ['starlette/responses.py', 'stream_response', 'async for chunk in self.body_iterator:'],
          ['exo/api/adapters/chat_completions.py', 'collect_chat_response', src],
        ],
        excType,
        excValue,
      ),
    );
    res.destroy();
  }

  dashboard() {
    const node = this.node;
    const esc = (s) =>
      String(s).replace(
        /[&<>"]/g,
        (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch],
      );
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>EXO</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;background:#111;color:#eee}code{color:#ffd94d}td,th{padding:.2rem .8rem;text-align:left}</style>
</head><body>
<h1>EXO</h1>
<p>exo stand-in ${esc(node.release.version)} (${esc(node.era)}) on <code>${esc(node.hostname)}</code>, node <code>${esc(node.nodeId)}</code>, namespace <code>${esc(node.namespace)}</code></p>
<h2>Cluster</h2><table id="nodes"><tr><th>node</th><th>name</th></tr></table>
<h2>Runners</h2><table id="runners"><tr><th>runner</th><th>status</th></tr></table>
<script>
async function refresh(){
  const s = await (await fetch('/state')).json();
  document.getElementById('nodes').innerHTML = '<tr><th>node</th><th>name</th></tr>' + s.topology.nodes.map(n => '<tr><td><code>'+n+'</code></td><td>'+((s.nodeIdentities[n]||{}).friendlyName||'')+'</td></tr>').join('');
  document.getElementById('runners').innerHTML = '<tr><th>runner</th><th>status</th></tr>' + Object.entries(s.runners).map(([r,v]) => '<tr><td><code>'+r+'</code></td><td>'+Object.keys(v)[0]+'</td></tr>').join('');
}
refresh(); setInterval(refresh, 2000);
</script>
</body></html>
`;
  }
}
