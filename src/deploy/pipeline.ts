// The gated deploy: preflight → mark the hosts → record what they run → build → backup →
// copy (and what changes) → then per batch of the strategy: test → health gate → [smoke] →
// switch → final check. Any failure after an activation puts the touched hosts (rollback_scope)
// back on the exact systems they ran before. By default all hosts are one batch (lockstep): a
// cluster moves and is gated as one. Batches one after another (rolling, canary) mix old and new
// systems in one cluster for a while, which exo allows only within one era (libp2p or zenoh) and
// one namespace: then old and new nodes form one mixed-version cluster and each batch is gated
// as part of the whole cluster. Otherwise the batches would split it: refused without --force.
import path from 'node:path';
import { backupHost } from '../steps/backup.js';
import { checkHosts, checkOptions } from '../steps/check-hosts.js';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import type { Strategy } from '../config/schema.js';
import { ExitCode, ExoDeployError, usageError } from '../errors.js';
import { AFTER_ACTIVATION_PARTS, checkHost, judgeMembership, readPeer } from '../health/check.js';
import { buildOnTarget, buildSystems } from '../steps/build.js';
import { closureDiff, copyClosure } from '../steps/copy.js';
import { runHealthGate } from '../steps/health-gate.js';
import { activateBuilt } from '../steps/activate-built.js';
import { restoreHost } from '../steps/restore.js';
import { managedClusterApis, smokeSettings, smokeTest } from '../steps/smoke.js';
import {
  readReleases,
  readSystemState,
  type Release,
  type SystemState,
} from '../system/generations.js';
import { hostActivationProblems, unswitchableSystems } from '../system/activation-support.js';
import {
  chunks,
  clusterSplits,
  hostsToRollBack,
  mapLimit,
  planBatches,
  type RolloutSystem,
} from './plan.js';
import { timestampId } from '../time-id.js';
import { HostMarkers } from './host-marker.js';
import { journalFile, RunJournal } from './journal.js';
import { onNewSystem, Recorder, type HostRecord, type RunRecord } from './record.js';
import { RevertTimers } from './revert-timers.js';

const PREFLIGHT_WINDOW_MS = 10 * 60_000;

export function newRunRecord(ctx: Context, command: string): RunRecord {
  const startedAt = new Date(ctx.now());
  return {
    id: timestampId(startedAt),
    command,
    configFile: ctx.config.file ?? null,
    flake: ctx.config.flake,
    startedAt: startedAt.toISOString(),
    finishedAt: null,
    durationMs: null,
    outcome: null,
    exitCode: null,
    hosts: ctx.hosts.map((h) => ({
      host: h.name,
      before: {
        running: null,
        profileGeneration: null,
        profilePath: null,
        exo: 'unknown',
        healthy: null,
      },
      built: { systemPath: null, exo: null },
      backupId: null,
      diff: [],
      phase: 'pending',
      switchRestartedExo: null,
      revertTimer: null,
      finalCheck: null,
      problems: [],
    })),
    steps: [],
    gate: null,
    plan: null,
    error: null,
    reportFiles: null,
  };
}

/** What the deploy command was asked beyond the hosts: read where the command starts. */
export interface DeploySettings {
  strategy: Strategy;
  /** Roll out in batches even when they would not form one exo cluster. */
  force: boolean;
}

