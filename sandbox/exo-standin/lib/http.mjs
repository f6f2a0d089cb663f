// HTTP helpers: exo's (FastAPI's) response and error shapes, request bodies, and the stand-in's
// own client for talking to peers.

import http from 'node:http';

export function splitAddr(addr) {
  const i = addr.lastIndexOf(':');
  let host = i > 0 ? addr.slice(0, i) : addr;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return [host, i > 0 ? Number(addr.slice(i + 1)) : 52415];
}

/** Starlette's CORSMiddleware as exo configures it (allow_origins=["*"], credentials). */
export function cors(req, res) {
  const origin = req.headers.origin;
  if (!origin) return;
  res.setHeader('access-control-allow-origin', req.headers.cookie ? origin : '*');
  res.setHeader('access-control-allow-credentials', 'true');
  if (req.headers.cookie) res.setHeader('vary', 'Origin');
}

export function send(res, status, body, type) {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'content-type': type, 'content-length': buf.length });
  res.end(buf);
}
export const sendJson = (res, status, obj) =>
  send(res, status, JSON.stringify(obj), 'application/json');
export const sendText500 = (res) =>
  send(res, 500, 'Internal Server Error', 'text/plain; charset=utf-8');

const PHRASES = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};
/** exo's HTTPException handler: {"error": {"message", "type", "param", "code"}}. */
export function sendError(res, status, message) {
  sendJson(res, status, {
    error: { message, type: PHRASES[status] || 'Error', param: null, code: status },
  });
}

export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 4 * 1024 * 1024) {
        req.destroy();
        reject(new Error('body too large'));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** FastAPI-style: a missing, invalid or non-object JSON body is a 422 with a "detail" list. */
export async function readJsonBody(req, res) {
  const text = await readBody(req);
  if (text.trim() === '') {
    sendJson(res, 422, {
      detail: [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }],
    });
    return undefined;
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      sendJson(res, 422, {
        detail: [
          {
            type: 'model_attributes_type',
            loc: ['body'],
            msg: 'Input should be a valid dictionary or object to extract fields from',
            input: v,
          },
        ],
      });
      return undefined;
    }
    return v;
  } catch (e) {
    sendJson(res, 422, {
      detail: [
        {
          type: 'json_invalid',
          loc: ['body', 0],
          msg: 'JSON decode error',
          input: {},
          ctx: { error: String(e.message) },
        },
      ],
    });
    return undefined;
  }
}

/** A small pydantic-like validation of a request body; { errors } or { value }. */
export function validate(body, schema) {
  const errors = [];
  const value = {};
  for (const [k, s] of Object.entries(schema)) {
    if (!Object.hasOwn(body, k)) {
      if (s.required)
        errors.push({ type: 'missing', loc: ['body', k], msg: 'Field required', input: body });
      else value[k] = s.def;
      continue;
    }
    const x = body[k];
    if (s.enum && !s.enum.includes(x)) {
      errors.push({
        type: 'enum',
        loc: ['body', k],
        msg: `Input should be ${s.enum.map((e) => `'${e}'`).join(' or ')}`,
        input: x,
        ctx: { expected: s.enum.map((e) => `'${e}'`).join(' or ') },
      });
    } else if (s.type === 'string' && typeof x !== 'string') {
      errors.push({
        type: 'string_type',
        loc: ['body', k],
        msg: 'Input should be a valid string',
        input: x,
      });
    } else if (
      s.type === 'int' &&
      !(Number.isInteger(x) || (typeof x === 'string' && /^-?\d+$/.test(x)))
    ) {
      errors.push({
        type: 'int_parsing',
        loc: ['body', k],
        msg: 'Input should be a valid integer, unable to parse string as an integer',
        input: x,
      });
    } else if (s.type === 'array' && !Array.isArray(x)) {
      errors.push({
        type: 'list_type',
        loc: ['body', k],
        msg: 'Input should be a valid list',
        input: x,
      });
    } else if (s.type === 'bool' && typeof x !== 'boolean') {
      errors.push({
        type: 'bool_type',
        loc: ['body', k],
        msg: 'Input should be a valid boolean',
        input: x,
      });
    } else {
      value[k] = s.type === 'int' ? Number(x) : x;
    }
  }
  return errors.length ? { errors } : { value };
}

/** The stand-in's client for peers' routes: resolves { status, json, text }. */
export function httpJson(method, host, port, urlPath, body, timeoutMs) {
  return new Promise((resolve, reject) => {
    const data = body == null ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host,
        port,
        path: urlPath,
        method,
        agent: false,
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode, json, text });
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error('timeout'));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (data) req.write(data);
    req.end();
  });
}
