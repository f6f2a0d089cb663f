// The HTTP client the probes and the smoke test use (node:http, not the global fetch), against
// a real server on loopback: answers, errors and timeouts read as fetch's would.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUT_SHORT, httpFetch } from '../../src/health/http.js';
import { probe } from '../../src/health/probes.js';

let server: http.Server;
let base: string;
const seen: { method?: string; type?: string; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, type: req.headers['content-type'], body });
      if (req.url === '/node_id') return res.end('"abc"');
      if (req.url === '/broken') return res.writeHead(500).end('{"detail":"boom"}');
      if (req.url === '/echo') return res.end(JSON.stringify({ got: JSON.parse(body) }));
      if (req.url === '/cut') {
        // exo's chat answer when the runner dies: 200 and a chunked body, then the connection drops
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.write('{"id":"chatcmpl-1","choices":[');
        return setTimeout(() => res.socket?.destroy(), 20);
      }
      if (req.url === '/endless') {
        // an answer without end: chunks until the client goes
        res.writeHead(200, { 'transfer-encoding': 'chunked' });
        const chunk = Buffer.alloc(1024 ** 2, 120);
        const more = () => {
          if (!res.destroyed && res.write(chunk)) setImmediate(more);
          else if (!res.destroyed) res.once('drain', more);
        };
        res.on('close', () => res.destroy());
        return more();
      }
      // /slow: never answers
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('httpFetch', () => {
  it('an answer larger than it takes fails to read, and the connection is closed', async () => {
    const r = await httpFetch(`${base}/endless`);
    expect(r.status).toBe(200);
    await expect(r.text()).rejects.toMatchObject({ cause: { code: 'E2BIG' } });
  });

  it('returns the status and the body', async () => {
    const r = await httpFetch(`${base}/node_id`);
    expect([r.ok, r.status, await r.text()]).toEqual([true, 200, '"abc"']);
  });

  it('sends a method, headers and a body', async () => {
    const r = await httpFetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(JSON.parse(await r.text())).toEqual({ got: { a: 1 } });
    expect(seen.at(-1)).toEqual({ method: 'POST', type: 'application/json', body: '{"a":1}' });
  });

  it('reports a 5xx as not ok', async () => {
    const r = await httpFetch(`${base}/broken`);
    expect([r.ok, r.status]).toEqual([false, 500]);
  });

  it('fails like fetch: the socket error as cause.code, a TimeoutError on timeout', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(httpFetch(`http://127.0.0.1:${port}/node_id`)).rejects.toMatchObject({
      name: 'TypeError',
      cause: { code: 'ECONNREFUSED' },
    });
    await expect(
      httpFetch(`${base}/slow`, { signal: AbortSignal.timeout(200) }),
    ).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  it('an answer whose connection drops after its status: the status, then a body that fails to read', async () => {
    const r = await httpFetch(`${base}/cut`, { method: 'POST', body: '{}' });
    expect([r.ok, r.status]).toEqual([true, 200]);
    await expect(r.text()).rejects.toMatchObject({
      name: 'TypeError',
      cause: { message: CUT_SHORT },
    });
    expect(await probe(base, '/cut', 1000)).toMatchObject({
      ok: false,
      status: null,
      error: 'ECONNRESET',
    });
  });

  it('gives the probes what they read: ok, HTTP status, no answer in time', async () => {
    const [ok, broken, slow] = await Promise.all([
      probe(base, '/node_id', 1000),
      probe(base, '/broken', 1000),
      probe(base, '/slow', 200),
    ]);
    expect(ok).toMatchObject({ ok: true, status: 200, body: 'abc' });
    expect(broken).toMatchObject({ ok: false, status: 500, error: 'HTTP 500' });
    expect(slow).toMatchObject({ ok: false, status: null, error: 'no answer within 200 ms' });
  });
});