export async function runDeploy(
  ctx: Context,
  record: RunRecord,
  settings: DeploySettings,
): Promise<RunRecord> {
  const { dryRun } = ctx;
  const rec = new Recorder(
    record,
    ctx.log,
    ctx.now,
    dryRun ? null : new RunJournal(journalFile(ctx.config.stateDir, record.id)),
  );
  const runDir = path.join(ctx.config.stateDir, 'runs', record.id);
  const started = ctx.now();
  const progress: Progress = { batch: [] };
  let refusal: ExoDeployError | undefined;
  const markers = new HostMarkers(ctx, record.id);
  const timers = new RevertTimers(ctx, rec);
  await rec.journal?.append({
    type: 'run',
    id: record.id,
    command: record.command,
    hosts: ctx.hosts.map((h) => h.name),
    pid: process.pid,
  });
  try {
    await deploySteps(ctx, settings, rec, runDir, progress, markers, timers);
  } catch (error) {
    record.error = error instanceof Error ? error.message : String(error);
    if (ctx.signal.aborted) finish(record, 'interrupted', ExitCode.interrupted);
    // Nothing activated: a refusal (exit 2) or another deploy's marker (exit 4) keeps its
    // code, and is raised to the user as an error.
    else if (!record.hosts.some(touched)) {
      if (
        error instanceof ExoDeployError &&
        (error.exitCode === ExitCode.usage || error.exitCode === ExitCode.locked)
      )
        refusal = error;
      finish(record, 'failed', refusal ? refusal.exitCode : ExitCode.failed);
    } else await rollBackTouched(ctx, rec, progress.batch, timers);
  } finally {
    await timers.stopAll();
    if (!ctx.signal.aborted) await markers.remove();
    record.finishedAt = new Date(ctx.now()).toISOString();
    record.durationMs = ctx.now() - started;
    if (record.outcome !== null)
      await rec.journal?.append({
        type: 'end',
        outcome: record.outcome,
        exitCode: record.exitCode ?? 1,
      });
  }
  if (refusal) throw refusal;
  return record;
}

const touched = (h: HostRecord) => onNewSystem(h.phase);

/** Hosts that cannot activate a system or go back are refused before anything changes. */
function refuseUnfit(found: readonly { host: string; problems: string[] }[]): void {
  const unfit = found.filter((f) => f.problems.length);
  if (!unfit.length) return;
  throw usageError(
    `refusing to deploy: ${unfit.map((f) => `${f.host}: ${f.problems.join('; ')}`).join('\n  ')}`,
    "exo-deploy activates a system with its bin/switch-to-configuration, in a transient unit (systemd-run), and sets the profile with nix-env, as nixos-rebuild does: keep system.switch.enable = true (the default) and nix.enable = true in each host's configuration (a host that runs a system without switch-to-configuration needs one with it booted first: nixos-rebuild boot, then a reboot)",
  );
}

function finish(
  record: RunRecord,
  outcome: NonNullable<RunRecord['outcome']>,
  exitCode: number,
): void {
  record.outcome = outcome;
  record.exitCode = exitCode;
}

/** Runs fn for every host, at most max_parallel at once, and waits for all of them before
 * throwing the first failure: a host's step is never abandoned halfway because another failed. */
async function onEveryHost(
  hosts: readonly Host[],
  limit: number,
  fn: (h: Host) => Promise<unknown>,
): Promise<void> {
  const failure = (await mapLimit(hosts, limit, fn)).find(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failure) throw failure.reason;
}

/** Which batch is being activated: what the rollback scope "failed" means. */
interface Progress {
  batch: string[];
}

