// The deploy lock: one holder at a time, whatever the interleaving; released only by its holder.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDeployLock } from '../../src/deploy/lock.js';
import { ExitCode, type ExoDeployError } from '../../src/errors.js';
import type { Log } from '../../src/output/log.js';

const warnings: string[] = [];
const log: Log = {
  info() {},
  verbose() {},
  step() {},
  warn: (m) => warnings.push(m),
};
const dirs: string[] = [];
const stateDir = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-lock-'));
  dirs.push(d);
  return d;
};
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('deploy lock', () => {
  it('of 20 runs trying at once, exactly one holds it; the others exit 4 naming it', async () => {
    const dir = await stateDir();
    const tries = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => acquireDeployLock(dir, `deploy #${i}`, log)),
    );
    const held = tries.filter((t) => t.status === 'fulfilled');
    expect(held).toHaveLength(1);
    for (const t of tries.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect((t.reason as ExoDeployError).exitCode).toBe(ExitCode.locked);
      expect((t.reason as Error).message).toMatch(
        /another deploy holds the lock .*\(deploy #\d+\)/,
      );
    }
    // nothing but the lock is left in the folder
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(dir)).toEqual(['deploy.lock']);
  });

  it('release removes the lock only while it is its own', async () => {
    const dir = await stateDir();
    const lock = await acquireDeployLock(dir, 'deploy a', log);
    const other = `${JSON.stringify({ pid: process.pid, host: os.hostname(), user: 'ops', startedAt: '2026-11-30T00:00:00Z', command: 'deploy b' })}\n`;
    await writeFile(lock.file, other);
    await lock.release();
    expect(await readFile(lock.file, 'utf8')).toBe(other);
  });

  it('a lock taken before this machine booted is stale though its PID runs again (PIDs start over at boot); one taken since is not', async () => {
    const dir = await stateDir();
    const owner = (startedAt: string) =>
      `${JSON.stringify({ pid: process.pid, host: os.hostname(), user: 'root', startedAt, command: 'pull main' })}\n`;
    const bootedAt = Date.now() - os.uptime() * 1000;
    // held by a live process (this one) since after the boot: not taken
    await writeFile(
      path.join(dir, 'deploy.lock'),
      owner(new Date(Date.now() - 1000).toISOString()),
    );
    const held = await acquireDeployLock(dir, 'pull', log).then(
      () => null,
      (e: ExoDeployError) => e,
    );
    expect(held?.exitCode).toBe(ExitCode.locked);
    // the same PID, but written before the boot: taken over, with a warning
    await writeFile(
      path.join(dir, 'deploy.lock'),
      owner(new Date(bootedAt - 3_600_000).toISOString()),
    );
    const lock = await acquireDeployLock(dir, 'pull', log);
    expect(JSON.parse(await readFile(lock.file, 'utf8')).command).toBe('pull');
    expect(warnings.at(-1)).toMatch(/taking over a stale deploy lock/);
    await lock.release();
  });

  it('a lock that cannot be read is not taken over: exit 4, and it stays', async () => {
    const dir = await stateDir();
    await writeFile(path.join(dir, 'deploy.lock'), '');
    const error = await acquireDeployLock(dir, 'deploy', log).then(
      () => null,
      (e: ExoDeployError) => e,
    );
    expect(error?.exitCode).toBe(ExitCode.locked);
    expect(error?.message).toMatch(/cannot be read/);
    expect(await readFile(path.join(dir, 'deploy.lock'), 'utf8')).toBe('');
  });
});
