// exo-deploy status: each host's generation, exo version, whether it runs a `test`
// activation or what it has not booted yet, exo's state and health, and what the last deploy
// left it as.
import type { Context } from '../context.js';
import { lastDeployThatChanged, type JournalledDeploy } from '../deploy/journal.js';
import { leftOnNewSystem } from '../deploy/record.js';
import { ExitCode, ExoDeployError } from '../errors.js';
import { checkHost } from '../health/check.js';
import { checkOptions } from '../steps/check-hosts.js';
import { shortPath, table } from '../output/format.js';
import type { Outcome } from '../output/outcome.js';
import { parseConfigRevision, readSystemState } from '../system/generations.js';
import {
  readBootedParts,
  readBootLinks,
  rebootReasons,
  type BootedSystem,
} from '../system/reboot.js';
import type { Executor } from '../run/executor.js';
import { gitCountArgv } from '../programs/git.js';

export interface HostStatus {
  host: string;
  reachable: boolean;
  generation: number | null;
  /** The identity of the exo the running system carries. */
  exo: string;
  running: string | null;
  /** The running system is not the profile's: a `test` activation, not permanent. */
  testActivation: boolean;
  exoState: string;
  healthy: boolean | null;
  problems: string[];
  lastDeploy: { run: string; phase: string; outcome: string | null } | null;
  /** What of the running system the host has not booted (its kernel, initrd, modules or GPU
   * driver, each as booted → running): loaded only by a reboot. []: nothing; null: unknown. */
  awaitingReboot: string[] | null;
  /** The config revision the running system was built from, and how it stands against the
   * config repository's HEAD; null: the system does not record one. */
  config: ConfigRevision | null;
}

export interface ConfigRevision {
  /** As recorded: a commit, "COMMIT-dirty", or "dirty" (uncommitted changes on a commit Nix
   * did not name). */
  revision: string;
  /** The commit it names; null: none ("dirty"). */
  commit: string | null;
  dirty: boolean;
  /** Commits of HEAD the system lacks, and commits of the system's HEAD lacks; null: not known
   * (no commit recorded, or one this repository does not have). */
  behind: number | null;
  ahead: number | null;
}

export async function run(ctx: Context): Promise<Outcome> {
  const last = await lastDeployThatChanged(ctx.config.stateDir);
  const hosts = await Promise.all(ctx.hosts.map((h) => hostStatus(ctx, h, last)));
  await placeRevisions(ctx, hosts);
  const rows = [
    ['HOST', 'REACHABLE', 'GEN', 'EXO', 'CONFIG', 'RUNNING', 'EXO STATE', 'HEALTH', 'LAST DEPLOY'],
  ];
  for (const s of hosts) {
    rows.push([
      s.host,
      s.reachable ? 'yes' : 'NO',
      s.generation === null ? '-' : String(s.generation),
      s.exo,
      describeRevision(s.config),
      s.running ? `${shortPath(s.running)}${s.testActivation ? ' (test activation)' : ''}` : '-',
      s.exoState,
      s.healthy === null ? '?' : s.healthy ? 'healthy' : `UNHEALTHY: ${s.problems[0] ?? ''}`,
      s.lastDeploy ? `${s.lastDeploy.phase} (${s.lastDeploy.run})` : '-',
    ]);
  }
  const awaiting = hosts
    .filter((s) => s.awaitingReboot?.length)
    .map(
      (s) =>
        `${s.host}: runs what it has not booted (${s.awaitingReboot?.join('; ')}): the next reboot loads it`,
    );
  const text = [
    table(rows),
    ...(awaiting.length ? [awaiting.join('\n')] : []),
    ...(last ? [describeRun(last)] : ['no deploy has run from this config yet']),
  ].join('\n\n');
  const healthy = hosts.every((h) => h.healthy && !h.testActivation);
  return {
    exitCode: healthy ? ExitCode.ok : ExitCode.failed,
    data: { hosts, lastRun: last && { ...last, hosts: Object.fromEntries(last.hosts) } },
    text,
  };
}

