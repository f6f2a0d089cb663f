// A host's mirror of its config repository (pull mode), with the real git of this machine: a
// branch fetched, how a new tip stands to the commit the host is at (descends, went back,
// rewritten), and SSH-signed commits judged against an allowed-signers file.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveHost } from '../../src/config/host.js';
import { silentLog } from '../../src/output/log.js';
import { ancestry, checkSignature, fetchTip, type Mirror } from '../../src/pull/mirror.js';
import { createExecutor } from '../../src/run/executor.js';
import { execaRunner } from '../../src/run/process.js';
import { hostDefaults } from '../unit/host-defaults.js';
import { tempDir } from './helpers.js';

let dir: string;
let remote: string;
let mirror: Mirror;
const git = (repo: string, ...args: string[]) =>
  execa('git', ['-C', repo, ...args]).then((r) => r.stdout);
const commit = async (message: string, ...flags: string[]) => {
  await git(remote, 'commit', '-q', '--allow-empty', ...flags, '-m', message);
  return git(remote, 'rev-parse', 'HEAD');
};
const url = () => `file://${remote}`;
const fetchMain = async () => {
  const f = await fetchTip(mirror, url(), 'main', 30_000);
  if (!f.fetched) throw new Error(f.why);
  return f.tip;
};

beforeAll(async () => {
  dir = await tempDir('pull-mirror');
  remote = path.join(dir, 'config');
  await execa('git', ['init', '-q', '-b', 'main', remote]);
  await git(remote, 'config', 'user.name', 'fleet');
  await git(remote, 'config', 'user.email', 'fleet@example.org');
  const exec = createExecutor(resolveHost('h1', { target: 'local', tags: [] }, hostDefaults()), {
    runner: execaRunner(),
    cleanupRunner: execaRunner(),
    log: silentLog,
    dryRun: false,
    defaultTimeoutMs: 30_000,
    sshConnectTimeoutMs: 5_000,
    sshProgram: 'ssh',
  });
  mirror = { exec, git: 'git', dir: path.join(dir, 'mirror.git') };
});

describe("a host's mirror of its config repository", () => {
  it("fetches the branch's tip, and tells a descendant, a branch that went back and one rewritten apart", async () => {
    const first = await commit('first');
    expect(await fetchMain()).toBe(first);
    expect(await ancestry(mirror, first, first)).toBe('same');

    const second = await commit('second');
    const tip = await fetchMain();
    expect(tip).toBe(second);
    expect(await ancestry(mirror, first, tip)).toBe('descends');

    // the branch reset to its first commit: fetched all the same, and seen as going back
    await git(remote, 'reset', '-q', '--hard', first);
    expect(await fetchMain()).toBe(first);
    expect(await ancestry(mirror, second, first)).toBe('behind');

    // rewritten: a commit beside the one the host is at
    const beside = await commit('beside');
    expect(await fetchMain()).toBe(beside);
    expect(await ancestry(mirror, second, beside)).toBe('diverged');
    // a commit the mirror never saw cannot be placed
    expect(await ancestry(mirror, 'f'.repeat(40), beside)).toBe('unknown');
  });

  it("a remote that cannot be fetched is said so, with git's reason", async () => {
    const f = await fetchTip(mirror, `file://${path.join(dir, 'nowhere')}`, 'main', 30_000);
    expect(f.fetched).toBe(false);
    expect(f.fetched ? '' : f.why).toMatch(
      /^git could not fetch main from file:\/\/.*\/nowhere: .*(does not appear to be a git repository|not found)/,
    );
    const branch = await fetchTip(mirror, url(), 'no-such-branch', 30_000);
    expect(branch.fetched ? '' : branch.why).toMatch(/couldn't find remote ref/);
  });

  it('trusts a commit signed by an allowed signer, and says why not for one unsigned or signed by another key', async () => {
    const key = path.join(dir, 'signer');
    const other = path.join(dir, 'other');
    for (const k of [key, other])
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k, '-C', path.basename(k)]);
    const allowed = path.join(dir, 'allowed_signers');
    const [type, blob] = (await execa('cat', [`${key}.pub`])).stdout.split(' ');
    await writeFile(allowed, `ops@example.org ${type} ${blob}\n`);
    const signing = (k: string) => ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${k}`];
    const sign = async (k: string, message: string) => {
      await execa('git', [
        '-C',
        remote,
        ...signing(k),
        'commit',
        '-q',
        '--allow-empty',
        '-S',
        '-m',
        message,
      ]);
      return git(remote, 'rev-parse', 'HEAD');
    };

    const good = await sign(key, 'signed by ops');
    await fetchMain();
    expect(await checkSignature(mirror, good, allowed)).toEqual({
      trusted: true,
      signer: 'ops@example.org',
    });
    const unsigned = await commit('unsigned');
    await fetchMain();
    expect(await checkSignature(mirror, unsigned, allowed)).toEqual({
      trusted: false,
      why: `${unsigned.slice(0, 12)} is not signed`,
    });
    const stranger = await sign(other, 'signed by another key');
    await fetchMain();
    const judged = await checkSignature(mirror, stranger, allowed);
    expect(judged.trusted).toBe(false);
    expect(judged.trusted ? '' : judged.why).toMatch(
      new RegExp(
        `^${stranger.slice(0, 12)} is signed by SHA256:\\S+ that is not an allowed signer`,
      ),
    );
  });
});
