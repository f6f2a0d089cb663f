// update against a config flake whose exo input is a local git+file:// repository that gets
// a new commit, with the real Nix of this machine (2.8: the --update-input form).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, repoRoot, tempDir } from './helpers.js';

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

describe('update --branch', () => {
  /** What a test must find unchanged: the branch checked out, its commit, the index and the
   * working tree (an uncommitted edit included). */
  const checkout = async () => ({
    branch: (await git(config, 'symbolic-ref', '--short', 'HEAD')).stdout,
    head: (await git(config, 'rev-parse', 'HEAD')).stdout,
    status: (await git(config, 'status', '--porcelain')).stdout,
    lock: await readFile(path.join(config, 'flake.lock'), 'utf8'),
    notes: await readFile(path.join(config, 'notes.txt'), 'utf8'),
  });

  beforeAll(async () => {
    await writeFile(path.join(config, 'notes.txt'), 'committed\n');
    await git(config, 'add', 'notes.txt');
    await git(config, 'commit', '-qm', 'notes');
    // an edit the new branch must not take
    await writeFile(path.join(config, 'notes.txt'), 'not committed\n');
  });

  it("commits the new lock on a new branch from HEAD, its message listing exo's commits; the checkout is left as it was", async () => {
    const oldRev = JSON.parse(await readFile(path.join(config, 'flake.lock'), 'utf8')).nodes.exo
      .locked.rev;
    const first = await commitExo('1.1.0');
    const second = await commitExo('1.1.1');
    const before = await checkout();
    const r = await cli(['update', 'exo', '--branch', 'update/exo-1.1.1', '--json'], {
      cwd: config,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(await checkout()).toEqual(before);

    const branch = (await git(config, 'rev-parse', 'update/exo-1.1.1')).stdout;
    expect(out.committed).toBe(branch);
    expect((await git(config, 'rev-parse', 'update/exo-1.1.1^')).stdout).toBe(before.head);
    expect((await git(config, 'diff', '--name-only', before.head, 'update/exo-1.1.1')).stdout).toBe(
      'flake.lock',
    );
    expect((await git(config, 'show', 'update/exo-1.1.1:notes.txt')).stdout).toBe('committed');
    const lock = JSON.parse((await git(config, 'show', 'update/exo-1.1.1:flake.lock')).stdout);
    expect(lock.nodes.exo.locked.rev).toBe(second);

    // every exo commit since the old lock, newest first (exo 1.0.2 was committed earlier)
    expect(out.histories).toHaveLength(1);
    expect(out.histories[0]).toMatchObject({ name: 'exo', from: oldRev, to: second, count: 3 });
    expect(out.histories[0].commits).toEqual([
      { rev: second, subject: 'exo 1.1.1' },
      { rev: first, subject: 'exo 1.1.0' },
      { rev: expect.any(String), subject: 'exo 1.0.2' },
    ]);
    const message = (await git(config, 'log', '-1', '--format=%B', 'update/exo-1.1.1')).stdout;
    expect(message).toMatch(/^flake\.lock: update exo\n/);
    expect(message).toContain(`exo ${oldRev.slice(0, 12)}..${second.slice(0, 12)}: 3 commits`);
    expect(message).toContain(`- ${second.slice(0, 12)} exo 1.1.1`);
    expect(message).toContain(`- ${first.slice(0, 12)} exo 1.1.0`);
    expect(out.message.trim()).toBe(message.trim());
  });

  it('refuses a name that cannot be a branch, and a branch that exists, with exit 2 and nothing changed', async () => {
    await commitExo('1.1.2');
    const before = await checkout();
    const branches = (await git(config, 'branch', '--list')).stdout;
    const bad = await cli(['update', 'exo', '--branch', 'no..dots'], { cwd: config });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('"no..dots" cannot be a branch\'s name');
    const taken = await cli(['update', 'exo', '--branch', 'update/exo-1.1.1'], { cwd: config });
    expect(taken.exitCode).toBe(2);
    expect(taken.stderr).toContain('the branch update/exo-1.1.1 exists already');
    expect(await checkout()).toEqual(before);
    expect((await git(config, 'branch', '--list')).stdout).toBe(branches);
  });
});

describe('update --branch, for a flake in a folder of a larger repository', () => {
  it("commits that folder's flake.lock on the new branch, the rest of the repository as it was; --commit with it is exit 2", async () => {
    const mono = path.join(await tempDir('mono'), 'repo');
    const fleet = path.join(mono, 'fleet');
    await execa('mkdir', ['-p', fleet]);
    await git(mono, 'init', '-q');
    await writeFile(path.join(mono, 'README'), 'the fleet and more\n');
    await writeFile(
      path.join(fleet, 'flake.nix'),
      `{ inputs.exo.url = "git+file://${exoSrc}"; outputs = { self, exo }: { }; }\n`,
    );
    await writeFile(path.join(fleet, 'exo-deploy.toml'), 'flake = "."\n');
    await git(mono, 'add', '-A');
    await execa('nix', ['flake', 'lock', fleet]);
    await git(mono, 'add', '-A');
    await git(mono, 'commit', '-qm', 'fleet');
    const head = (await git(mono, 'rev-parse', 'HEAD')).stdout;
    const newest = await commitExo('1.3.0');

    const both = await cli(['update', 'exo', '--commit', '--branch', 'b'], { cwd: fleet });
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('--commit and --branch exclude each other');

    const r = await cli(['update', 'exo', '--branch', 'update/fleet-exo'], { cwd: fleet });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await git(mono, 'rev-parse', 'HEAD')).stdout).toBe(head);
    expect((await git(mono, 'diff', '--name-only', head, 'update/fleet-exo')).stdout).toBe(
      'fleet/flake.lock',
    );
    const lock = JSON.parse((await git(mono, 'show', 'update/fleet-exo:fleet/flake.lock')).stdout);
    expect(lock.nodes.exo.locked.rev).toBe(newest);
  });
});

