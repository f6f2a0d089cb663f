// exo-deploy rollback [--to N]: activate the previous generation (or N) on each host, then
// check. Every host's target is validated before any host is changed.
import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { checkHost, type HostCheck } from '../health/check.js';
import type { Outcome } from '../output/outcome.js';
import { ExoDeployError } from '../errors.js';
import { activate, pointProfileAtGeneration, type ActivationResult } from '../system/activate.js';
import { readSystemState, type GenerationInfo, type SystemState } from '../system/generations.js';
import { runHealthGate } from '../steps/health-gate.js';
import { expectedNodes, renderCheck } from './check.js';

interface Plan {
  state: SystemState;
  target: GenerationInfo;
}

export async function run(ctx: Context): Promise<Outcome> {
  const states = await Promise.all(ctx.hosts.map((h) => readSystemState(ctx.executor(h))));
  const plans = states.map((state) => ({ state, target: chooseTarget(state, ctx.options.to) }));
  const results = await Promise.all(plans.map((plan) => rollbackHost(ctx, plan)));
  const ok = results.every((r) => r.check?.healthy);
  return {
    exitCode: ok ? ExitCode.ok : ExitCode.failed,
    data: { ok, hosts: results },
    text: results.map((r) => `${r.host}: generation ${r.from ?? '?'} → ${r.to}${r.error ? `\n  ✗ ${r.error}` : ''}${r.check ? `\n${renderCheck(r.check, ctx.now())}` : ''}`).join('\n\n'),
  };
}

export function chooseTarget(state: SystemState, to: number | undefined): GenerationInfo {
  const existing = state.generations.map((g) => g.number).sort((a, b) => a - b);
  if (to !== undefined) {
    const wanted = state.generations.find((g) => g.number === to);
    if (!wanted) throw usageError(`${state.host}: there is no generation ${to}`, `generations on ${state.host}: ${existing.join(', ') || 'none'}`);
    return wanted;
  }
  const current = state.profileGeneration;
  const previous = state.generations.find((g) => current !== null && g.number < current);
  if (!previous) throw usageError(`${state.host}: no generation before ${current ?? 'the current one'} to roll back to`, `generations on ${state.host}: ${existing.join(', ') || 'none'}`);
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
  const result: HostRollback = { host: host.name, from: state.profileGeneration, to: target.number, systemPath: target.path, activation: null, check: null };
  if (!target.path) return { ...result, error: `generation ${target.number}'s system path cannot be read` };
  const started = ctx.now();
  try {
    ctx.log.info(`${host.name}: activating generation ${target.number} (${target.exoVersion})`);
    await pointProfileAtGeneration(exec, target.number);
    result.activation = await activate(exec, target.path, 'switch', ctx.config.timeouts);
    if (ctx.options['dry-run']) return result;
    const gate = await runHealthGate([exec], { health: { ...ctx.config.health, soak: 0 }, nix: ctx.config.programs.nix, expectedNodes: null, fetch: ctx.fetch, activatedAtMs: started, signal: ctx.signal, log: ctx.log });
    if (!gate.passed) result.error = gate.hosts[0]?.problems.join('; ');
  } catch (error) {
    if (!(error instanceof ExoDeployError)) throw error;
    result.error = error.message;
  }
  result.check = await checkHost(exec, { health: ctx.config.health, nix: ctx.config.programs.nix, sinceMs: started, expectedNodes: expectedNodes(ctx), fetch: ctx.fetch });
  return result;
}
