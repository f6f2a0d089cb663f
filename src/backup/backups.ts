// Backups on a host: create, list, prune, restore. Every step is a plain program run through
// the host's executor, so the same code serves this machine and hosts over ssh.
import path from 'node:path';
import { ExoDeployError, ExitCode, usageError } from '../errors.js';
import {
  dfArgv,
  duArgv,
  existsArgv,
  inDirArgv,
  listDirArgv,
  mkdirArgv,
  parseDf,
  privateDirArgv,
  parseDuBytes,
  parseReadFiles,
  readFilesArgv,
  readlinkArgv,
  removeArgv,
  renameArgv,
  symlinkArgv,
  syncArgv,
  writeFileArgv,
} from '../programs/coreutils.js';
import { lastLines, type Executor } from '../run/executor.js';
import type { SystemState } from '../system/generations.js';
import {
  BACKUP_ID,
  BackupMeta,
  FLAKE_LOCK,
  GC_ROOTS_DIR,
  MANIFEST_FILE,
  META_FILE,
  MODELS_DIR,
  PARTIAL_PREFIX,
  STATE_ARCHIVE,
  STATE_EXCLUDES,
  backupId,
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
  const id = backupId(o.now);
  const where: Where = {
    id,
    partial: path.posix.join(o.dir, `${PARTIAL_PREFIX}${id}`),
    final: path.posix.join(o.dir, id),
    gcRoot: path.posix.join(GC_ROOTS_DIR, id),
  };
  // private whatever the folder above allows: the state may hold secrets
  await exec.must(privateDirArgv(where.partial), ROOT);
  try {
    return await writeBackup(exec, o, where);
  } catch (error) {
    // nothing half-made stays: neither the folder nor the GC root of a backup that is not there
    await exec.run(removeArgv(where.partial, where.gcRoot), ROOT);
    throw error;
  }
}

const ROOT = { root: true, mutates: true } as const;

interface Where {
  id: string;
  /** Where it is written, and where it is renamed to once whole. */
  partial: string;
  final: string;
  gcRoot: string;
}

/** Where exo's state really is. With a DynamicUser it is under /var/lib/private (0700):
 * resolved, tested and archived as root, or a sudo host's backup would silently hold no state. */
async function liveStateDir(exec: Executor): Promise<string> {
  return (
    (await exec.must(readlinkArgv([exec.host.exoStateDir]), { root: true })).stdout.trim() ||
    exec.host.exoStateDir
  );
}

