// Backups on a host: create, list, prune, restore. Every step is a plain program run through
// the host's executor, so the same code serves this machine and hosts over ssh.
import path from 'node:path';
import { ExoDeployError, ExitCode, usageError } from '../errors.js';
import {
  existsArgv, inDirArgv, listDirArgv, mkdirArgv, parseReadFiles, readFilesArgv, readlinkArgv, removeArgv, renameArgv, symlinkArgv, syncArgv, writeFileArgv,
} from '../programs/coreutils.js';
import type { Executor } from '../run/executor.js';
import type { SystemState } from '../system/generations.js';
import {
  BACKUP_ID, BackupMeta, FLAKE_LOCK, GC_ROOTS_DIR, MANIFEST_FILE, META_FILE, MODELS_DIR, PARTIAL_PREFIX, STATE_ARCHIVE, STATE_EXCLUDES, backupId,
} from './layout.js';

export interface CreateOptions {
  dir: string;
  system: SystemState;
  healthy: boolean;
  reason: string;
  models: boolean;
  /** The config repo's flake.lock, copied into the backup. */
  flakeLock: string | null;
  timeoutMs: number;
  now: Date;
}

export async function createBackup(exec: Executor, o: CreateOptions): Promise<BackupMeta> {
  const root = { root: true, mutates: true } as const;
  const id = backupId(o.now);
  const partial = path.posix.join(o.dir, `${PARTIAL_PREFIX}${id}`);
  const final = path.posix.join(o.dir, id);
  // With a DynamicUser the state is really under /var/lib/private (0700): resolved, tested
  // and archived as root, or a sudo host's backup would silently hold no state.
  const stateDir = (await exec.must(readlinkArgv([exec.host.exoStateDir]), { root: true })).stdout.trim() || exec.host.exoStateDir;
  const current = o.system.generations.find((g) => g.running) ?? null;
  const files: string[] = [];

  await exec.must(mkdirArgv(partial), root);
  if ((await exec.run(existsArgv(stateDir), { root: true })).exitCode === 0) {
    const excludes = [...STATE_EXCLUDES, ...(o.models ? [] : [MODELS_DIR])].map((e) => `--exclude=./${e}`);
    const tar = await exec.run(['tar', '-C', stateDir, '-czf', path.posix.join(partial, STATE_ARCHIVE), ...excludes, '.'], { ...root, timeoutMs: o.timeoutMs });
    // GNU tar exits 1 when a file changed while it was read (exo writes logs): the archive is whole.
    if (tar.exitCode > 1 || tar.timedOut) throw new ExoDeployError(`${exec.host.name}: archiving ${stateDir} failed: ${tar.stderr.trim()}`, ExitCode.failed, { host: exec.host.name });
    files.push(STATE_ARCHIVE);
  }
  if (o.flakeLock !== null) {
    await exec.must(writeFileArgv(path.posix.join(partial, FLAKE_LOCK)), { ...root, input: o.flakeLock });
    files.push(FLAKE_LOCK);
  }
  const meta: BackupMeta = {
    id,
    host: exec.host.name,
    createdAt: o.now.toISOString(),
    reason: o.reason,
    systemPath: o.system.running,
    generation: current?.number ?? o.system.profileGeneration,
    exo: current?.exo ?? 'unknown',
    healthy: o.healthy,
    stateDir,
    files: [...files, META_FILE],
    models: o.models,
  };
  await exec.must(writeFileArgv(path.posix.join(partial, META_FILE)), { ...root, input: `${JSON.stringify(meta, null, 2)}\n` });
  const sums = await exec.must(inDirArgv(partial, ['sha256sum', '--', ...meta.files]), root);
  await exec.must(writeFileArgv(path.posix.join(partial, MANIFEST_FILE)), { ...root, input: sums.stdout });
  if (meta.systemPath) {
    // Pin the system: a GC root outside the backup folder, so it holds wherever the folder moves.
    await exec.must(mkdirArgv(GC_ROOTS_DIR), root);
    await exec.must(symlinkArgv(meta.systemPath, path.posix.join(GC_ROOTS_DIR, id)), root);
    await exec.must(symlinkArgv(meta.systemPath, path.posix.join(partial, 'system')), root);
  }
  await exec.must(inDirArgv(partial, ['sync', '--', ...meta.files, MANIFEST_FILE]), root);
  await exec.must(renameArgv(partial, final), root);
  await exec.must(syncArgv(o.dir), root);
  return meta;
}

export interface BackupListing {
  backups: BackupMeta[];
  /** Folders of backups that never completed (an interrupted create). */
  partial: string[];
}

