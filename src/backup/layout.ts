// How backups lie on a host: DIR/ID/{backup.json,flake.lock,state.tar.gz,manifest.sha256,system}.
// A backup is built in DIR/.partial-ID and renamed when complete, so an interrupted one never
// shows in the list; the system it records is pinned by a GC root.
import * as z from 'zod';

export const PARTIAL_PREFIX = '.partial-';
export const GC_ROOTS_DIR = '/nix/var/nix/gcroots/exo-deploy-backups';
export const META_FILE = 'backup.json';
export const MANIFEST_FILE = 'manifest.sha256';
export const STATE_ARCHIVE = 'state.tar.gz';
export const FLAKE_LOCK = 'flake.lock';

/** Left out of the state archive: large and re-downloadable, not worth keeping, or secret
 * (.cache holds Hugging Face's token as well as its download cache). */
export const STATE_EXCLUDES = ['event_log', 'exo_log', 'runner_log', 'exo.pid', 'cache', '.cache'];
export const MODELS_DIR = 'models';

/** exo: the identity of the exo the backed-up system ran (backups written before it was
 * named so carry it as exoVersion). */
export const BackupMeta = z.preprocess(
  (raw) => {
    const meta = raw as { exo?: unknown; exoVersion?: unknown } | null;
    return meta &&
      typeof meta === 'object' &&
      meta.exo === undefined &&
      meta.exoVersion !== undefined
      ? { ...meta, exo: meta.exoVersion }
      : raw;
  },
  z.object({
    id: z.string(),
    host: z.string(),
    createdAt: z.string(),
    reason: z.string(),
    systemPath: z.string().nullable(),
    generation: z.number().nullable(),
    exo: z.string(),
    healthy: z.boolean(),
    stateDir: z.string(),
    files: z.array(z.string()),
    models: z.boolean(),
  }),
);
export type BackupMeta = z.output<typeof BackupMeta>;

export { timestampId as backupId, TIMESTAMP_ID as BACKUP_ID } from '../time-id.js';
