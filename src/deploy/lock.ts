// One deploy at a time per config repo: a lock file with owner, PID and start time. A lock
// whose process is gone (same machine) is taken over, with a warning; one that cannot be read
// is not guessed about.
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExoDeployError, ExitCode } from '../errors.js';
import type { Log } from '../output/log.js';
import { syncDir } from '../fs/atomic.js';

interface LockOwner {
  pid: number;
  host: string;
  user: string;
  startedAt: string;
  command: string;
}

export interface DeployLock {
  file: string;
  release(): Promise<void>;
}

export async function acquireDeployLock(
  stateDir: string,
  command: string,
  log: Log,
): Promise<DeployLock> {
  await mkdir(stateDir, { recursive: true });
  const file = path.join(stateDir, 'deploy.lock');
  const me: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    user: os.userInfo().username,
    startedAt: new Date().toISOString(),
    command,
  };
  const mine = `${JSON.stringify(me)}\n`;
  // The owner is written whole under a name of this process's, then linked in place: the lock
  // never exists without its owner, and link() fails when a lock is there.
  const temp = `${file}.${process.pid}.${randomUUID()}`;
  // the temp name is this run's alone: written and flushed in place, no rename needed
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(mine);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      try {
        await link(temp, file);
        await syncDir(stateDir);
        return { file, release: () => releaseLock(file, mine) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const text = await readFile(file, 'utf8').catch(() => null);
      if (text === null) continue; // released meanwhile
      const holder = parseOwner(text);
      if (!holder) {
        throw new ExoDeployError(`the deploy lock ${file} cannot be read`, ExitCode.locked, {
          hint: `no exo-deploy writes such a lock: look at it, and remove it if no deploy runs`,
        });
      }
      if (
        holder.host !== me.host ||
        (processAlive(holder.pid) && !beforeThisBoot(holder.startedAt))
      ) {
        throw new ExoDeployError(
          `another deploy holds the lock ${file}: ${holder.user}@${holder.host}, PID ${holder.pid}, since ${holder.startedAt} (${holder.command})`,
          ExitCode.locked,
          {
            hint:
              holder.host === me.host
                ? 'wait for it to finish'
                : `it runs on ${holder.host}; if that run is gone, remove ${file}`,
          },
        );
      }
      // Stale: moved aside (of several takers, one moves this very file), checked to be the
      // one read, removed; then linked again. A lock that is not the stale one goes back.
      const aside = `${file}.stale.${process.pid}`;
      try {
        await rename(file, aside);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      if ((await readFile(aside, 'utf8').catch(() => null)) !== text) {
        await link(aside, file).catch(() => undefined);
        await rm(aside, { force: true });
        continue;
      }
      log.warn(
        `taking over a stale deploy lock (PID ${holder.pid} since ${holder.startedAt} ${processAlive(holder.pid) ? 'was taken before this machine booted' : 'is gone'})`,
      );
      await rm(aside, { force: true });
    }
    throw new ExoDeployError(
      `cannot take the deploy lock ${file}: it changed hands while it was tried`,
      ExitCode.locked,
      { hint: 'try again' },
    );
  } finally {
    await rm(temp, { force: true });
  }
}

/** Removes the lock only while it is this run's. */
async function releaseLock(file: string, mine: string): Promise<void> {
  if ((await readFile(file, 'utf8').catch(() => null)) === mine) await rm(file, { force: true });
}

function parseOwner(text: string): LockOwner | null {
  try {
    const owner = JSON.parse(text) as LockOwner;
    return typeof owner?.pid === 'number' && typeof owner.host === 'string' ? owner : null;
  } catch {
    return null;
  }
}

/** Whether a time (ISO) came before this machine booted: a lock taken then is stale whatever
 * runs under its PID now (a lock kept under /var outlives a power cut, and PIDs start over at
 * each boot), and a run begun then was cut by the boot. A minute's margin for a clock set at
 * boot. */
export function beforeThisBoot(at: string): boolean {
  const bootedAt = Date.now() - os.uptime() * 1000;
  return Date.parse(at) < bootedAt - 60_000;
}

/** Whether a process of this machine still runs (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