export async function listBackups(exec: Executor, dir: string): Promise<BackupListing> {
  const ls = await exec.run(listDirArgv(dir), { root: true });
  if (ls.exitCode !== 0) return { backups: [], partial: [] };
  const names = ls.stdout.split('\n').filter(Boolean);
  const ids = names.filter((n) => BACKUP_ID.test(n)).sort().reverse();
  const metas = ids.length ? parseReadFiles((await exec.run(readFilesArgv(ids.map((id) => path.posix.join(dir, id, META_FILE))), { root: true })).stdout) : new Map<string, string>();
  const backups = [...metas.values()].flatMap((text) => {
    try {
      return [BackupMeta.parse(JSON.parse(text))];
    } catch {
      return [];
    }
  });
  return { backups: backups.sort((a, b) => b.id.localeCompare(a.id)), partial: names.filter((n) => n.startsWith(PARTIAL_PREFIX)) };
}

/** Which backups prune removes: beyond the newest `keep`, but never the newest one taken
 * from a healthy system (the last known-good). Newest first in, pure, unit-tested. */
export function backupsToPrune(backups: readonly BackupMeta[], keep: number): BackupMeta[] {
  const sorted = [...backups].sort((a, b) => b.id.localeCompare(a.id));
  const lastGood = sorted.find((b) => b.healthy);
  return sorted.slice(keep).filter((b) => b !== lastGood);
}

export async function pruneBackups(exec: Executor, dir: string, keep: number): Promise<{ removed: string[]; kept: string[]; partialRemoved: string[] }> {
  const { backups } = await listBackups(exec, dir);
  const doomed = backupsToPrune(backups, keep);
  for (const b of doomed) {
    await exec.must(removeArgv(path.posix.join(dir, b.id), path.posix.join(GC_ROOTS_DIR, b.id)), { root: true, mutates: true });
  }
  // Interrupted creates older than a day: no run can still be writing them.
  const stale = await exec.run(['find', dir, '-mindepth', '1', '-maxdepth', '1', '-name', `${PARTIAL_PREFIX}*`, '-mmin', '+1440', '-print', '-exec', 'rm', '-rf', '--', '{}', '+'], { root: true, mutates: true });
  const partialRemoved = stale.stdout.split('\n').filter(Boolean).map((p) => path.posix.basename(p));
  return { removed: doomed.map((b) => b.id), kept: backups.filter((b) => !doomed.includes(b)).map((b) => b.id), partialRemoved };
}

export async function verifyBackup(exec: Executor, dir: string, id: string): Promise<BackupMeta> {
  if (!BACKUP_ID.test(id)) throw usageError(`"${id}" is not a backup id (they look like 20261128-031500-123)`, 'see `exo-deploy backup list`');
  const folder = path.posix.join(dir, id);
  if ((await exec.run(existsArgv(path.posix.join(folder, MANIFEST_FILE)), { root: true })).exitCode !== 0) {
    throw usageError(`${exec.host.name}: there is no backup ${id} in ${dir}`, 'see `exo-deploy backup list`');
  }
  const check = await exec.run(inDirArgv(folder, ['sha256sum', '--check', '--strict', '--quiet', MANIFEST_FILE]), { root: true });
  if (check.exitCode !== 0) {
    throw new ExoDeployError(`${exec.host.name}: backup ${id} does not match its manifest: ${(check.stdout + check.stderr).trim()}`, ExitCode.failed, {
      host: exec.host.name,
      hint: 'the backup is damaged; choose another with `exo-deploy backup list`',
    });
  }
  const text = parseReadFiles((await exec.must(readFilesArgv([path.posix.join(folder, META_FILE)]), { root: true })).stdout);
  return BackupMeta.parse(JSON.parse([...text.values()][0] ?? '{}'));
}

/** Puts exo's state back: stop exo, move the current state aside, unpack, start exo. */
export async function restoreState(exec: Executor, dir: string, meta: BackupMeta, now: Date): Promise<{ movedAside: string | null }> {
  const root = { root: true, mutates: true } as const;
  const unit = exec.host.unit;
  if (!meta.files.includes(STATE_ARCHIVE)) return { movedAside: null };
  const aside = `${meta.stateDir}.before-restore-${backupId(now)}`;
  await exec.must(['systemctl', 'stop', unit], root);
  const existed = (await exec.run(existsArgv(meta.stateDir), { root: true })).exitCode === 0;
  if (existed) await exec.must(renameArgv(meta.stateDir, aside), root);
  await exec.must(mkdirArgv(meta.stateDir), root);
  await exec.must(['tar', '-C', meta.stateDir, '-xzf', path.posix.join(dir, meta.id, STATE_ARCHIVE)], root);
  await exec.must(['systemctl', 'start', unit], root);
  return { movedAside: existed ? aside : null };
}
