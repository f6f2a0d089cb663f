// Put a host back on exactly the system it ran before the deploy: the recorded store path,
// not "the generation below" (which is not always what ran: a test activation or a rollback leaves the profile elsewhere).
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { readlinkArgv } from '../programs/coreutils.js';
import {
  activate,
  pointProfileAtGeneration,
  pointProfileAtPath,
  runningAndProfile,
  waitUntilReachable,
} from '../system/activate.js';
import type { PreviousSystem } from '../system/generations.js';
import { readBootedSystem, rebootHost, waitForBoot } from '../system/reboot.js';

/**
 * Puts the host back and makes sure it is back (its running system and its profile); returns
 * what it activated. Whether exo serves again is the caller's to check.
 * revertedBy: the host puts itself back (its revert timer, after it was cut off): wait for that
 * instead of activating anything; then the same check.
 */
export async function restoreHost(
  ctx: Context,
  host: Host,
  before: PreviousSystem,
  { revertedBy }: { revertedBy?: () => Promise<string> } = {},
): Promise<string[]> {
  if (!before.running) {
    throw new ExoDeployError(
      `${host.name}: the system it ran before is unknown, so it cannot be restored`,
      ExitCode.needsPerson,
      { host: host.name },
    );
  }
  const restorable = before as PreviousSystem & { running: string };
  if (revertedBy) {
    const reverted = await revertedBy();
    // A reboot guard boots the host back into its boot default, which is not what it ran when
    // that was a test activation: the rest is done from here.
    if ((await whyNotBack(ctx, host, before)).length === 0) return [reverted];
    const activations = [reverted, ...(await activateBefore(ctx, host, restorable))];
    if (!ctx.dryRun) await mustBeBack(ctx, host, before);
    return activations;
  }
  const activations = await activateBefore(ctx, host, restorable);
  if (!ctx.dryRun) await mustBeBack(ctx, host, before);
  return activations;
}

async function activateBefore(
  ctx: Context,
  host: Host,
  before: PreviousSystem & { running: string },
): Promise<string[]> {
  const exec = ctx.executor(host);
  const activations: string[] = [];
  // A host that dropped off the network during the deploy gets a moment to come back.
  await waitUntilReachable(exec, ctx.config.timeouts.activate, ctx.signal);
  // issued together: one session to the host
  const [profileNow, bootedNow] = await Promise.all([
    exec.must(readlinkArgv([host.systemProfile])).then((r) => r.stdout.trim()),
    before.booted ? readBootedSystem(exec) : null,
  ]);
  const profileMoved = before.profilePath !== null && profileNow !== before.profilePath;
  // A host that booted another system since (the deploy rebooted it into the new one) runs that
  // system's kernel and drivers: only a reboot takes it back.
  if (before.booted && bootedNow !== before.booted)
    return activateBeforeByReboot(ctx, host, before, profileMoved);
  if (profileMoved) {
    // `switch` had made the new system permanent: point the profile (and the boot entry) back.
    activations.push(await pointProfileBack(ctx, host, before));
    if (before.profilePath !== before.running) {
      await activate(exec, before.profilePath as string, 'boot', ctx.config.timeouts, ctx.signal, {
        skipPreSwitchChecks: true,
      });
      activations.push(`${before.profilePath} boot`);
    }
  }
  const action = profileMoved && before.profilePath === before.running ? 'switch' : 'test';
  const result = await activate(exec, before.running, action, ctx.config.timeouts, ctx.signal, {
    skipPreSwitchChecks: true,
  });
  activations.push(
    `${before.running} ${action}${result.unitsFailed ? ' (units failed to start)' : ''}${result.reconnected ? ' (result read after the connection dropped)' : ''}`,
  );
  return activations;
}

/** The profile back, its system the boot default again, a reboot into it; then, for a host
 * that ran a test activation before, that system activated again. */
async function activateBeforeByReboot(
  ctx: Context,
  host: Host,
  before: PreviousSystem & { running: string },
  profileMoved: boolean,
): Promise<string[]> {
  const exec = ctx.executor(host);
  const activations: string[] = [];
  if (profileMoved) activations.push(await pointProfileBack(ctx, host, before));
  const bootDefault = before.profilePath ?? before.running;
  await activate(exec, bootDefault, 'boot', ctx.config.timeouts, ctx.signal, {
    skipPreSwitchChecks: true,
  });
  activations.push(`${bootDefault} boot`);
  const { downMs } = await rebootHost(exec, ctx.config.timeouts.reboot, ctx.signal);
  await waitForBoot(exec, ctx.config.timeouts.activate);
  activations.push(`reboot (back after ${Math.round(downMs / 1000)} s)`);
  if (before.running !== bootDefault) {
    await activate(exec, before.running, 'test', ctx.config.timeouts, ctx.signal, {
      skipPreSwitchChecks: true,
    });
    activations.push(`${before.running} test`);
  }
  return activations;
}

/** The profile back on the generation (else the path) it had; says what it did. */
async function pointProfileBack(ctx: Context, host: Host, before: PreviousSystem): Promise<string> {
  const exec = ctx.executor(host);
  if (before.profileGeneration !== null)
    await pointProfileAtGeneration(exec, before.profileGeneration);
  else await pointProfileAtPath(exec, before.profilePath as string);
  return `profile → generation ${before.profileGeneration ?? before.profilePath}`;
}

/** Back means exactly: the system it ran, and the profile where it was. */
async function mustBeBack(ctx: Context, host: Host, before: PreviousSystem): Promise<void> {
  const wrong = await whyNotBack(ctx, host, before);
  if (wrong.length)
    throw new ExoDeployError(
      `${host.name}: not back on the system it ran before: ${wrong.join('; ')}`,
      ExitCode.needsPerson,
      { host: host.name },
    );
}

/** How the host differs from the system it ran and the profile it had; empty: it is back. */
async function whyNotBack(ctx: Context, host: Host, before: PreviousSystem): Promise<string[]> {
  const { running, profile } = await runningAndProfile(ctx.executor(host));
  return [
    running !== before.running ? `it runs ${running}, not ${before.running}` : null,
    before.profilePath !== null && profile !== before.profilePath
      ? `its profile is ${profile}, not ${before.profilePath}`
      : null,
  ].filter((w): w is string => w !== null);
}
