// update against a config flake whose exo input is a local git+file:// repository that gets
// a new commit, with the real Nix of this machine (2.8: the --update-input form).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from './helpers.js';

let exoSrc: string;
let config: string;
const git = (repo: string, ...args: string[]) => execa('git', ['-C', repo, ...args]);

async function commitExo(version: string) {
  await writeFile(
    path.join(exoSrc, 'flake.nix'),
    `{ outputs = _: { version = "${version}"; }; }\n`,
  );
  await git(exoSrc, 'add', '-A');
  await git(exoSrc, 'commit', '-qm', `exo ${version}`);
  return (await git(exoSrc, 'rev-parse', 'HEAD')).stdout.trim();
}

beforeAll(async () => {
  const dir = await tempDir('update');
  exoSrc = path.join(dir, 'exo-src');
  config = path.join(dir, 'config');
  await execa('mkdir', ['-p', exoSrc, config]);
  await git(exoSrc, 'init', '-q');
  await commitExo('1.0.0');
  await git(config, 'init', '-q');
  await writeFile(
    path.join(config, 'flake.nix'),
    `{ inputs.exo.url = "git+file://${exoSrc}"; outputs = { self, exo }: { }; }\n`,
  );
  await writeFile(path.join(config, 'exo-deploy.toml'), 'flake = "."\n');
  await git(config, 'add', '-A');
  await execa('nix', ['flake', 'lock', config]);
  await git(config, 'add', '-A');
  await git(config, 'commit', '-qm', 'config');
});

describe('update', () => {
  it('says nothing changed when the input is at its newest revision', async () => {
    const r = await cli(['update', 'exo'], { cwd: config });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('nothing changed');
  });

  it('moves the input, names old and new revision, and commits flake.lock with that message', async () => {
    const lockBefore = JSON.parse(await readFile(path.join(config, 'flake.lock'), 'utf8'));
    const oldRev: string = lockBefore.nodes.exo.locked.rev;
    const newRev = await commitExo('1.0.1');
    const r = await cli(['update', 'exo', '--commit', '--json'], { cwd: config });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.changed).toHaveLength(1);
    expect(out.changed[0]).toMatchObject({
      name: 'exo',
      before: { rev: oldRev },
      after: { rev: newRev },
    });
    expect(out.argv).toEqual(expect.arrayContaining(['flake', 'lock', '--update-input', 'exo']));
    const lockAfter = JSON.parse(await readFile(path.join(config, 'flake.lock'), 'utf8'));
    expect(lockAfter.nodes.exo.locked.rev).toBe(newRev);
    const message = (await git(config, 'log', '-1', '--format=%B')).stdout;
    expect(message).toContain('flake.lock: update exo');
    expect(message).toContain(`exo: ${oldRev.slice(0, 7)}`);
    expect(message).toContain(`→ ${newRev.slice(0, 7)}`);
    expect((await git(config, 'status', '--porcelain')).stdout).toBe('');
  });

  it('--dry-run shows the command and leaves flake.lock alone', async () => {
    const before = await readFile(path.join(config, 'flake.lock'), 'utf8');
    await commitExo('1.0.2');
    const r = await cli(['update', '--dry-run'], { cwd: config });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toMatch(/\[dry-run\] .*would run nix .*flake update/);
    expect(await readFile(path.join(config, 'flake.lock'), 'utf8')).toBe(before);
  });

  it('refuses an input the flake does not have, with exit 2 and the inputs it has', async () => {
    const r = await cli(['update', 'exoo'], { cwd: config });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('the flake has no input "exoo"');
    expect(r.stderr).toContain('its inputs: exo');
  });
});
