// Harness for the exo stand-in tests: start real stand-in processes on 127.0.0.1 with free
// ports, talk to them over HTTP, and make sure every process started is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXO_MJS = path.resolve(HERE, '../../sandbox/exo-standin/exo.mjs');

export type Era = 'libp2p' | 'zenoh';

/** release.json as the stand-in reads it. */
export interface Release {
  version: string;
  era?: Era;
  package_version?: string;
  runner_load_seconds?: number;
  fault?: string;
  fault_on?: string[];
  model?: string | null;
}

/** A release of each era for tests that run in both. */
export const RELEASES: Record<Era, Release> = {
  libp2p: { version: '1.0.71', runner_load_seconds: 0.2 },
  zenoh: { version: '0.9.0', runner_load_seconds: 0.2 },
};

/** Short versions of exo's node time-out and of the stand-in's runner timings, for tests. */
export const FAST = {
  EXO_STANDIN_NODE_TIMEOUT: '2',
  EXO_STANDIN_NODE_TIMEOUT_CHECK: '0.5',
  EXO_STANDIN_WATCHDOG_INTERVAL: '0.5',
  EXO_STANDIN_BACKOFF_SCALE: '0.1',
};

export interface StandIn {
  name: string;
  port: number;
  addr: string;
  proc: ChildProcess;
  /** everything written to stderr so far */
  stderr: () => string;
  /** stderr without ANSI colour sequences */
  log: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];
const extraPids: number[] = [];
const tmpDirs: string[] = [];

/** Also kill this PID (a process a stand-in detached) when the test ends. */
export function killLater(pid: number): void {
  extraPids.push(pid);
}

