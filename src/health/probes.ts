// HTTP probes of exo's API. exo has no /health: /node_id, /models and /state are what it
// answers when it is up.
import pLimit from 'p-limit';
import { httpFetch, type Fetch } from './http.js';

/** Probes in flight at once in this process: a fleet's checks fan out to every host, and
 * 1,000 hosts × 3 probes at once would be 3,000 sockets (past a default limit of 1,024 open
 * files) and every /state body in memory together. A probe's clock and timeout start when
 * it is sent, not while it waits for its turn. */
const PROBES_AT_ONCE = 96;
const inFlight = pLimit(PROBES_AT_ONCE);

export interface ProbeResult {
  path: string;
  ok: boolean;
  status: number | null;
  latencyMs: number;
  error?: string;
  /** The parsed JSON body, when it parsed (what `keep` kept of it, when given). */
  body?: unknown;
}

/** What a probe keeps of a parsed body (shapeOk: the body has the path's shape), called as
 * soon as it parses; undefined keeps nothing. A /state lists the whole cluster, and JSON.parse
 * makes a new string of each 32-hex node id: read at once, they die young. Held until the
 * probe's promise resolves, they are reachable from older promises, outlive the young
 * generation and pile up in the old one (the benchmark's 1,000-host deploy: ~50 kB per /state,
 * ~220 MB at its peak instead of ~190). */
export type KeepBody = (body: unknown, shapeOk: boolean) => unknown;

export function probe(
  api: string,
  path: string,
  timeoutMs: number,
  doFetch: Fetch = httpFetch,
  keep?: KeepBody,
): Promise<ProbeResult> {
  return inFlight(() => probeNow(api, path, timeoutMs, doFetch, keep));
}

async function probeNow(
  api: string,
  path: string,
  timeoutMs: number,
  doFetch: Fetch,
  keep: KeepBody | undefined,
): Promise<ProbeResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  // AbortSignal.timeout's, but its timer is cleared with the answer: a fleet's checks send
  // thousands of probes, and each timer would otherwise hold its signal for the whole timeout.
  const timeout = new AbortController();
  const timer = setTimeout(
    () =>
      timeout.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    timeoutMs,
  );
  timer.unref();
  try {
    const response = await doFetch(`${api}${path}`, { signal: timeout.signal });
    const text = await response.text();
    const body = parseJson(text);
    if (!response.ok)
      return {
        path,
        ok: false,
        status: response.status,
        latencyMs: latency(),
        error: `HTTP ${response.status}`,
      };
    if (body === undefined)
      return {
        path,
        ok: false,
        status: response.status,
        latencyMs: latency(),
        error: 'the answer is not JSON',
      };
    const shapeError = checkShape(path, body);
    const latencyMs = latency();
    const kept = keep ? keep(body, !shapeError) : body;
    return {
      path,
      ok: !shapeError,
      status: response.status,
      latencyMs,
      ...(kept !== undefined ? { body: kept } : {}),
      ...(shapeError ? { error: shapeError } : {}),
    };
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } };
    const reason =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    return { path, ok: false, status: null, latencyMs: latency(), error: reason };
  } finally {
    clearTimeout(timer);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** exo's shapes: /node_id is a bare JSON string, /state an object with a topology. */
function checkShape(path: string, body: unknown): string | undefined {
  if (path === '/node_id' && (typeof body !== 'string' || body.length === 0))
    return '/node_id is not a node id string';
  if (path === '/state' && (typeof body !== 'object' || body === null || !('topology' in body)))
    return '/state has no topology';
  return undefined;
}
