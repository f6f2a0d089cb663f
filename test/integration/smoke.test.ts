// smoke against two exo stand-ins on loopback that see each other: place, wait, chat, remove.
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, freePort, startStandin, tempDir } from './helpers.js';

let nodes: { child: ResultPromise }[] = [];
let config: string;
let ports: number[];

beforeAll(async () => {
  ports = [await freePort(), await freePort()];
  nodes = await Promise.all(
    ports.map((port, i) =>
      startStandin(
        port,
        ports.filter((p) => p !== port),
        `n${i + 1}`,
      ),
    ),
  );
  const dir = await tempDir('smoke');
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  config = path.join(dir, 'exo-deploy.toml');
  await writeFile(
    config,
    `[smoke]\ntimeout = "8s"\n${ports.map((p, i) => `[hosts.n${i + 1}]\ntarget = "local"\napi = "http://127.0.0.1:${p}"\n`).join('')}`,
  );
  // both nodes see each other before the tests start
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = await Promise.all(
      ports.map((p) =>
        fetch(`http://127.0.0.1:${p}/state`)
          .then((r) => r.json())
          .then(
            (s: { topology: { nodes: unknown[] } }) => s.topology.nodes.length,
            () => 0,
          ),
      ),
    );
    if (seen.every((n) => n === 2)) break;
    if (Date.now() > deadline) throw new Error(`the stand-ins do not see each other: ${seen}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(() => {
  for (const n of nodes) n.child.kill('SIGKILL');
});

describe('smoke', () => {
  it('places an instance across both nodes, chats, removes it; exit 0', async () => {
    const r = await cli(['--config', config, 'smoke', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      ok: true,
      model: 'mlx-community/Llama-3.2-1B-Instruct-4bit',
      nodes: 2,
      removed: true,
      chat: { ok: true, status: 200 },
    });
    expect(Object.values(out.runners)).toEqual(['RunnerReady', 'RunnerReady']);
    expect(out.readyAfterMs).toBeGreaterThanOrEqual(out.placedAfterMs);
    const state = (await (await fetch(`http://127.0.0.1:${ports[0]}/state`)).json()) as {
      instances: Record<string, unknown>;
    };
    expect(Object.keys(state.instances)).not.toContain(out.instanceId);
  });

  it('fails when the cluster is smaller than --min-nodes: no instance appears; exit 1', async () => {
    const r = await cli(['--config', config, 'smoke', '--min-nodes', '3']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(
      'no instance of mlx-community/Llama-3.2-1B-Instruct-4bit appeared in /state within 8000 ms',
    );
  });

  it('fails on a model exo cannot place', async () => {
    const r = await cli(['--config', config, 'smoke', '--model', 'nobody/no-such-model']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/POST \/place_instance: HTTP 500/);
  });
});

// An exo API on loopback whose runners load for a few reads of /state, and whose chat answer
// is cut short after its 200, as real exo's is when a runner dies while answering.
describe('smoke against runners that take their time and a chat cut short', () => {
  let server: http.Server;
  let dir: string;
  const seen: string[] = [];

  // the first reads still list n0, the id of a process a deploy replaced, as exo does for ~40 s
  let staleReads = 3;
  let placedWhileStale: boolean | null = null;

  beforeAll(async () => {
    let reads = 0;
    let placed = false;
    const statuses = ['RunnerConnecting', 'RunnerLoading', 'RunnerWarmingUp', 'RunnerReady'];
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const json = (body: unknown) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      req.resume();
      req.on('end', () => {
        if (req.url === '/state') {
          if (placed) reads += 1;
          const status = statuses[Math.min(reads, statuses.length) - 1];
          if (!placed && staleReads > 0) staleReads -= 1;
          return json({
            topology: { nodes: staleReads > 0 ? ['n0', 'n1'] : ['n1'] },
            instances: placed
              ? {
                  i1: {
                    MlxRingInstance: {
                      instanceId: 'i1',
                      shardAssignments: { modelId: 'm/tiny', nodeToRunner: { n1: 'r1' } },
                    },
                  },
                }
              : {},
            runners: placed && status ? { r1: { [status]: {} } } : {},
          });
        }
        if (req.url === '/node_id') return json('n1');
        if (req.url === '/place_instance') {
          placedWhileStale ??= staleReads > 0;
          placed = true;
          return json({ message: 'Command received.', command_id: 'c1' });
        }
        if (req.url === '/instance/i1' && req.method === 'DELETE') {
          placed = false;
          return json({ message: 'Command received.', instance_id: 'i1' });
        }
        if (req.url === '/v1/chat/completions') {
          res.writeHead(200, {
            'content-type': 'application/json',
            'transfer-encoding': 'chunked',
          });
          res.write('{"id":"chatcmpl-1",');
          return setTimeout(() => res.socket?.destroy(), 20);
        }
        res.writeHead(404).end('{"detail":"Not Found"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    dir = await tempDir('smoke-cut');
    await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
    await writeFile(
      path.join(dir, 'exo-deploy.toml'),
      `[smoke]\nmodel = "m/tiny"\ntimeout = "5s"\n[hosts.n1]\ntarget = "local"\napi = "http://127.0.0.1:${(server.address() as AddressInfo).port}"\n`,
    );
  });

  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('waits for the stale id to leave the topology and for RunnerReady, reports the cut answer as a failed chat, removes the instance; exit 1', async () => {
    const r = await cli(['smoke', '--json', '--ready-timeout', '20s'], { cwd: dir });
    expect(r.exitCode, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      ok: false,
      instanceId: 'i1',
      nodes: 1,
      removed: true,
      runners: { r1: 'RunnerReady' },
      chat: { ok: false, status: 200, reply: null },
    });
    expect(out.readyAfterMs).toBeGreaterThanOrEqual(out.placedAfterMs);
    expect(out.problems).toEqual([
      expect.stringMatching(
        /^POST \/v1\/chat\/completions: HTTP 200, then the connection closed before the whole answer arrived/,
      ),
    ]);
    expect(placedWhileStale).toBe(false);
    expect(out.settledAfterMs).toEqual(expect.any(Number));
    const order = seen.filter((c) => c !== 'GET /state' && c !== 'GET /node_id');
    expect(order).toEqual([
      'POST /place_instance',
      'POST /v1/chat/completions',
      'DELETE /instance/i1',
    ]);
    expect(seen.filter((c) => c === 'GET /state').length).toBeGreaterThanOrEqual(5);

    const text = await cli(['smoke', '--ready-timeout', '20s'], { cwd: dir });
    expect(text.stdout).toMatch(
      /instance i1 on 1 node\(s\), placed after \d+ ms, runners ready after \d+ ms/,
    );
    expect(text.stdout).toContain('removed: yes, instance i1 is gone');
  });
});