async function writeBackup(
  exec: Executor,
  o: CreateOptions,
  { id, partial, final, gcRoot }: Where,
): Promise<BackupMeta> {
  const stateDir = await liveStateDir(exec);
  const current = o.system.generations.find((g) => g.running) ?? null;
  const files: string[] = [];
  if ((await exec.run(existsArgv(stateDir), { root: true })).exitCode === 0) {
    const left = [...STATE_EXCLUDES, ...(o.models ? [] : [MODELS_DIR])];
    await mustHaveRoom(exec, stateDir, left, o.dir);
    const excludes = left.map((e) => `--exclude=./${e}`);
    const tar = await exec.run(
      ['tar', '-C', stateDir, '-czf', path.posix.join(partial, STATE_ARCHIVE), ...excludes, '.'],
      { ...ROOT, timeoutMs: o.timeoutMs },
    );
    // GNU tar exits 1 when a file changed while it was read (exo writes logs): the archive is whole.
    if (tar.exitCode > 1 || tar.timedOut)
      throw new ExoDeployError(
        `${exec.host.name}: archiving ${stateDir} failed: ${tar.stderr.trim()}`,
        ExitCode.failed,
        { host: exec.host.name },
      );
    files.push(STATE_ARCHIVE);
  }
  if (o.flakeLock !== null) {
    await exec.must(writeFileArgv(path.posix.join(partial, FLAKE_LOCK)), {
      ...ROOT,
      input: o.flakeLock,
    });
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
  await exec.must(writeFileArgv(path.posix.join(partial, META_FILE)), {
    ...ROOT,
    input: `${JSON.stringify(meta, null, 2)}\n`,
  });
  const sums = await exec.must(inDirArgv(partial, ['sha256sum', '--', ...meta.files]), ROOT);
  await exec.must(writeFileArgv(path.posix.join(partial, MANIFEST_FILE)), {
    ...ROOT,
    input: sums.stdout,
  });
  if (meta.systemPath) {
    // Pin the system: a GC root outside the backup folder, so it holds wherever the folder moves.
    await exec.must(mkdirArgv(GC_ROOTS_DIR), ROOT);
    await exec.must(symlinkArgv(meta.systemPath, gcRoot), ROOT);
    await exec.must(symlinkArgv(meta.systemPath, path.posix.join(partial, 'system')), ROOT);
  }
  await exec.must(inDirArgv(partial, ['sync', '--', ...meta.files, MANIFEST_FILE]), ROOT);
  await exec.must(renameArgv(partial, final), ROOT);
  // the backup is whole from here on: a failing sync must not undo it
  await exec.run(syncArgv(o.dir), ROOT);
  return meta;
}

/** Room for the archive before it is written: at most the state's size, uncompressed, plus a
 * margin, free where the backups go. */
const ROOM_MARGIN_BYTES = 64 * 1024 ** 2;
async function mustHaveRoom(
  exec: Executor,
  stateDir: string,
  excludes: readonly string[],
  dir: string,
): Promise<void> {
  const [du, df] = await Promise.all([
    exec.run(duArgv(stateDir, excludes), { root: true }),
    exec.run(dfArgv([dir]), { root: true }),
  ]);
  if (du.exitCode !== 0 || df.exitCode !== 0) return; // the archive itself will tell
  const needed = parseDuBytes(du.stdout) + ROOM_MARGIN_BYTES;
  const free = parseDf(df.stdout, [dir])[0]?.availableBytes ?? Infinity;
  if (free < needed) {
    const gib = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;
    throw new ExoDeployError(
      `${exec.host.name}: no room for a backup in ${dir}: exo's state is up to ${gib(needed - ROOM_MARGIN_BYTES)} to archive, ${gib(free)} free there`,
      ExitCode.failed,
      {
        host: exec.host.name,
        hint: `\`exo-deploy backup prune\`, or set [backup] dir to a filesystem with room`,
      },
    );
  }
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
  const ids = names
    .filter((n) => BACKUP_ID.test(n))
    .sort()
    .reverse();
  const metas = ids.length
    ? parseReadFiles(
        (
          await exec.run(readFilesArgv(ids.map((id) => path.posix.join(dir, id, META_FILE))), {
            root: true,
          })
        ).stdout,
      )
    : new Map<string, string>();
  // A backup is its folder: its id is the folder's name, whatever backup.json says (prune
  // removes by id, and an id like "../x" must not name anything else).
  const backups = ids.flatMap((id) => {
    try {
      return [
        {
          ...BackupMeta.parse(JSON.parse(metas.get(path.posix.join(dir, id, META_FILE)) ?? '')),
          id,
        },
      ];
    } catch {
      return [];
    }
  });
  return {
    backups: backups.sort((a, b) => b.id.localeCompare(a.id)),
    partial: names.filter((n) => n.startsWith(PARTIAL_PREFIX)),
  };
}

/** Which backups prune removes: beyond the newest `keep`, but never the newest one taken
 * from a healthy system (the last known-good). Pure. */
export function backupsToPrune(backups: readonly BackupMeta[], keep: number): BackupMeta[] {
  const sorted = [...backups].sort((a, b) => b.id.localeCompare(a.id));
  const lastGood = sorted.find((b) => b.healthy);
  return sorted.slice(keep).filter((b) => b !== lastGood);
}

export async function pruneBackups(
  exec: Executor,
  dir: string,
  keep: number,
): Promise<{ removed: string[]; kept: string[]; partialRemoved: string[] }> {
  const { backups } = await listBackups(exec, dir);
  const doomed = backupsToPrune(backups, keep);
  for (const b of doomed) {
    await exec.must(removeArgv(path.posix.join(dir, b.id), path.posix.join(GC_ROOTS_DIR, b.id)), {
      root: true,
      mutates: true,
    });
  }
  // Interrupted creates older than a day: no run can still be writing them.
  const stale = await exec.run(
    [
      'find',
      dir,
      '-mindepth',
      '1',
      '-maxdepth',
      '1',
      '-name',
      `${PARTIAL_PREFIX}*`,
      '-mmin',
      '+1440',
      '-print',
      '-exec',
      'rm',
      '-rf',
      '--',
      '{}',
      '+',
    ],
    { root: true, mutates: true },
  );
  const partialRemoved = stale.stdout
    .split('\n')
    .filter(Boolean)
    .map((p) => path.posix.basename(p));
  return {
    removed: doomed.map((b) => b.id),
    kept: backups.filter((b) => !doomed.includes(b)).map((b) => b.id),
    partialRemoved,
  };
}

export async function verifyBackup(exec: Executor, dir: string, id: string): Promise<BackupMeta> {
  if (!BACKUP_ID.test(id))
    throw usageError(
      `"${id}" is not a backup id (they look like 20261128-031500-123)`,
      'see `exo-deploy backup list`',
    );
  const folder = path.posix.join(dir, id);
  if (
    (await exec.run(existsArgv(path.posix.join(folder, MANIFEST_FILE)), { root: true }))
      .exitCode !== 0
  ) {
    throw usageError(
      `${exec.host.name}: there is no backup ${id} in ${dir}`,
      'see `exo-deploy backup list`',
    );
  }
  const check = await exec.run(
    inDirArgv(folder, ['sha256sum', '--check', '--strict', '--quiet', MANIFEST_FILE]),
    { root: true },
  );
  if (check.exitCode !== 0) {
    throw new ExoDeployError(
      `${exec.host.name}: backup ${id} does not match its manifest: ${(check.stdout + check.stderr).trim()}`,
      ExitCode.failed,
      {
        host: exec.host.name,
        hint: 'the backup is damaged; choose another with `exo-deploy backup list`',
      },
    );
  }
  const text = parseReadFiles(
    (await exec.must(readFilesArgv([path.posix.join(folder, META_FILE)]), { root: true })).stdout,
  );
  return BackupMeta.parse(JSON.parse([...text.values()][0] ?? '{}'));
}

/**
 * Puts exo's state back without ever leaving exo stopped on half a folder: the archive is
 * unpacked beside the live state first (same filesystem; exo still runs, and a damaged archive
 * or a full disk changes nothing), then, with exo stopped, the live state is renamed aside and
 * the unpacked one renamed in; exo is started again whatever happened. The folder is the one
 * the host's exo_state_dir resolves to now, and the backup the one named `id`, not what
 * backup.json says.
 */
export async function restoreState(
  exec: Executor,
  dir: string,
  id: string,
  meta: BackupMeta,
  now: Date,
): Promise<{ movedAside: string | null }> {
  const root = { root: true, mutates: true } as const;
  const host = exec.host.name;
  const unit = exec.host.unit;
  if (!meta.files.includes(STATE_ARCHIVE)) return { movedAside: null };
  const stateDir = await liveStateDir(exec);
  const stamp = backupId(now);
  const incoming = `${stateDir}.restoring-${stamp}`;
  const aside = `${stateDir}.before-restore-${stamp}`;

  await exec.must(mkdirArgv(incoming), root);
  const unpacked = await exec.run(
    ['tar', '-C', incoming, '-xzf', path.posix.join(dir, id, STATE_ARCHIVE)],
    root,
  );
  if (unpacked.exitCode !== 0 || unpacked.timedOut) {
    await exec.run(removeArgv(incoming), root);
    throw new ExoDeployError(
      `${host}: unpacking backup ${id} failed; nothing was changed, exo runs on: ${lastLines(unpacked.stderr, 3) || `tar exited ${unpacked.exitCode}`}`,
      ExitCode.failed,
      {
        host,
        hint: `is there room beside ${stateDir}? (df -h ${path.posix.dirname(stateDir)})`,
      },
    );
  }

  await exec.must(['systemctl', 'stop', unit], root);
  let movedAside: string | null = null;
  try {
    if ((await exec.run(existsArgv(stateDir), { root: true })).exitCode === 0) {
      await exec.must(renameArgv(stateDir, aside), root);
      movedAside = aside;
    }
    await exec.must(renameArgv(incoming, stateDir), root);
  } catch (error) {
    // the live state back where it was, whatever of this failed
    if (movedAside && (await exec.run(existsArgv(stateDir), { root: true })).exitCode !== 0) {
      if ((await exec.run(renameArgv(aside, stateDir), root)).exitCode === 0) movedAside = null;
    }
    await exec.run(removeArgv(incoming), root);
    await exec.run(['systemctl', 'start', unit], root);
    const where = movedAside
      ? `the state it ran with is in ${movedAside}`
      : `the state it ran with is back in ${stateDir}`;
    throw new ExoDeployError(
      `${host}: restoring backup ${id} failed (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); ${where}, and exo was started again`,
      ExitCode.failed,
      { host },
    );
  }
  const started = await exec.run(['systemctl', 'start', unit], root);
  if (started.exitCode !== 0) {
    throw new ExoDeployError(
      `${host}: exo's state is restored from ${id} (the state it replaced is in ${movedAside ?? 'nowhere: there was none'}), but ${unit} did not start: ${started.stderr.trim()}`,
      ExitCode.failed,
      {
        host,
        hint: `see \`journalctl -u ${unit}\` on ${host}`,
      },
    );
  }
  return { movedAside };
}
