// The HTTP client for exo's API: the part of fetch() the probes and the smoke test use, over
// node:http. Why not the global fetch: its first call loads undici and compiles its WASM
// parser, measured at ~0.3 s CPU and ~44 MB of memory per process; the module's health timer
// runs `check --local` every minute on every host (bench/: on-host cost).
import http from 'node:http';

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface HttpResponse {
  ok: boolean;
  status: number;
  text(): Promise<string>;
}

/** fetch's shape, narrowed to what exo-deploy calls: the global fetch fits it, and so do the
 * tests' and benchmarks' simulated fleets. */
export type Fetch = (url: string, init?: HttpRequest) => Promise<HttpResponse>;

/** Errors look like fetch's: a TimeoutError (AbortSignal.timeout's reason) or a TypeError whose
 * `cause.code` is the socket's (ECONNREFUSED, …), so callers read both the same way. */
export const httpFetch: Fetch = (url, init = {}) =>
  new Promise((resolve, reject) => {
    const { signal } = init;
    if (signal?.aborted) return reject(signal.reason);
    const request = http.request(url, { method: init.method ?? 'GET', headers: { ...init.headers, connection: 'close' }, signal }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', fail);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = response.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, status, text: async () => text });
      });
    });
    function fail(error: Error): void {
      reject(signal?.aborted ? signal.reason : Object.assign(new TypeError('fetch failed'), { cause: error }));
    }
    request.on('error', fail);
    request.end(init.body);
  });