describe("the template's CI script: propose", () => {
  const script = path.join(repoRoot, 'templates/default/ci/exo-deploy-ci');
  let origin: string;
  let out: string;
  const propose = (env: Record<string, string> = {}) =>
    execa('bash', [script, 'propose'], {
      cwd: config,
      reject: false,
      env: {
        EXO_DEPLOY: `node ${path.join(repoRoot, 'dist/cli/cli.js')}`,
        EXO_DEPLOY_OUT: out,
        ...env,
      },
    });
  const onOrigin = async (ref: string) =>
    (await execa('git', ['-C', origin, 'rev-parse', ref], { reject: false })).stdout;

  beforeAll(async () => {
    const dir = await tempDir('ci');
    origin = path.join(dir, 'origin.git');
    out = path.join(dir, 'out');
    await execa('git', ['init', '-q', '--bare', origin]);
    await git(config, 'remote', 'add', 'origin', origin);
  });

  it("pushes exo's update as a branch, and writes the pull request's title and body; a later run replaces it with the newer update", async () => {
    const first = await commitExo('1.2.0');
    const r = await propose();
    expect(r.exitCode, r.stderr).toBe(0);
    const branch = 'exo-deploy/update-exo';
    expect((await readFile(path.join(out, 'branch'), 'utf8')).trim()).toBe(branch);
    expect(await onOrigin(branch)).toBe((await git(config, 'rev-parse', branch)).stdout);
    expect((await readFile(path.join(out, 'pr-title'), 'utf8')).trim()).toBe(
      'flake.lock: update exo',
    );
    const body = await readFile(path.join(out, 'pr-body.md'), 'utf8');
    expect(body).toContain(`- ${first.slice(0, 12)} exo 1.2.0`);

    const second = await commitExo('1.2.1');
    const again = await propose();
    expect(again.exitCode, again.stderr).toBe(0);
    const lock = JSON.parse((await git(config, 'show', `${branch}:flake.lock`)).stdout);
    expect(lock.nodes.exo.locked.rev).toBe(second);
    expect(await onOrigin(branch)).toBe((await git(config, 'rev-parse', branch)).stdout);
    expect(await readFile(path.join(out, 'pr-body.md'), 'utf8')).toContain(
      `- ${second.slice(0, 12)} exo 1.2.1`,
    );
  });

  it('a run when nothing moved since the proposal leaves it on the remote as it is', async () => {
    const before = await onOrigin('exo-deploy/update-exo');
    // (a later date: the proposal made anew is another commit, with the same tree)
    const r = await propose({ GIT_COMMITTER_DATE: '2030-01-01T00:00:00Z' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('the proposal on exo-deploy/update-exo is up to date');
    expect(await git(config, 'rev-parse', 'exo-deploy/update-exo')).not.toMatchObject({
      stdout: before,
    });
    expect(await onOrigin('exo-deploy/update-exo')).toBe(before);
  });

  it('once the proposal is merged, exo has not moved: nothing is proposed, exit 0', async () => {
    await git(config, 'stash', '--include-untracked');
    await git(config, 'merge', '--ff-only', '-q', 'exo-deploy/update-exo');
    await git(config, 'stash', 'pop', '-q');
    const before = await onOrigin('exo-deploy/update-exo');
    const r = await propose();
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('exo has not moved: nothing to propose');
    expect(await onOrigin('exo-deploy/update-exo')).toBe(before);
  });
});
