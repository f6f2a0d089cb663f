// backup create/list/prune/restore on this machine (target "local") into a temporary folder,
// with a real store path as the running system and a real GC root; and an interrupted create.
import { mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeSystem, cli, tempDir } from './helpers.js';

const GC_ROOTS = '/nix/var/nix/gcroots/exo-deploy-backups';
let dir: string;
let config: string;
let backups: string;
let state: string;
let system: string;
const created: string[] = [];

beforeAll(async () => {
  dir = await tempDir('backup');
  backups = path.join(dir, 'backups');
  state = path.join(dir, 'state');
  const current = path.join(dir, 'current-system');
  system = await buildFakeSystem(dir, '1.0.7', current);
  await execa('ln', ['-sfn', system, current]);
  await execa('nix-env', ['-p', path.join(dir, 'profile'), '--set', system]);
  await mkdir(path.join(state, 'custom_model_cards'), { recursive: true });
  await mkdir(path.join(state, 'models', 'big-model'), { recursive: true });
  await writeFile(path.join(state, 'config.toml'), 'offline = true\n');
  await writeFile(path.join(state, 'custom_model_cards', 'mine.toml'), 'model_id = "mine"\n');
  await writeFile(
    path.join(state, 'models', 'big-model', 'weights.safetensors'),
    'not really weights',
  );
  await mkdir(path.join(state, '.cache', 'huggingface'), { recursive: true });
  await writeFile(
    path.join(state, '.cache', 'huggingface', 'token'),
    'hf_NotARealTokenButSecretAnyway',
  );
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  await writeFile(
    path.join(dir, 'flake.lock'),
    '{"nodes":{"root":{}},"root":"root","version":7}\n',
  );
  config = path.join(dir, 'exo-deploy.toml');
  await writeFile(
    config,
    `[backup]\ndir = "${backups}"\nkeep = 2\n[health]\ntimeout = "200ms"\n[hosts.box]\ntarget = "local"\napi = "http://127.0.0.1:9"\nexo_state_dir = "${state}"\nsystem_profile = "${path.join(dir, 'profile')}"\ncurrent_system = "${current}"\n`,
  );
});

afterAll(async () => {
  await Promise.all(created.map((id) => rm(path.join(GC_ROOTS, id), { force: true })));
});

const create = async () => {
  const r = await cli(['--config', config, 'backup', 'create', '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  const meta = JSON.parse(r.stdout).backups[0];
  created.push(meta.id);
  return meta;
};

describe('backup', () => {
  it('create records the running system, pins it, copies flake.lock, archives state without models', async () => {
    const meta = await create();
    expect(meta).toMatchObject({
      host: 'box',
      systemPath: system,
      generation: 1,
      exo: '1.0.7',
      healthy: false,
      models: false,
    });
    const folder = path.join(backups, meta.id);
    expect((await readdir(folder)).sort()).toEqual([
      'backup.json',
      'flake.lock',
      'manifest.sha256',
      'state.tar.gz',
      'system',
    ]);
    await execa('sha256sum', ['--check', '--strict', 'manifest.sha256'], { cwd: folder });
    const archived = (await execa('tar', ['-tzf', path.join(folder, 'state.tar.gz')])).stdout.split(
      '\n',
    );
    expect(archived).toEqual(
      expect.arrayContaining(['./config.toml', './custom_model_cards/mine.toml']),
    );
    expect(archived.some((f) => f.includes('models/'))).toBe(false);
    // Hugging Face's token and cache stay out; the folder is its owner's alone
    expect(archived.some((f) => f.includes('.cache'))).toBe(false);
    expect((await stat(folder)).mode & 0o777).toBe(0o700);
    expect(await readlink(path.join(GC_ROOTS, meta.id))).toBe(system);
    const roots = (await execa('nix-store', ['--gc', '--print-roots'])).stdout;
    expect(roots).toContain(`${GC_ROOTS}/${meta.id} -> ${system}`);
  });

  it('list shows backups newest first; prune keeps `keep`', async () => {
    await create();
    await create();
    const listed = JSON.parse((await cli(['--config', config, 'backup', 'list', '--json'])).stdout)
      .hosts[0];
    expect(listed.backups.map((b: { id: string }) => b.id)).toEqual([...created].reverse());
    const pruned = await cli(['--config', config, 'backup', 'prune', '--json']);
    expect(JSON.parse(pruned.stdout).hosts[0].removed).toEqual([created[0]]);
    expect((await readdir(backups)).sort()).toEqual(created.slice(1).sort());
    await expect(readlink(path.join(GC_ROOTS, created[0] as string))).rejects.toThrow();
  });

  it('a backup is its folder: an id in backup.json that names another path is not used', async () => {
    const id = created[created.length - 1] as string;
    const file = path.join(backups, id, 'backup.json');
    const meta = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...meta, id: '../../outside' }));
    try {
      const listed = JSON.parse(
        (await cli(['--config', config, 'backup', 'list', '--json'])).stdout,
      ).hosts[0];
      expect(listed.backups.map((b: { id: string }) => b.id)).toContain(id);
      expect(listed.backups.map((b: { id: string }) => b.id)).not.toContain('../../outside');
    } finally {
      await writeFile(file, `${JSON.stringify(meta, null, 2)}\n`);
    }
  });

  it('an interrupted create never shows as a backup, and list says it is there', async () => {
    // Enough state that tar is still running when the run is killed.
    await execa('dd', [
      'if=/dev/urandom',
      `of=${path.join(state, 'custom_model_cards', 'large.bin')}`,
      'bs=1M',
      'count=300',
      'status=none',
    ]);
    const run = execa(
      'node',
      [
        path.resolve(import.meta.dirname, '../../dist/cli/cli.js'),
        '--config',
        config,
        'backup',
        'create',
      ],
      { detached: true, reject: false },
    );
    const deadline = Date.now() + 30_000;
    while (
      !(await readdir(backups)).some((n) => n.startsWith('.partial-')) &&
      Date.now() < deadline
    )
      await new Promise((r) => setTimeout(r, 20));
    process.kill(-(run.pid as number), 'SIGKILL');
    await run;
    await rm(path.join(state, 'custom_model_cards', 'large.bin'));
    const listed = JSON.parse((await cli(['--config', config, 'backup', 'list', '--json'])).stdout)
      .hosts[0];
    expect(listed.backups.map((b: { id: string }) => b.id)).toEqual(created.slice(1).reverse());
    expect(listed.partial).toHaveLength(1);
    const partialId = (listed.partial[0] as string).replace('.partial-', '');
    created.push(partialId);
    const restore = await cli(['--config', config, 'backup', 'restore', partialId]);
    expect(restore.exitCode).toBe(2);
    expect(restore.stderr).toContain(`there is no backup ${partialId}`);
  });

  it('restore verifies the manifest first and refuses a damaged backup, changing nothing', async () => {
    const id = created[created.length - 2] as string;
    await writeFile(path.join(backups, id, 'flake.lock'), 'tampered\n');
    const r = await cli(['--config', config, 'backup', 'restore', id]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`box: backup ${id} does not match its manifest`);
    expect(r.stderr).toContain('flake.lock: FAILED');
    expect((await readdir(state)).sort()).toEqual([
      '.cache',
      'config.toml',
      'custom_model_cards',
      'models',
    ]);
  });
});
