// What the module's health timer runs on a host: check --local, writing a status file and a
// Prometheus textfile, against an exo that answers (the stand-in on loopback).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, freePort, startStandin, tempDir } from './helpers.js';

let exo: { child: ResultPromise };
let port: number;

beforeAll(async () => {
  port = await freePort();
  exo = await startStandin(port);
});
afterAll(() => exo.child.kill('SIGKILL'));

describe('check --local', () => {
  it('probes exo and writes the status file and the textfile, whole', async () => {
    const dir = await tempDir('check-local');
    const status = path.join(dir, 'run', 'health.json');
    const textfile = path.join(dir, 'textfile', 'exo.prom');
    const r = await cli([
      'check',
      '--local',
      '--api',
      `http://127.0.0.1:${port}`,
      '--state-dir',
      dir,
      '--since',
      '2m',
      '--status-file',
      status,
      '--textfile',
      textfile,
    ]);
    // this machine has no systemd as PID 1: the unit part fails, the API part answers
    expect(r.exitCode).toBe(1);
    const written = JSON.parse(await readFile(status, 'utf8'));
    expect(written.healthy).toBe(false);
    expect(
      written.checks[0].probes.map((p: { path: string; ok: boolean }) => [p.path, p.ok]),
    ).toEqual([
      ['/node_id', true],
      ['/models', true],
      ['/state', true],
    ]);
    expect(written.checks[0].cluster.seen).toBe(1);
    const prom = await readFile(textfile, 'utf8');
    expect(prom).toContain('# TYPE exo_deploy_healthy gauge');
    expect(prom).toMatch(/^exo_deploy_healthy\{host="local"\} 0$/m);
    expect(prom).toMatch(/^exo_deploy_probe_up\{host="local",path="\/models"\} 1$/m);
    expect(prom).toMatch(/^exo_deploy_cluster_nodes_seen\{host="local"\} 1$/m);
  });

  it('refuses flags of --local without it, with exit 2', async () => {
    const dir = await tempDir('check-flags');
    await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
    await writeFile(path.join(dir, 'exo-deploy.toml'), '[hosts.a]\ntarget = "local"\n');
    const r = await cli(['check', '--api', 'http://127.0.0.1:1'], { cwd: dir });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--dir, --api, --unit and --state-dir go with --local');
  });
});
