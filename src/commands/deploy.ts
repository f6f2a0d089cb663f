// exo-deploy deploy: the gated pipeline for the selected hosts, under the deploy lock.
import { createInterface } from 'node:readline/promises';
import type { Context } from '../context.js';
import { ExitCode, usageError, type ExitCode as Code } from '../errors.js';
import { runHook } from '../deploy/hooks.js';
import { acquireDeployLock } from '../deploy/lock.js';
import { Deployment } from '../deploy/deployment.js';
import { lastDeployThatChanged, unresolvedHosts } from '../deploy/journal.js';
import { onNewSystem, whyReboot, type DeployRecord } from '../deploy/record.js';
import type { Outcome } from '../output/outcome.js';
import { writeDeployReport } from '../report/deploy-report.js';
import { shortPath } from '../output/format.js';

export async function run(ctx: Context): Promise<Outcome> {
  if (ctx.hosts.length === 0)
    throw usageError('the config has no hosts to deploy to', 'add a [hosts.NAME] table');
  await confirm(ctx);
  const lock = ctx.dryRun
    ? null
    : await acquireDeployLock(
        ctx.config.stateDir,
        `deploy ${ctx.hosts.map((h) => h.name).join(',')}`,
        ctx.log,
      );
  const deployment = new Deployment(ctx, {
    strategy: ctx.options.strategy ?? ctx.config.rollout.strategy,
    force: Boolean(ctx.options.force),
    reboot: ctx.options.reboot ?? ctx.config.rollout.reboot,
  });
  try {
    await refuseOverUnresolved(ctx);
    if (!ctx.dryRun) await runHook(ctx, 'pre_deploy', deployment.record);
    await deployment.execute();
    if (!ctx.dryRun) {
      deployment.setReportFiles(await writeDeployReport(deployment.record, ctx.config.reportsDir));
      if (!ctx.signal.aborted) await runHook(ctx, 'post_deploy', deployment.record);
    }
  } finally {
    await lock?.release();
  }
  const { record } = deployment;
  return {
    exitCode: (record.exitCode ?? ExitCode.failed) as Code,
    data: record,
    text: summary(record, ctx),
  };
}

/** A deploy over hosts that the last one left on an ungated system (or a failed rollback) would
 * take that system for the one to come back to, and could find nothing to change. */
async function refuseOverUnresolved(ctx: Context): Promise<void> {
  if (ctx.options['over-unresolved'] || ctx.dryRun) return;
  const last = await lastDeployThatChanged(ctx.config.stateDir);
  const left = last ? unresolvedHosts(last).filter((h) => ctx.hosts.some((x) => x.name === h)) : [];
  if (!last || left.length === 0) return;
  throw usageError(
    `deploy ${last.id} (${last.outcome ?? 'did not finish'}) left ${left.map((h) => `${h} (${last.hosts.get(h)?.phase})`).join(', ')} unresolved: not deploying over it`,
    '`exo-deploy status` shows them; `exo-deploy rollback --last` returns them to the systems they ran before; or pass --over-unresolved',
  );
}

/** Deploying to every host asks first on a terminal; never without one. */
async function confirm(ctx: Context): Promise<void> {
  if (
    ctx.options.yes ||
    ctx.dryRun ||
    ctx.options.hosts ||
    !process.stdin.isTTY ||
    ctx.hosts.length < 2
  )
    return;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question(
    `Deploy to all ${ctx.hosts.length} hosts (${ctx.hosts.map((h) => h.name).join(', ')})? [y/N] `,
  );
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw usageError('not confirmed: nothing done');
}

function summary(r: DeployRecord, ctx: Context): string {
  if (ctx.dryRun && r.outcome === 'success') return plan(r, ctx);
  const lines = [`deploy ${r.id}: ${r.outcome ?? 'unfinished'} (exit ${r.exitCode})`];
  for (const h of r.hosts) {
    // What the host runs now: checked at the end, or known from its phase.
    const onNew = onNewSystem(h.phase);
    const running = h.finalCheck?.system.running ?? (onNew ? h.built.systemPath : h.before.running);
    const note = h.phase === 'activated' ? ' (test activation: not permanent)' : '';
    const exo = `exo ${h.before.exo} → ${h.built.exo ?? '-'}`;
    lines.push(`  ${h.host}: ${h.phase}, ${exo}, running ${shortPath(running)}${note}`);
    for (const p of h.problems.slice(0, 3)) lines.push(`    ✗ ${p}`);
    if (h.reboots && onNew) lines.push(`    rebooted into it: ${whyReboot(h)}`);
  }
  if (r.error && r.outcome !== 'success') lines.push(`  cause: ${r.error.split('\n')[0]}`);
  if (r.reportFiles) lines.push(`report: ${r.reportFiles.markdown}`);
  return lines.join('\n');
}

/** --dry-run: what would change on each host, and the steps that would change it. */
function plan(r: DeployRecord, ctx: Context): string {
  const h = ctx.config.health;
  const batches = (r.plan?.batches ?? []).map((b) => `[${b.join(', ')}]`).join(' then ');
  const lines = [
    `plan (dry run: built and copied, nothing activated): ${r.plan?.strategy ?? '?'}, ${batches}`,
  ];
  for (const host of r.hosts) {
    const change =
      host.phase === 'unchanged'
        ? 'already runs this system: nothing to do'
        : `exo ${host.before.exo} → ${host.built.exo}`;
    lines.push('', `${host.host}: ${change}`);
    lines.push(`  ${shortPath(host.before.running)} → ${shortPath(host.built.systemPath)}`);
    for (const d of host.diff) lines.push(`  ${d}`);
    if (host.reboots) lines.push(`  reboots into it: ${whyReboot(host)}`);
  }
  const gate = `health gate (ready within ${h.ready_timeout / 1000}s, soak ${h.soak / 1000}s)`;
  const smoke = ctx.config.smoke.gate ? 'smoke test → ' : '';
  const rebooting = r.hosts.filter((x) => x.reboots).map((x) => x.host);
  const activation = rebooting.length
    ? `nixos-rebuild test (${rebooting.join(', ')}: nixos-rebuild boot, then a reboot)`
    : 'nixos-rebuild test';
  lines.push(
    '',
    `steps, per batch: backup → ${activation} → ${gate} → ${smoke}nixos-rebuild switch → final check; on failure every touched host goes back${rebooting.length ? ' (a host that rebooted, with a second reboot)' : ''}`,
  );
  return lines.join('\n');
}