async function hostStatus(
  ctx: Context,
  host: Context['hosts'][number],
  last: JournalledDeploy | null,
): Promise<HostStatus> {
  const exec = ctx.executor(host);
  const inRun = last?.hosts.get(host.name);
  const status: HostStatus = {
    host: host.name,
    reachable: true,
    generation: null,
    exo: 'unknown',
    running: null,
    testActivation: false,
    exoState: '?',
    healthy: null,
    problems: [],
    lastDeploy: inRun && last ? { run: last.id, phase: inRun.phase, outcome: last.outcome } : null,
    awaitingReboot: null,
    config: null,
  };
  try {
    const [state, check, booted] = await Promise.all([
      readSystemState(exec),
      checkHost(
        exec,
        checkOptions(ctx, { sinceMs: ctx.now() - 10 * 60_000, sinceProcessStart: true }),
        ['unit', 'api', 'journal'],
      ),
      readBootedParts(exec),
    ]);
    const current = state.generations.find((g) => g.current);
    status.generation = current?.number ?? null;
    status.running = state.running;
    status.testActivation = state.running !== null && current?.path !== state.running;
    status.exo =
      state.generations.find((g) => g.running)?.exo ??
      state.runningRelease?.identity ??
      (status.testActivation ? 'test activation' : 'unknown');
    const revision = state.runningRelease?.configRevision ?? null;
    if (revision)
      status.config = { revision, ...parseConfigRevision(revision), behind: null, ahead: null };
    status.awaitingReboot = state.running
      ? await notBooted(exec, booted, state.running, state.runningRelease?.gpuDriver ?? null)
      : null;
    status.exoState = check.unit ? `${check.unit.activeState}/${check.unit.subState}` : '?';
    status.healthy = check.healthy;
    status.problems = check.problems;
  } catch (error) {
    if (!(error instanceof ExoDeployError)) throw error;
    status.reachable = false;
    status.problems = [error.message];
  }
  return status;
}

function describeRun(r: JournalledDeploy): string {
  const unfinished = [...r.hosts].filter(([, h]) => leftOnNewSystem(h.phase));
  const lines = [
    `last deploy ${r.id} (${r.command}): ${r.outcome ?? `did not finish (no end in its journal; PID ${r.pid ?? '?'})`}`,
  ];
  if (r.outcome === null && r.lastStep)
    lines.push(
      `  last step written: ${r.lastStep.step} ${r.lastStep.host ?? ''} ${r.lastStep.ok ? 'ok' : 'FAILED'} at ${r.lastStep.at}`,
    );
  const armed = [...r.hosts].filter(([, h]) => h.revertTimer?.state === 'armed');
  const [guards, timers] = [true, false].map((guard) =>
    armed
      .filter(([, h]) => h.revertTimer?.rebootGuard === guard)
      .map(([n, h]) => `${n} (${h.revertTimer?.unit})`),
  ) as [string[], string[]];
  if (timers.length)
    lines.push(
      `  revert timers it left armed: ${timers.join(', ')}: each host puts itself back on the system it ran before when its timer fires`,
    );
  if (guards.length)
    lines.push(
      `  reboot guards it left: ${guards.join(', ')}: each host, once it has booted the new system, boots the system it ran before again when its guard's timer fires`,
    );
  if (r.outcome !== 'success' && unfinished.length) {
    lines.push(
      `  hosts it left on a new system: ${unfinished.map(([n, h]) => `${n} (${h.phase})`).join(', ')}`,
    );
    lines.push('  `exo-deploy rollback --last` returns them to the systems they ran before');
  }
  return lines.join('\n');
}

/** What of the running system differs from what the host booted, as a deploy judges a reboot. */
async function notBooted(
  exec: Executor,
  booted: BootedSystem | null,
  running: string,
  gpuDriver: string | null,
): Promise<string[] | null> {
  const runningLinks = (await readBootLinks(exec, [running])).get(running);
  return runningLinks ? rebootReasons(booted, { ...runningLinks, gpuDriver }) : null;
}

/** Where each host's config commit stands against the config repository's HEAD, counted once
 * per commit; nothing when the config is not a git checkout here. */
async function placeRevisions(ctx: Context, hosts: readonly HostStatus[]): Promise<void> {
  const commits = new Set(hosts.flatMap((h) => (h.config?.commit ? [h.config.commit] : [])));
  if (!ctx.config.flakeIsPath || commits.size === 0) return;
  const { git } = ctx.config.programs;
  const count = async (from: string, to: string) => {
    const r = await ctx.deployer.run(gitCountArgv(git, ctx.config.flake, from, to));
    return r.exitCode === 0 ? Number(r.stdout.trim()) : null;
  };
  const placed = new Map(
    await Promise.all(
      [...commits].map(
        async (c) =>
          [c, { behind: await count(c, 'HEAD'), ahead: await count('HEAD', c) }] as const,
      ),
    ),
  );
  for (const h of hosts) {
    const commit = h.config?.commit;
    const place = commit ? placed.get(commit) : undefined;
    if (h.config && place && place.behind !== null && place.ahead !== null)
      Object.assign(h.config, place);
  }
}

function describeRevision(c: ConfigRevision | null): string {
  if (!c) return '-';
  const name = c.commit ? `${c.commit.slice(0, 7)}${c.dirty ? '-dirty' : ''}` : c.revision;
  if (c.behind === null || c.ahead === null) return name;
  const where = [
    ...(c.behind ? [`${c.behind} behind`] : []),
    ...(c.ahead ? [`${c.ahead} ahead`] : []),
  ];
  return `${name} (${where.length ? where.join(', ') : 'at HEAD'})`;
}
