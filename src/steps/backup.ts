// A backup of one host: the running system, flake.lock and exo's state. `backup create`
// runs it for each host; a deploy runs it before activating anything.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createBackup } from '../backup/backups.js';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { checkHost } from '../health/check.js';
import { checkOptions } from './check-hosts.js';
import { readSystemState, type SystemState } from '../system/generations.js';

/** models: also exo's models (the config's [backup] models says so too). healthy and
 * knownSystem: known from what the caller read (a deploy's preflight and record), or read now. */
export async function backupHost(
  ctx: Context,
  host: Host,
  reason: string,
  {
    models = false,
    healthy,
    knownSystem,
  }: { models?: boolean; healthy?: boolean; knownSystem?: SystemState } = {},
) {
  const exec = ctx.executor(host);
  const system = knownSystem ?? (await readSystemState(exec));
  const known =
    healthy ??
    (await checkHost(exec, checkOptions(ctx, { sinceMs: ctx.now() - 60_000 }), ['unit', 'api']))
      .healthy;
  const flakeLock =
    ctx.config.flakeIsPath && ctx.config.file
      ? await readFile(path.join(ctx.config.flake, 'flake.lock'), 'utf8').catch(() => null)
      : null;
  return createBackup(exec, {
    dir: ctx.config.backup.dir,
    system,
    healthy: known,
    reason,
    models: models || ctx.config.backup.models,
    flakeLock,
    timeoutMs: ctx.config.timeouts.build,
    now: new Date(ctx.now()),
  });
}
