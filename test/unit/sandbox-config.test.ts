// sandbox/fleet.mjs tuneConfig: the tests and the bench set keys of the sandbox's
// exo-deploy.toml, which must stay one valid file whatever the table held before.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import TOML from '@iarna/toml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tuneConfig, tuneHealth } from '../../sandbox/fleet.mjs';

const START =
  '[health]\nsoak = "5s"\nready_timeout = "30s"\ntimeout = "2s"\n\n[hosts.h2]\ntarget = "root@10.0.0.3"\n\n[backup]\nkeep = 5\n';
let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'exo-tune-'));
  file = path.join(dir, 'exo-deploy.toml');
  await writeFile(file, START);
});
afterEach(() => rm(dir, { recursive: true, force: true }));
const read = async () =>
  TOML.parse(await readFile(file, 'utf8')) as Record<string, Record<string, unknown>>;

describe('tuneConfig', () => {
  it('sets values the table already holds, twice over (the bench does), and changes nothing else', async () => {
    await tuneHealth(file, { soak: '5s', ready_timeout: '30s', timeout: '2s' });
    await tuneHealth(file, { soak: '5s', ready_timeout: '30s', timeout: '2s' });
    expect(await readFile(file, 'utf8')).toBe(START);
  });

  it('replaces a key, adds one, removes one with null, and keeps the other tables', async () => {
    await tuneHealth(file, { soak: '8s', window: '1m', timeout: null });
    await tuneConfig(file, 'hosts.h2', { build_on: 'target' });
    const t = await read();
    expect(t.health).toEqual({ soak: '8s', ready_timeout: '30s', window: '1m' });
    expect(t.hosts).toEqual({ h2: { target: 'root@10.0.0.3', build_on: 'target' } });
    expect(t.backup).toEqual({ keep: 5 });
  });

  it('refuses a table the file does not have, leaving the file as it was', async () => {
    await expect(tuneConfig(file, 'hosts.h9', { build_on: 'target' })).rejects.toThrow(
      /no \[hosts\.h9\] table/,
    );
    expect(await readFile(file, 'utf8')).toBe(START);
  });
});