async function deploySteps(
  ctx: Context,
  settings: DeploySettings,
  rec: Recorder,
  runDir: string,
  progress: Progress,
  markers: HostMarkers,
  timers: RevertTimers,
): Promise<void> {
  const { run } = rec;
  const { dryRun } = ctx;
  const limit = ctx.config.rollout.max_parallel;
  const { strategy } = settings;

  // Health before the deploy is the running process's: a previous, rolled-back one's errors are history.
  const checks = await rec.step(
    'preflight',
    null,
    () => checkHosts(ctx, ctx.now() - PREFLIGHT_WINDOW_MS, true),
    (cs) =>
      cs
        .map((c) => `${c.host}: ${c.healthy ? 'healthy' : `not healthy: ${c.problems.join('; ')}`}`)
        .join('\n'),
  );
  for (const c of checks) {
    rec.host(c.host).before.healthy = c.healthy;
    if (!c.reachable)
      throw new ExoDeployError(`preflight: ${c.problems.join('; ')}`, ExitCode.failed, {
        host: c.host,
      });
    if (!c.compatibility.nix)
      throw new ExoDeployError(`preflight: ${c.host} has no working nix`, ExitCode.failed, {
        host: c.host,
      });
    if (!c.healthy)
      ctx.log.warn(
        `${c.host} is not healthy before the deploy (${c.problems[0]}); deploying anyway: a rollback returns it to this state`,
      );
  }
  refuseUnfit(
    await Promise.all(
      ctx.hosts.map(async (h) => ({
        host: h.name,
        problems: await hostActivationProblems(ctx.executor(h)),
      })),
    ),
  );

  if (!dryRun) await rec.step('mark hosts', null, () => markers.place(ctx.hosts));

  const systems = new Map<string, SystemState>();
  await rec.step('record', null, async () => {
    // Together, so that the journal writes the hosts' systems in one fsync, not one each.
    await Promise.all(
      ctx.hosts.map(async (h) => {
        const state = await readSystemState(ctx.executor(h));
        systems.set(h.name, state);
        const current = state.generations.find((g) => g.current);
        rec.host(state.host).before.exo = state.runningRelease?.identity ?? 'unknown';
        await rec.setBefore(state.host, {
          running: state.running,
          profileGeneration: state.profileGeneration,
          profilePath: current?.path ?? null,
        });
      }),
    );
  });

  // Build before backing up: a build that fails has then changed nothing anywhere. Hosts that
  // build their own systems do so at the same time as this machine builds the others'.
  const builtHere = ctx.hosts.filter((h) => h.buildOn === 'deployer');
  const builtThere = ctx.hosts.filter((h) => h.buildOn === 'target');
  const buildBatches = chunks(builtHere, ctx.config.build.hosts_per_evaluation);
  const builds = (
    await Promise.all([
      mapLimit(buildBatches, ctx.config.build.max_evaluations, (hosts, i) =>
        rec.step(
          'build',
          buildBatches.length === 1 && hosts.length === ctx.hosts.length
            ? null
            : hosts.map((h) => h.name).join(','),
          async () => {
            const built = await buildSystems(ctx, hosts, runDir, i);
            for (const [name, systemPath] of built.systems) await rec.setBuilt(name, systemPath);
            return built.output;
          },
          (out) => out,
        ),
      ),
      mapLimit(builtThere, limit, (h) =>
        rec.step(
          'build',
          h.name,
          async () => {
            const built = await buildOnTarget(ctx, h);
            await rec.setBuilt(h.name, built.systemPath);
            return built.output;
          },
          (out) => out,
        ),
      ),
    ])
  ).flat();
  const buildFailure = builds.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (buildFailure) throw buildFailure.reason;
  const builtPath = (h: Host) => rec.host(h.name).built.systemPath as string;
  // Where the systems are (here, or the hosts that built their own), both reads at once: the
  // executor runs reads issued together as one process.
  const readBuilt = (exec: ReturnType<Context['executor']>, paths: string[]) =>
    Promise.all([unswitchableSystems(exec, paths), readReleases(exec, paths)]);
  const reads = await Promise.all([
    readBuilt(ctx.deployer, builtHere.map(builtPath)),
    ...builtThere.map((h) => readBuilt(ctx.executor(h), [builtPath(h)])),
  ]);
  const unswitchable = reads.flatMap(([paths]) => paths);
  refuseUnfit(
    ctx.hosts
      .filter((h) => unswitchable.includes(builtPath(h)))
      .map((h) => ({
        host: h.name,
        problems: [
          `the system built for it (${builtPath(h)}) has no bin/switch-to-configuration (system.switch.enable = false): it could only be booted`,
        ],
      })),
  );
  const builtReleases = new Map(reads.flatMap(([, releases]) => [...releases]));
  for (const h of run.hosts)
    h.built.exo =
      (h.built.systemPath && builtReleases.get(h.built.systemPath)?.identity) ?? 'unknown';

  // A host that runs something other than its profile's system (a test activation) is changing
  // too: what it runs was never made permanent.
  const changing = ctx.hosts.filter((h) => {
    const { built, before } = rec.host(h.name);
    return (
      built.systemPath !== before.running ||
      (before.profilePath !== null && before.profilePath !== before.running)
    );
  });
  await Promise.all(
    ctx.hosts.filter((x) => !changing.includes(x)).map((h) => rec.setPhase(h.name, 'unchanged')),
  );
  if (changing.length === 0) return finish(run, 'no-change', ExitCode.ok);

  const batches = planBatches(changing, strategy, ctx.config.rollout);
  const clusterNodes = ctx.cluster.expectedNodes;
  // cluster_size 1: lone nodes, which no rollout can split.
  const splits =
    batches.length > 1 && ctx.config.health.cluster_size !== 1
      ? clusterSplits(rolloutSystems(ctx.hosts, changing, systems, rec, builtReleases))
      : [];
  if (splits.length) {
    const why = `its batches would not form one exo cluster: ${splits.join('; ')}`;
    if (!settings.force) {
      throw usageError(
        `refusing a ${strategy} deploy: ${why}`,
        'pin services.exo.namespace to the same value on every node (old and new systems) within one era, use the default lockstep strategy, or pass --force',
      );
    }
    ctx.log.warn(`${strategy} --force: ${why}; each batch is gated as a cluster of its own`);
  }
  run.plan = { strategy, batches: batches.map((b) => b.map((h) => h.name)) };
  ctx.log.info(
    `plan: ${strategy}, ${batches.map((b) => `[${b.map((h) => h.name).join(', ')}]`).join(' then ')}`,
  );

  if (!dryRun) {
    await onEveryHost(changing, limit, (h) =>
      rec.step('backup', h.name, async () => {
        rec.host(h.name).backupId = (
          await backupHost(ctx, h, `before deploy ${run.id}`, {
            healthy: rec.host(h.name).before.healthy ?? false,
            knownSystem: systems.get(h.name),
          })
        ).id;
      }),
    );
  }

  await onEveryHost(changing, limit, (h) =>
    rec.step(
      'copy',
      h.name,
      async () => {
        const out =
          h.buildOn === 'target'
            ? 'built on the host: nothing to copy'
            : await copyClosure(ctx, h, rec.host(h.name).built.systemPath as string);
        rec.host(h.name).diff = await closureDiff(
          ctx,
          h,
          rec.host(h.name).before.running,
          rec.host(h.name).built.systemPath as string,
        );
        return `${out}\n${rec.host(h.name).diff.join('\n')}`;
      },
      (out) => out,
    ),
  );
  if (dryRun) return finish(run, 'success', ExitCode.ok);

  for (const [i, batch] of batches.entries()) {
    progress.batch = batch.map((h) => h.name);
    // a long rollout is still at work: other deploys must not take its markers for leftovers
    if (i > 0) await markers.renew(ctx.hosts);
    // One cluster throughout: the batch is gated with the hosts around it (already moved, not
    // yet moved, or unchanged) as peers.
    const cluster =
      splits.length === 0 && ctx.cluster.one
        ? { peers: ctx.hosts.filter((h) => !batch.includes(h)) }
        : undefined;
    await activateBatch(
      ctx,
      rec,
      timers,
      batch,
      splits.length ? batch.length : clusterNodes,
      cluster,
    );
  }
  finish(run, 'success', ExitCode.ok);
}