/** Kill (SIGKILL, by PID) every process this harness started and remove its temp dirs. */
export function killAll(): void {
  while (started.length) {
    const p = started.pop()!;
    if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  while (extraPids.length) {
    try {
      process.kill(extraPids.pop()!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  while (tmpDirs.length) fs.rmSync(tmpDirs.pop()!, { recursive: true, force: true });
}

function stripAnsi(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes are what it removes
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

/** n distinct free TCP ports on 127.0.0.1 (held open together so they differ). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve());
    });
    servers.push(s);
    ports.push((s.address() as net.AddressInfo).port);
  }
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function writeRelease(release: Release): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exo-standin-test-'));
  tmpDirs.push(dir);
  const file = path.join(dir, 'release.json');
  fs.writeFileSync(file, JSON.stringify({ fault: 'none', fault_on: [], ...release }));
  return file;
}

export interface StartOptions {
  name: string;
  port: number;
  release: Release | string; // settings, or a path to a release file
  peers?: number[];
  args?: string[];
  env?: Record<string, string>;
}

export function start(o: StartOptions): StandIn {
  const releaseFile = typeof o.release === 'string' ? o.release : writeRelease(o.release);
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    EXO_STANDIN_RELEASE: releaseFile,
    EXO_STANDIN_HOSTNAME: o.name,
    EXO_STANDIN_BIND: '127.0.0.1',
    EXO_STANDIN_PEERS: (o.peers ?? []).map((p) => `127.0.0.1:${p}`).join(','),
    ...o.env,
  };
  for (const k of [
    'EXO_LIBP2P_NAMESPACE',
    'EXO_ZENOH_NAMESPACE',
    'EXO_BOOTSTRAP_PEERS',
    'EXO_OFFLINE',
    'EXO_STANDIN_FAULT',
    'COLUMNS',
  ]) {
    if (!o.env || !(k in o.env)) delete env[k];
  }
  const proc = spawn(process.execPath, [EXO_MJS, '--api-port', String(o.port), ...(o.args ?? [])], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc);
  let err = '';
  let out = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    name: o.name,
    port: o.port,
    addr: `127.0.0.1:${o.port}`,
    proc,
    stderr: () => err,
    log: () => stripAnsi(err),
    stdout: () => out,
    exited,
  };
}

/** Run the stand-in to completion (for flag errors and crashes). */
export async function runToExit(
  args: string[],
  release: Release = RELEASES.zenoh,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [port] = await freePorts(1);
  const s = start({
    name: 'once',
    port: port!,
    release,
    args,
    env: { EXO_STANDIN_COLOR: '0', ...env },
  });
  const r = await withTimeout(s.exited, 10_000, 'stand-in did not exit');
  // let the pipes drain
  await new Promise((res) => setTimeout(res, 50));
  return { code: r.code, stdout: s.stdout(), stderr: s.stderr() };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

export function request(
  port: number,
  method: string,
  urlPath: string,
  body?: unknown,
  timeoutMs = 3000,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const data =
      body === undefined
        ? undefined
        : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: urlPath,
        agent: false,
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${urlPath}`)),
      timeoutMs,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (data) req.write(data);
    req.end();
  });
}

export const get = (port: number, p: string) => request(port, 'GET', p);

/** How a streamed answer went: its status and headers as they came, its body, and whether it ended cleanly. */
export interface StreamedResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** true: the body ended properly; false: the connection was dropped mid-answer */
  complete: boolean;
}

/** POST and follow the answer to its end, also when the server drops the connection. */
export function post(
  port: number,
  urlPath: string,
  body: unknown,
  timeoutMs = 20_000,
  onHeaders?: () => void,
): Promise<StreamedResult> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: urlPath,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': data.length },
      },
      (res) => {
        onHeaders?.();
        let text = '';
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            complete: res.complete,
          });
        };
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', finish);
        res.on('error', finish);
        res.on('close', finish);
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`timeout after ${timeoutMs} ms: POST ${urlPath}`)),
      timeoutMs,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(data);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(what)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Poll `fn` until it returns a truthy value (errors count as "not yet"), within a deadline. */
export async function until<T>(
  what: string,
  fn: () => Promise<T> | T,
  deadlineMs = 10_000,
  everyMs = 100,
): Promise<NonNullable<T>> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      if ((e as { fatal?: boolean }).fatal) throw e;
      last = e;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Wait until the node answers /node_id; returns its id. */
export async function ready(s: StandIn, deadlineMs = 10_000): Promise<string> {
  const r = await until(
    `${s.name} to answer /node_id`,
    async () => {
      if (s.proc.exitCode !== null)
        throw Object.assign(new Error(`${s.name} exited ${s.proc.exitCode}: ${s.log()}`), {
          fatal: true,
        });
      const res = await get(s.port, '/node_id');
      return res.status === 200 ? res : null;
    },
    deadlineMs,
  );
  return r!.json as string;
}

export async function topologyNodes(s: StandIn): Promise<string[]> {
  const r = await get(s.port, '/state/topology/nodes');
  return r.json as string[];
}

/** Wait until every node's /state.topology.nodes is exactly the expected set. */
export async function untilSees(
  s: StandIn,
  expected: string[],
  deadlineMs = 10_000,
): Promise<void> {
  const want = [...expected].sort().join(',');
  await until(
    `${s.name} to see ${want}`,
    async () => (await topologyNodes(s)).sort().join(',') === want,
    deadlineMs,
  );
}

/** The runner statuses in a node's /state, as tags: { runnerId: 'RunnerReady', … }. */
export async function runnerTags(s: StandIn): Promise<Record<string, string>> {
  const r = (await get(s.port, '/state/runners')).json as Record<string, Record<string, unknown>>;
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Object.keys(v)[0]!]));
}

/** Wait until every runner in the node's state is ready (and there is at least one). */
export async function untilRunnersReady(s: StandIn, count = 1, deadlineMs = 10_000): Promise<void> {
  await until(
    `${s.name}: ${count} runner(s) ready`,
    async () => {
      const tags = Object.values(await runnerTags(s));
      return tags.length === count && tags.every((t) => t === 'RunnerReady');
    },
    deadlineMs,
  );
}
