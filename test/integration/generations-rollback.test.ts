// generations and rollback against a real Nix profile in a temporary folder, holding real
// store paths that carry etc/exo/release.json; exo's API is the stand-in on loopback.
import { readlink } from 'node:fs/promises';
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeSystem, cli, freePort, startStandin, tempDir } from './helpers.js';

let dir: string;
let config: string;
let profile: string;
let current: string;
let systems: string[];
let standin: { child: ResultPromise } | undefined;

const generationsOf = async () =>
  (await execa('nix-env', ['-p', profile, '--list-generations'])).stdout;

beforeAll(async () => {
  dir = await tempDir('generations');
  profile = path.join(dir, 'profiles', 'system');
  current = path.join(dir, 'current-system');
  systems = [];
  await mkdir(path.dirname(profile), { recursive: true });
  // 1.0.3 is a build of exo's own flake: no version, named by its revision (release.json schema 2)
  const releases: Record<string, object | undefined> = {
    '1.0.3': {
      schemaVersion: 2,
      exo: {
        version: '',
        identity: 'b5375f8ce0a1',
        revision: 'b5375f8ce0a1b2c3d4e5f60718293a4b5c6d7e8f',
        package: '/nix/store/x-exo',
        era: 'zenoh',
      },
      namespace: 'lab',
      ports: { api: 52415, libp2p: null, zenoh: 52414, discovery: 52413 },
      stateDir: '/var/lib/exo',
    },
  };
  for (const version of ['1.0.1', '1.0.2', '1.0.3']) {
    const system = await buildFakeSystem(dir, version, current, releases[version]);
    systems.push(system);
    await execa('nix-env', ['-p', profile, '--set', system]);
  }
  await execa('ln', ['-sfn', systems[2] as string, current]);
  const port = await freePort();
  standin = await startStandin(port);
  config = path.join(dir, 'exo-deploy.toml');
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  await writeFile(
    config,
    `[health]\nready_timeout = "10s"\ncluster_size = 1\n[hosts.box]\ntarget = "local"\napi = "http://127.0.0.1:${port}"\nsystem_profile = "${profile}"\ncurrent_system = "${current}"\n`,
  );
});

afterAll(async () => {
  standin?.child.kill('SIGKILL');
});

describe('generations', () => {
  it('lists generations newest first with the exo in each (its version, else its identity) and the current one marked', async () => {
    const r = await cli(['--config', config, 'generations', '--json']);
    expect(r.exitCode).toBe(0);
    const { hosts } = JSON.parse(r.stdout);
    expect(
      hosts[0].generations.map(
        (g: { number: number; exo: string; current: boolean; running: boolean; path: string }) => [
          g.number,
          g.exo,
          g.current,
          g.running,
          g.path,
        ],
      ),
    ).toEqual([
      [3, 'b5375f8ce0a1', true, true, systems[2]],
      [2, '1.0.2', false, false, systems[1]],
      [1, '1.0.1', false, false, systems[0]],
    ]);
    const text = await cli(['generations'], { cwd: dir });
    expect(text.stdout).toMatch(
      /^box:\nGEN\s+DATE\s+STATE\s+EXO\s+SYSTEM\n3\s+\S+ \S+\s+current,running\s+b5375f8ce0a1\s/m,
    );
  });
});

describe('rollback', () => {
  it('refuses a generation that does not exist, says which exist, and changes nothing', async () => {
    const before = await generationsOf();
    const r = await cli(['--config', config, 'rollback', '--to', '9']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('box: there is no generation 9');
    expect(r.stderr).toContain('generations on box: 1, 2, 3');
    expect(await generationsOf()).toBe(before);
    expect(await readlink(current)).toBe(systems[2]);
  });

  it('activates the previous generation, then checks the host', async () => {
    const r = await cli(['--config', config, 'rollback', '--json']);
    const out = JSON.parse(r.stdout);
    expect(out.hosts[0]).toMatchObject({ host: 'box', from: 3, to: 2, systemPath: systems[1] });
    expect(out.hosts[0].activation.output).toContain(`activating ${systems[1]} (switch)`);
    expect(await readlink(current)).toBe(systems[1]);
    expect(await generationsOf()).toMatch(/^\s+2\s+\S+ \S+\s+\(current\)$/m);
    // The check ran against the stand-in's API; this machine has no systemd, so it is unhealthy.
    const check = out.hosts[0].check;
    expect(check.probes.every((p: { ok: boolean }) => p.ok)).toBe(true);
    expect(check.problems.join('\n')).toMatch(/systemctl show exo.service` failed/);
    expect(r.exitCode).toBe(1);
  });

  it('activates generation N with --to', async () => {
    const r = await cli(['--config', config, 'rollback', '--to', '1']);
    expect(r.stdout).toContain('box: generation 2 → 1');
    expect(await readlink(current)).toBe(systems[0]);
    expect(await generationsOf()).toMatch(/^\s+1\s+\S+ \S+\s+\(current\)$/m);
  });
});
