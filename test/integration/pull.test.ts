// exo-deploy pull, the real CLI with this machine's git, where it must not deploy: a remote it
// cannot fetch, a branch that went back, an unsigned commit where signatures are required, a
// commit whose config does not load (marked bad, then skipped until the branch moves on), and
// bad command lines. Each leaves the host as it was; the state file and the textfile say why.
// (A pull that deploys needs a NixOS host: test/e2e/pull.test.ts, on the sandbox.)
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from './helpers.js';

let dir: string;
let remote: string;
let pullDir: string;
const git = (repo: string, ...args: string[]) =>
  execa('git', ['-C', repo, ...args]).then((r) => r.stdout);
const commit = async (message: string, ...flags: string[]) => {
  await git(remote, 'commit', '-q', '--allow-empty', ...flags, '-m', message);
  return git(remote, 'rev-parse', 'HEAD');
};
const pullFrom = (url: string, ...args: string[]) =>
  cli([
    'pull',
    '--json',
    '--url',
    url,
    '--host-name',
    'h1',
    '--pull-dir',
    pullDir,
    '--textfile',
    path.join(pullDir, 'pull.prom'),
    ...args,
  ]);
const pull = (...args: string[]) => pullFrom(`file://${remote}`, ...args);
const state = async () => JSON.parse(await readFile(path.join(pullDir, 'state.json'), 'utf8'));
const textfile = () => readFile(path.join(pullDir, 'pull.prom'), 'utf8');

beforeEach(async () => {
  dir = await tempDir('pull');
  remote = path.join(dir, 'fleet');
  pullDir = path.join(dir, 'pull');
  await execa('git', ['init', '-q', '-b', 'main', remote]);
  await git(remote, 'config', 'user.name', 'fleet');
  await git(remote, 'config', 'user.email', 'fleet@example.org');
});

