// exo-deploy rollback [--to N]: activate the previous generation (or N) on each host, then
// check. Every host's target is validated before any host is changed.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { checkHost, judgeMembership, type HostCheck } from '../health/check.js';
import type { Outcome } from '../output/outcome.js';
import { ExoDeployError } from '../errors.js';
import {
  activate,
  pointProfileAtGeneration,
  runningAndProfile,
  type ActivationResult,
} from '../system/activate.js';
import { readSystemState, type GenerationInfo, type SystemState } from '../system/generations.js';
import { waitUntilServing } from '../steps/health-gate.js';
import { renderCheck } from './check.js';
import { checkOptions } from '../steps/check-hosts.js';
import { lastDeployThatChanged } from '../deploy/journal.js';
import { acquireDeployLock } from '../deploy/lock.js';
import { HostMarkers } from '../deploy/host-marker.js';
import { lastLines } from '../run/executor.js';
import { timestampId } from '../time-id.js';
import { undoDeploy } from '../deploy/undo.js';

interface Plan {
  state: SystemState;
  target: GenerationInfo;
}

export async function run(ctx: Context): Promise<Outcome> {
  if (ctx.options.last) {
    if (ctx.options.to !== undefined) throw usageError('--to and --last exclude each other');
    return rollbackLast(ctx);
  }
  const dryRun = Boolean(ctx.options['dry-run']);
  const states = await Promise.all(ctx.hosts.map((h) => readSystemState(ctx.executor(h))));
  const plans = states.map((state) => ({ state, target: chooseTarget(state, ctx.options.to) }));
  // one change at a time per fleet and per host, as a deploy
  const lock = dryRun
    ? null
    : await acquireDeployLock(
        ctx.config.stateDir,
        `rollback --to ${ctx.options.to ?? 'previous'} ${ctx.hosts.map((h) => h.name).join(',')}`,
        ctx.log,
      );
  const markers = new HostMarkers(ctx, `rollback-${timestampId(new Date(ctx.now()))}`);
  let results: HostRollback[];
  try {
    if (!dryRun) await markers.place(ctx.hosts);
    const started = ctx.now();
    results = await Promise.all(plans.map((plan) => rollbackHost(ctx, plan)));
    if (!dryRun) await checkTogether(ctx, results, started);
  } finally {
    if (!ctx.signal.aborted) await markers.remove();
    await lock?.release();
  }
  const ok = results.every((r) => !r.error && (dryRun || r.check?.healthy));
  return {
    exitCode: ok ? ExitCode.ok : ExitCode.failed,
    data: { ok, hosts: results },
    text: results
      .map(
        (r) =>
          `${r.host}: generation ${r.from ?? '?'} → ${r.to}${r.error ? `\n  ✗ ${r.error}` : ''}${r.check ? `\n${renderCheck(r.check, ctx.now())}` : ''}`,
      )
      .join('\n\n'),
  };
}

export function chooseTarget(state: SystemState, to: number | undefined): GenerationInfo {
  const existing = state.generations.map((g) => g.number).sort((a, b) => a - b);
  if (to !== undefined) {
    const wanted = state.generations.find((g) => g.number === to);
    if (!wanted)
      throw usageError(
        `${state.host}: there is no generation ${to}`,
        `generations on ${state.host}: ${existing.join(', ') || 'none'}`,
      );
    return wanted;
  }
  const current = state.profileGeneration;
  const previous = state.generations.find((g) => current !== null && g.number < current);
  if (!previous)
    throw usageError(
      `${state.host}: no generation before ${current ?? 'the current one'} to roll back to`,
      `generations on ${state.host}: ${existing.join(', ') || 'none'}`,
    );
  return previous;
}

interface HostRollback {
  host: string;
  from: number | null;
  to: number;
  systemPath: string | null;
  activation: ActivationResult | null;
  check: HostCheck | null;
  error?: string;
}

async function rollbackHost(ctx: Context, { state, target }: Plan): Promise<HostRollback> {
  const host = ctx.hosts.find((h) => h.name === state.host);
  if (!host) throw new Error(`unknown host ${state.host}`);
  const exec = ctx.executor(host);
  const result: HostRollback = {
    host: host.name,
    from: state.profileGeneration,
    to: target.number,
    systemPath: target.path,
    activation: null,
    check: null,
  };
  if (!target.path)
    return { ...result, error: `generation ${target.number}'s system path cannot be read` };
  const started = ctx.now();
  try {
    ctx.log.info(`${host.name}: activating generation ${target.number} (${target.exo})`);
    await pointProfileAtGeneration(exec, target.number);
    try {
      result.activation = await activate(
        exec,
        target.path,
        'switch',
        ctx.config.timeouts,
        ctx.signal,
      );
    } catch (error) {
      // The host still runs what it ran: the profile (the next boot) goes back to match it.
      if (state.profileGeneration !== null)
        await pointProfileAtGeneration(exec, state.profileGeneration);
      throw error;
    }
    if (ctx.options['dry-run']) return result;
    // switch-to-configuration's exit 4: generation N runs, and units of it failed to start
    if (result.activation.unitsFailed)
      result.error = `generation ${target.number} is active, but units failed to start:\n${lastLines(result.activation.output, 6)}`;
    const { running, profile } = await runningAndProfile(exec);
    if (running !== target.path || profile !== target.path) {
      result.error = `after the switch it runs ${running} with its profile on ${profile}, not generation ${target.number} (${target.path}) for both`;
    }
    const gate = await waitUntilServing(ctx, exec, started);
    if (!gate.passed)
      result.error = [result.error, gate.hosts[0]?.problems.join('; ')].filter(Boolean).join('; ');
  } catch (error) {
    if (!(error instanceof ExoDeployError)) throw error;
    result.error = error.message;
  }
  return result;
}

/** The hosts rolled back are checked together once each serves again. They restarted under new
 * node ids, which their peers learn within seconds: while some host does not see another yet,
 * they are checked again every health.interval, up to ready_timeout. */
async function checkTogether(
  ctx: Context,
  results: HostRollback[],
  sinceMs: number,
): Promise<void> {
  const together = ctx.cluster.one && results.length > 1;
  const options = checkOptions(ctx, {
    sinceMs,
    expectedNodes: ctx.cluster.expectedNodes,
    keepSeenNodes: together,
  });
  const deadline = ctx.now() + ctx.config.health.ready_timeout;
  for (;;) {
    const checks = await Promise.all(
      results.map((r) => {
        const host = ctx.hosts.find((h) => h.name === r.host) as Context['hosts'][number];
        return checkHost(ctx.executor(host), options);
      }),
    );
    const notSeen = together ? judgeMembership(checks) : new Map<string, string[]>();
    if (notSeen.size === 0 || ctx.now() >= deadline) {
      for (const [i, r] of results.entries()) r.check = checks[i] ?? null;
      return;
    }
    await sleep(ctx.config.health.interval, undefined, { signal: ctx.signal });
  }
}

/** Undo the last deploy: every host it left on a new system (activated, made permanent, or
 * whose rollback failed) goes back to the system its journal recorded before. */
async function rollbackLast(ctx: Context): Promise<Outcome> {
  const last = await lastDeployThatChanged(ctx.config.stateDir);
  if (!last)
    throw usageError(
      `no deploy journal under ${ctx.config.stateDir}`,
      'rollback --last undoes a deploy run from this config; see `exo-deploy rollback --to N`',
    );
  const lock = await acquireDeployLock(ctx.config.stateDir, `rollback --last ${last.id}`, ctx.log);
  try {
    return await undoDeploy(ctx, last);
  } finally {
    await lock.release();
  }
}
