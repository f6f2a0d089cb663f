// smoke against two exo stand-ins on loopback that see each other: place, wait, chat, remove.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, freePort, startStandin, tempDir } from './helpers.js';

let nodes: { child: ResultPromise }[] = [];
let config: string;
let ports: number[];

beforeAll(async () => {
  ports = [await freePort(), await freePort()];
  nodes = await Promise.all(ports.map((port, i) => startStandin(port, ports.filter((p) => p !== port), `n${i + 1}`)));
  const dir = await tempDir('smoke');
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  config = path.join(dir, 'exo-deploy.toml');
  await writeFile(config, `[smoke]\ntimeout = "8s"\n${ports.map((p, i) => `[hosts.n${i + 1}]\ntarget = "local"\napi = "http://127.0.0.1:${p}"\n`).join('')}`);
  // both nodes see each other before the tests start
  const deadline = Date.now() + 20_000;
  for (;;) {
    const seen = await Promise.all(ports.map((p) => fetch(`http://127.0.0.1:${p}/state`).then((r) => r.json()).then((s: { topology: { nodes: unknown[] } }) => s.topology.nodes.length, () => 0)));
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
    expect(out).toMatchObject({ ok: true, model: 'mlx-community/Llama-3.2-1B-Instruct-4bit', nodes: 2, removed: true, chat: { ok: true, status: 200 } });
    const state = await (await fetch(`http://127.0.0.1:${ports[0]}/state`)).json() as { instances: Record<string, unknown> };
    expect(Object.keys(state.instances)).not.toContain(out.instanceId);
  });

  it('fails when the cluster is smaller than --min-nodes: no instance appears; exit 1', async () => {
    const r = await cli(['--config', config, 'smoke', '--min-nodes', '3']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('no instance of mlx-community/Llama-3.2-1B-Instruct-4bit appeared in /state within 8000 ms');
  });

  it('fails on a model exo cannot place', async () => {
    const r = await cli(['--config', config, 'smoke', '--model', 'nobody/no-such-model']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/POST \/place_instance: HTTP 500/);
  });
});
