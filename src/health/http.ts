// The HTTP client for exo's API: the part of fetch() the probes and the smoke test use, over
// node:http. Why not the global fetch: its first call loads undici and compiles its WASM
// parser, measured at ~0.3 s CPU and ~44 MB of memory per process; the module's health timer
// runs `check --local` every minute on every host (bench/: on-host cost).
import http from 'node:http';

interface HttpRequest {
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
 * `cause.code` is the socket's (ECONNREFUSED, …), so callers read both the same way. As with
 * fetch, the answer resolves once its status and headers arrive, and text() fails when the
 * connection drops before the whole body: exo sends a chat answer's 200 first, and drops the
 * connection when the runner dies while answering. */
export const httpFetch: Fetch = (url, init = {}) =>
  new Promise((resolve, reject) => {
    const { signal } = init;
    if (signal?.aborted) return reject(signal.reason);
    const failure = (error: Error) =>
      signal?.aborted
        ? signal.reason
        : Object.assign(new TypeError('fetch failed'), { cause: error });
    const request = http.request(
      url,
      { method: init.method ?? 'GET', headers: { ...init.headers, connection: 'close' }, signal },
      (response) => {
        const status = response.statusCode ?? 0;
        const body = new Promise<string>((resolveBody, rejectBody) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            // a node that answers without end must not take this process's memory with it
            if (size > MAX_BODY_BYTES) {
              rejectBody(
                failure(
                  Object.assign(
                    new Error(`the answer is larger than ${MAX_BODY_BYTES / 1024 ** 2} MiB`),
                    { code: 'E2BIG' },
                  ),
                ),
              );
              response.destroy();
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
          // Node reports the drop as an 'error' ("aborted") or only as a 'close' before the end.
          const cutShort = (error?: Error) =>
            rejectBody(
              failure(
                Object.assign(new Error(CUT_SHORT, { cause: error }), {
                  code: (error as NodeJS.ErrnoException | undefined)?.code ?? 'ECONNRESET',
                }),
              ),
            );
          response.on('error', cutShort);
          response.on('close', () => {
            if (!response.complete) cutShort();
          });
        });
        // A caller that never reads the body must not leave an unhandled rejection behind.
        body.catch(() => {});
        resolve({ ok: status >= 200 && status < 300, status, text: () => body });
      },
    );
    request.on('error', (error) => reject(failure(error)));
    request.end(init.body);
  });

export const CUT_SHORT = 'the connection closed before the whole answer arrived';

/** Far above what exo's API answers (a /state of a large cluster is a few MiB). */
const MAX_BODY_BYTES = 64 * 1024 ** 2;