/** Every system in the cluster while the rollout runs: what each host runs now, and the new
 * system of each host that changes. */
function rolloutSystems(
  hosts: readonly Host[],
  changing: readonly Host[],
  now: Map<string, SystemState>,
  rec: Recorder,
  built: Map<string, Release>,
): RolloutSystem[] {
  return [
    ...hosts.map((h) => ({
      host: h.name,
      system: 'now' as const,
      release: now.get(h.name)?.runningRelease ?? null,
    })),
    ...changing.map((h) => ({
      host: h.name,
      system: 'new' as const,
      release: built.get(rec.host(h.name).built.systemPath ?? '') ?? null,
    })),
  ];
}

/** test → gate → switch → final check, for the hosts of one batch together; each host's
 * revert timer runs from before its test until after its switch. */
async function activateBatch(
  ctx: Context,
  rec: Recorder,
  timers: RevertTimers,
  batch: readonly Host[],
  expected: number | null,
  cluster?: { peers: readonly Host[] },
): Promise<void> {
  const limit = ctx.config.rollout.max_parallel;
  const activatedAtMs = ctx.now();
  await onEveryHost(batch, limit, async (h) => {
    await rec.setPhase(h.name, 'activated'); // from here on the host may run the new system
    return rec.step(
      'test',
      h.name,
      async () => {
        await timers.arm(h, rec.host(h.name).before);
        return activateBuilt(ctx, h, rec.host(h.name).built.systemPath as string, 'test');
      },
      (out) => out,
    );
  });

  const executors = batch.map((h) => ctx.executor(h));
  const peers = cluster?.peers ?? [];
  const gate = await rec.step(
    'health gate',
    batch.length === ctx.hosts.length ? null : batch.map((h) => h.name).join(','),
    () =>
      runHealthGate(executors, {
        check: checkOptions(ctx, {
          sinceMs: activatedAtMs,
          sinceProcessStart: true,
          expectedNodes: expected,
        }),
        cluster: cluster && { peers: peers.map((h) => ctx.executor(h)) },
        activatedAtMs,
        signal: ctx.signal,
        log: ctx.log,
      }),
    (g) =>
      g.hosts
        .map(
          (h) =>
            `${h.host}: ${h.passed ? `passed (ready after ${h.readyAfterMs} ms)` : h.problems.join('; ')}`,
        )
        .join('\n'),
  );
  rec.run.gate = rec.run.gate
    ? {
        ...gate,
        hosts: [
          ...rec.run.gate.hosts.filter((x) => !gate.hosts.some((y) => y.host === x.host)),
          ...gate.hosts,
        ],
      }
    : gate;
  for (const h of gate.hosts) rec.host(h.host).problems.push(...h.problems);
  if (!gate.passed)
    throw new ExoDeployError(
      `the health gate failed: ${gate.hosts
        .flatMap((h) => h.problems.map((p) => `${h.host}: ${p}`))
        .slice(0, 3)
        .join('; ')}`,
      ExitCode.failed,
    );

  if (ctx.config.smoke.gate) {
    const smoke = await rec.step(
      'smoke',
      null,
      () =>
        smokeTest(
          batch[0]!.api,
          smokeSettings(ctx.config, batch.length),
          ctx.fetch,
          ctx.signal,
          managedClusterApis(ctx),
        ),
      (r) => JSON.stringify(r),
    );
    if (!smoke.ok)
      throw new ExoDeployError(
        `the smoke test failed: ${smoke.problems.join('; ')}`,
        ExitCode.failed,
      );
  }

  // The gate read the hosts over connections opened before the test: each must take a new one.
  const remote = batch.filter((h) => !h.local);
  await onEveryHost(remote, limit, (h) =>
    rec.step('confirm', h.name, () => timers.mustConfirm(h, 'test and the gate')),
  );

  const pidAtGate = new Map(gate.hosts.map((h) => [h.host, h.lastSample?.unit?.mainPid ?? 0]));
  await onEveryHost(batch, limit, (h) =>
    rec.step(
      'switch',
      h.name,
      async () => {
        const out = await activateBuilt(
          ctx,
          h,
          rec.host(h.name).built.systemPath as string,
          'switch',
        );
        await rec.setPhase(h.name, 'permanent');
        await timers.mustConfirm(h, 'switch');
        await timers.stop(h);
        return out;
      },
      (out) => out,
    ),
  );

  const finals = await rec.step(
    'final check',
    null,
    async () => {
      const options = checkOptions(ctx, {
        sinceMs: activatedAtMs,
        sinceProcessStart: true,
        expectedNodes: expected,
        keepSeenNodes: cluster !== undefined,
      });
      const [checks, peerChecks] = await Promise.all([
        Promise.all(executors.map((e) => checkHost(e, options, AFTER_ACTIVATION_PARTS))),
        Promise.all(peers.map((h) => readPeer(ctx.executor(h), options))),
      ]);
      if (cluster) judgeMembership(checks, peerChecks);
      return checks;
    },
    (cs) => cs.map((c) => `${c.host}: ${c.healthy ? 'healthy' : c.problems.join('; ')}`).join('\n'),
  );
  for (const c of finals) {
    const h = rec.host(c.host);
    h.finalCheck = c;
    h.switchRestartedExo = c.unit ? c.unit.mainPid !== pidAtGate.get(c.host) : null;
    if (h.switchRestartedExo)
      ctx.log.warn(
        `${c.host}: switch restarted exo after the gate (PID ${pidAtGate.get(c.host)} → ${c.unit?.mainPid})`,
      );
  }
  const sick = finals.filter((c) => !c.healthy);
  if (sick.length)
    throw new ExoDeployError(
      `the final check failed: ${sick.map((c) => `${c.host}: ${c.problems[0]}`).join('; ')}`,
      ExitCode.failed,
    );
}

