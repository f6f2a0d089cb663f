// exo-deploy backup create|list|prune|restore ID
import { listBackups, pruneBackups, restoreState, verifyBackup } from '../backup/backups.js';
import { acquireDeployLock } from '../deploy/lock.js';
import { HostMarkers } from '../deploy/host-marker.js';
import { timestampId } from '../time-id.js';
import { backupHost } from '../steps/backup.js';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { table } from '../output/format.js';
import type { Outcome } from '../output/outcome.js';

const ACTIONS = ['create', 'list', 'prune', 'restore'] as const;
type Action = (typeof ACTIONS)[number];

export async function run(ctx: Context): Promise<Outcome> {
  const [action, ...rest] = ctx.positionals;
  if (!ACTIONS.includes(action as Action))
    throw usageError(
      `backup needs one of ${ACTIONS.join(', ')}${action ? `, not "${action}"` : ''}`,
    );
  switch (action as Action) {
    case 'create':
      return create(ctx);
    case 'list':
      return list(ctx);
    case 'prune':
      return prune(ctx);
    case 'restore':
      return restore(ctx, rest[0]);
  }
}

async function create(ctx: Context): Promise<Outcome> {
  const metas = await Promise.all(
    ctx.hosts.map((h) =>
      backupHost(ctx, h, ctx.local ? 'timer' : 'manual', { models: Boolean(ctx.options.models) }),
    ),
  );
  return {
    exitCode: ExitCode.ok,
    data: { backups: metas },
    text: metas
      .map(
        (m) =>
          `${m.host}: backup ${m.id} in ${ctx.config.backup.dir} (generation ${m.generation ?? '?'}, exo ${m.exo}, ${m.healthy ? 'healthy' : 'not healthy'}; ${m.files.join(', ')})`,
      )
      .join('\n'),
  };
}

async function list(ctx: Context): Promise<Outcome> {
  const listings = await Promise.all(
    ctx.hosts.map(async (h) => ({
      host: h.name,
      ...(await listBackups(ctx.executor(h), ctx.config.backup.dir)),
    })),
  );
  const text = listings.map((l) => {
    const rows = [
      ['ID', 'CREATED', 'GEN', 'EXO', 'HEALTHY', 'REASON'],
      ...l.backups.map((b) => [
        b.id,
        b.createdAt,
        String(b.generation ?? '?'),
        b.exo,
        b.healthy ? 'yes' : 'no',
        b.reason,
      ]),
    ];
    const partial = l.partial.length
      ? `\ninterrupted (incomplete, not restorable): ${l.partial.join(', ')}`
      : '';
    return `${l.host}: ${l.backups.length} backup(s) in ${ctx.config.backup.dir}\n${l.backups.length ? table(rows) : ''}${partial}`;
  });
  return { exitCode: ExitCode.ok, data: { hosts: listings }, text: text.join('\n\n') };
}

async function prune(ctx: Context): Promise<Outcome> {
  const keep = ctx.config.backup.keep;
  const results = await Promise.all(
    ctx.hosts.map(async (h) => ({
      host: h.name,
      ...(await pruneBackups(ctx.executor(h), ctx.config.backup.dir, keep)),
    })),
  );
  return {
    exitCode: ExitCode.ok,
    data: { keep, hosts: results },
    text: results
      .map(
        (r) =>
          `${r.host}: removed ${r.removed.length} (${r.removed.join(', ') || 'none'}), kept ${r.kept.length}${r.partialRemoved.length ? `, removed interrupted ${r.partialRemoved.join(', ')}` : ''}`,
      )
      .join('\n'),
  };
}

async function restore(ctx: Context, id: string | undefined): Promise<Outcome> {
  if (!id) throw usageError('backup restore needs a backup ID', 'see `exo-deploy backup list`');
  if (ctx.hosts.length !== 1)
    throw usageError(
      'a backup belongs to one host: name it with --hosts',
      `hosts: ${ctx.hosts.map((h) => h.name).join(', ')}`,
    );
  const host = ctx.hosts[0] as Host;
  const exec = ctx.executor(host);
  const meta = await verifyBackup(exec, ctx.config.backup.dir, id);
  // no deploy (from here or elsewhere) changes the host while its state is swapped
  const lock = await acquireDeployLock(
    ctx.config.stateDir,
    `backup restore ${id} --hosts ${host.name}`,
    ctx.log,
  );
  const markers = new HostMarkers(ctx, `restore-${timestampId(new Date(ctx.now()))}`);
  let movedAside: string | null;
  try {
    await markers.place([host]);
    ctx.log.info(
      `${host.name}: backup ${id} matches its manifest; restoring exo's state into ${host.exoStateDir}`,
    );
    ({ movedAside } = await restoreState(
      exec,
      ctx.config.backup.dir,
      id,
      meta,
      new Date(ctx.now()),
    ));
  } finally {
    if (!ctx.signal.aborted) await markers.remove();
    await lock.release();
  }
  const lines = [
    `${host.name}: restored exo's state from ${id} (taken ${meta.createdAt}, exo ${meta.exo})`,
    movedAside ? `the state it replaced is kept in ${movedAside}` : 'there was no state to replace',
    meta.generation !== null
      ? `the system of that time was generation ${meta.generation} (${meta.systemPath}): \`exo-deploy rollback --hosts ${host.name} --to ${meta.generation}\` activates it`
      : '',
  ];
  return {
    exitCode: ExitCode.ok,
    data: { restored: meta, movedAside },
    text: lines.filter(Boolean).join('\n'),
  };
}
