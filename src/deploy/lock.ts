// One deploy at a time per config repo: a lock file with owner, PID and start time. A lock
// whose process is gone (same machine) is taken over, with a warning.
import { open, readFile, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExoDeployError, ExitCode } from '../errors.js';
import type { Log } from '../output/log.js';

export interface LockOwner {
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

export async function acquireDeployLock(stateDir: string, command: string, log: Log): Promise<DeployLock> {
  await mkdir(stateDir, { recursive: true });
  const file = path.join(stateDir, 'deploy.lock');
  const me: LockOwner = { pid: process.pid, host: os.hostname(), user: os.userInfo().username, startedAt: new Date().toISOString(), command };
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const handle = await open(file, 'wx', 0o644);
      await handle.writeFile(`${JSON.stringify(me)}\n`);
      await handle.sync();
      await handle.close();
      return { file, release: () => rm(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readOwner(file);
    if (holder && (holder.host !== me.host || processAlive(holder.pid))) {
      throw new ExoDeployError(`another deploy holds the lock ${file}: ${holder.user}@${holder.host}, PID ${holder.pid}, since ${holder.startedAt} (${holder.command})`, ExitCode.locked, {
        hint: holder.host === me.host ? 'wait for it to finish' : `it runs on ${holder.host}; if that run is gone, remove ${file}`,
      });
    }
    log.warn(`taking over a stale deploy lock ${holder ? `(PID ${holder.pid} since ${holder.startedAt} is gone)` : '(unreadable)'}`);
    await rm(file, { force: true });
  }
  throw new ExoDeployError(`cannot take the deploy lock ${file}`, ExitCode.locked);
}

async function readOwner(file: string): Promise<LockOwner | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockOwner;
  } catch {
    return null;
  }
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