async function rollBackTouched(
  ctx: Context,
  rec: Recorder,
  failedBatch: readonly string[],
  timers: RevertTimers,
): Promise<void> {
  const { run } = rec;
  const names = hostsToRollBack(
    new Map(run.hosts.map((h) => [h.host, h.phase])),
    ctx.config.rollout.rollback_scope,
    failedBatch,
  );
  const hosts = ctx.hosts.filter((h) => names.includes(h.name));
  ctx.log.info(
    `rolling back ${hosts.map((h) => h.name).join(', ')} to the systems they ran before`,
  );
  await Promise.allSettled(
    hosts.map((h) =>
      rec.step(
        'rollback',
        h.name,
        async () => {
          const record = rec.host(h.name);
          try {
            // A host the deployer cannot reach anew is left to put itself back.
            const cutOff = timers.isLost(h) || !(await timers.confirm(h)).confirmed;
            const result = await restoreHost(
              ctx,
              h,
              record.before,
              cutOff ? { revertedBy: () => timers.awaitRevert(h) } : {},
            );
            await timers.stop(h);
            const gateProblems =
              result.gate && !result.gate.passed ? (result.gate.hosts[0]?.problems ?? []) : [];
            // Back on the old system but exo unhealthy: only a failure when it was healthy before.
            if (gateProblems.length && record.before.healthy) {
              await rec.setPhase(h.name, 'rollback-failed');
              record.problems.push(...gateProblems.map((p) => `after rollback: ${p}`));
            } else await rec.setPhase(h.name, 'rolled-back');
            return result.activations.join('\n');
          } catch (error) {
            await rec.setPhase(h.name, 'rollback-failed');
            record.problems.push(
              `rollback: ${error instanceof Error ? error.message : String(error)}`,
            );
            throw error;
          }
        },
        (out) => out,
      ),
    ),
  );
  await Promise.all(
    run.hosts
      .filter((x) => x.phase === 'rolled-back' || x.phase === 'rollback-failed')
      .map(async (h) => {
        const exec = ctx.executor(ctx.hosts.find((x) => x.name === h.host) as Host);
        h.finalCheck = await checkHost(
          exec,
          checkOptions(ctx, { sinceMs: ctx.now() }),
          AFTER_ACTIVATION_PARTS,
        ).catch(() => null);
      }),
  );
  if (run.hosts.some((h) => h.phase === 'rollback-failed'))
    finish(run, 'rollback-failed', ExitCode.needsPerson);
  else if (run.hosts.some(touched)) finish(run, 'partly-rolled-back', ExitCode.failed);
  else finish(run, 'rolled-back', ExitCode.failed);
}
