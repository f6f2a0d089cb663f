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
  /** The parsed JSON body, when it parsed. */
  body?: unknown;
}

export function probe(
  api: string,
  path: string,
  timeoutMs: number,
  doFetch: Fetch = httpFetch,
): Promise<ProbeResult> {
  return inFlight(() => probeNow(api, path, timeoutMs, doFetch));
}

async function probeNow(
  api: string,
  path: string,
  timeoutMs: number,
  doFetch: Fetch,
): Promise<ProbeResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const response = await doFetch(`${api}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
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
    return {
      path,
      ok: !shapeError,
      status: response.status,
      latencyMs: latency(),
      body,
      ...(shapeError ? { error: shapeError } : {}),
    };
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } };
    const reason =
      e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
    return { path, ok: false, status: null, latencyMs: latency(), error: reason };
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
