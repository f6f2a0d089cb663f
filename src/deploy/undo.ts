// Undoing a deploy from its journal: every host it left on a new system goes back to the
// system it ran before, a timer or reboot guard it left armed taken off first, then each is
// checked. `rollback --last` runs it, and a pull that finds its last run stopped midway.
import type { Context } from '../context.js';
import { ExitCode, ExoDeployError } from '../errors.js';
import type { Outcome } from '../output/outcome.js';
import { waitUntilReachable } from '../system/activate.js';
import { disarm } from '../system/revert-timer.js';
import { waitUntilServing } from '../steps/health-gate.js';
import { restoreHost } from '../steps/restore.js';
import { removeMarkersOf } from './host-marker.js';
import { DeployJournal, journalFile, type JournalledDeploy } from './journal.js';
import { leftOnNewSystem } from './record.js';

/** Run under the deploy lock. */
export async function undoDeploy(ctx: Context, last: JournalledDeploy): Promise<Outcome> {
  const journal = new DeployJournal(journalFile(ctx.config.stateDir, last.id));
  const wanted = new Set(ctx.hosts.map((h) => h.name));
  const targets = [...last.hosts].filter(
    ([name, h]) => wanted.has(name) && leftOnNewSystem(h.phase),
  );
  if (targets.length === 0) {
    return {
      exitCode: ExitCode.ok,
      data: { run: last.id, hosts: [] },
      text: `nothing to roll back: deploy ${last.id} (${last.outcome ?? 'unfinished'}) left no host on a new system`,
    };
  }
  const results = await Promise.all(
    targets.map(async ([name, h]) => {
      const host = ctx.hosts.find((x) => x.name === name);
      if (!host || !h.before?.running)
        return {
          host: name,
          ok: false,
          error: 'the journal has no system recorded from before the deploy',
        };
      try {
        ctx.log.info(`${name}: back to ${h.before.running} (left ${h.phase} by ${last.id})`);
        if (h.revertTimer?.state === 'armed' && !ctx.dryRun) {
          // the timer's revert would race this one; a host left rebooting may be on its way up
          const exec = ctx.executor(host);
          if (h.revertTimer.rebootGuard)
            await waitUntilReachable(exec, ctx.config.timeouts.reboot, ctx.signal);
          const state = await disarm(exec, h.revertTimer);
          await journal.append({ type: 'revert-timer', host: name, ...h.revertTimer, state });
        }
        const started = ctx.now();
        const activations = await restoreHost(ctx, host, h.before);
        await journal.append({ type: 'phase', host: name, phase: 'rolled-back' });
        const serving = ctx.dryRun
          ? null
          : await waitUntilServing(ctx, ctx.executor(host), started);
        const problems = serving && !serving.passed ? (serving.hosts[0]?.problems ?? []) : [];
        return {
          host: name,
          ok: problems.length === 0,
          system: h.before.running,
          activations,
          problems,
        };
      } catch (error) {
        if (!(error instanceof ExoDeployError)) throw error;
        return { host: name, ok: false, error: error.message };
      }
    }),
  );
  // The interrupted run could not take its markers off the hosts it touched.
  await removeMarkersOf(
    ctx,
    ctx.hosts.filter((h) => targets.some(([name]) => name === h.name)),
    last.id,
  );
  const ok = results.every((r) => r.ok);
  const text = results
    .map(
      (r) =>
        `${r.host}: ${r.ok ? `back on ${'system' in r ? r.system : '?'}` : `NOT restored: ${'error' in r ? r.error : 'problems' in r ? r.problems?.join('; ') : ''}`}`,
    )
    .join('\n');
  return {
    exitCode: ok ? ExitCode.ok : ExitCode.failed,
    data: { run: last.id, hosts: results },
    text: `undoing deploy ${last.id}:\n${text}`,
  };
}