describe('exo-deploy pull, where it must not deploy', () => {
  it('a remote it cannot fetch: exit 1, the host left alone, the state and the textfile say why', async () => {
    const r = await pullFrom(`file://${path.join(dir, 'nowhere')}`);
    expect(r.exitCode).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.outcome).toBe('fetch-failed');
    expect(out.deploy).toBeNull();
    expect(out.reason).toMatch(/git could not fetch main from file:\/\/.*nowhere/);
    expect((await state()).lastAttempt).toMatchObject({ outcome: 'fetch-failed', exitCode: 1 });
    expect(await textfile()).toMatch(
      /exo_deploy_pull_last_attempt_info\{host="h1",outcome="fetch-failed",revision=""\} 1/,
    );
    expect(await textfile()).toMatch(/exo_deploy_pull_last_attempt_exit_code\{host="h1"\} 1/);
  });

  it('a commit whose config does not load is marked bad, then skipped until the branch moves on', async () => {
    const first = await commit('no exo-deploy.toml here');
    const r = await pull();
    expect(r.exitCode).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out.outcome).toBe('bad-config');
    expect(out.tip).toBe(first);
    expect(out.reason).toMatch(/exo-deploy\.toml: cannot read the config file/);
    const s = await state();
    expect(s.bad.map((b: { revision: string }) => b.revision)).toEqual([first]);
    expect(s.deployed).toBeNull();
    expect(await textfile()).toMatch(/exo_deploy_pull_bad_revisions\{host="h1"\} 1/);

    const again = await pull();
    expect(again.exitCode).toBe(0);
    expect(JSON.parse(again.stdout).outcome).toBe('skipped-bad');

    // the branch moves on: the new tip is tried (and its config, naming no h1, refused)
    await writeFile(path.join(remote, 'exo-deploy.toml'), '[hosts.h2]\ntarget = "10.0.0.3"\n');
    await git(remote, 'add', 'exo-deploy.toml');
    await writeFile(
      path.join(remote, 'flake.nix'),
      '{ outputs = { self }: { nixosConfigurations = { }; }; }\n',
    );
    await git(remote, 'add', 'flake.nix');
    const second = await commit('h2 only');
    const moved = await pull();
    expect(moved.exitCode).toBe(2);
    expect(JSON.parse(moved.stdout)).toMatchObject({ outcome: 'bad-config', tip: second });
    expect(JSON.parse(moved.stdout).reason).toMatch(/has no host "h1" \(it has h2\)/);
  });

  it('a commit whose config builds a flake outside the repository is refused: a pull builds only what it fetched', async () => {
    await writeFile(
      path.join(remote, 'exo-deploy.toml'),
      'flake = "github:acme/elsewhere"\n[hosts.h1]\ntarget = "10.0.0.2"\n',
    );
    await git(remote, 'add', 'exo-deploy.toml');
    const tip = await commit('elsewhere');
    const r = await pull();
    expect(r.exitCode).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'bad-config', tip });
    expect(JSON.parse(r.stdout).reason).toMatch(
      /names the flake github:acme\/elsewhere, outside the repository/,
    );
  });

  it('a branch that went back or was rewritten is refused: the host stays on its commit', async () => {
    const first = await commit('first');
    const second = await commit('second');
    // the host is at `second` (a pull moved it there before)
    await mkdir(pullDir, { recursive: true });
    await writeFile(
      path.join(pullDir, 'state.json'),
      JSON.stringify({
        schemaVersion: 1,
        url: `file://${remote}`,
        branch: 'main',
        deployed: {
          revision: second,
          system: '/nix/store/x',
          at: '2026-12-01T00:00:00Z',
          run: null,
        },
        lastAttempt: null,
        lastSuccessAt: null,
        rollbacks: 0,
        bad: [],
        held: [],
      }),
    );
    // (this machine runs no NixOS system: the host is taken to be at `second`, as its state
    // says); a first pull fetches the branch at `second`
    expect(JSON.parse((await pull()).stdout).tip).toBe(second);
    await git(remote, 'reset', '-q', '--hard', first);
    const back = await pull();
    expect(back.exitCode).toBe(2);
    expect(JSON.parse(back.stdout)).toMatchObject({ outcome: 'behind', tip: first, at: second });

    const beside = await commit('beside');
    const rewritten = await pull();
    expect(rewritten.exitCode).toBe(2);
    expect(JSON.parse(rewritten.stdout)).toMatchObject({ outcome: 'diverged', tip: beside });
    // still at `second`, nothing checked out
    expect((await state()).deployed.revision).toBe(second);
    expect(existsSync(path.join(pullDir, 'reports'))).toBe(false);

    // the host's configuration follows another branch now: its first pull is not held to
    // `second` (that branch need not descend from it), and says so
    await git(remote, 'branch', 'stable', first);
    const switched = await pull('--branch', 'stable');
    expect(switched.stderr).toMatch(
      /followed main of file:\/\/.* before: the first pull from stable/,
    );
    expect(JSON.parse(switched.stdout)).toMatchObject({ tip: first, outcome: 'bad-config' });
    expect((await state()).branch).toBe('stable');
  });

  it('an unsigned commit where signatures are required is refused', async () => {
    const key = path.join(dir, 'signer');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ops', '-f', key]);
    const signers = path.join(dir, 'allowed_signers');
    await writeFile(signers, `ops@example.org ${(await readFile(`${key}.pub`, 'utf8')).trim()}\n`);
    const tip = await commit('unsigned');
    const r = await pull('--allowed-signers', signers);
    expect(r.exitCode).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'untrusted', tip });
    expect(JSON.parse(r.stdout).reason).toMatch(/is not signed: signed commits are required/);
  });

  it('bad command lines are exit 2, and nothing is written', async () => {
    for (const args of [
      ['--branch', 'a..b'],
      ['--repo-config', '../outside.toml'],
      ['--allowed-signers', path.join(dir, 'missing')],
    ]) {
      const r = await pull(...args);
      expect(r.exitCode, args.join(' ')).toBe(2);
    }
    for (const url of [
      'https://user:secret@example.org/fleet.git',
      'https://secret@example.org/fleet.git',
      'ssh://git:secret@example.org/fleet.git',
    ]) {
      const creds = await cli(['pull', '--url', url]);
      expect(creds.exitCode, url).toBe(2);
      expect(creds.stderr).toMatch(/--url carries credentials/);
      expect(creds.stderr).not.toMatch(/secret/);
    }
    // a pull acts for real or not at all: a dry run would record a deploy that never was
    const dry = await pull('--dry-run');
    expect(dry.exitCode).toBe(2);
    expect(dry.stderr).toMatch(/pull takes no --dry-run/);
    expect(existsSync(pullDir)).toBe(false);
  });
});
