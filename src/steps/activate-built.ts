// Activate exactly the system that was built, copied and gated, never one evaluated anew:
// with nixos-rebuild --store-path where this machine's nixos-rebuild has it (and the system was
// built here), otherwise with
// the steps nixos-rebuild-ng takes (for switch the profile first, then the system's
// switch-to-configuration in a transient unit). Then the host must run that path (after test
// and switch), and boot it by default (after switch and boot).
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { existsArgv } from '../programs/coreutils.js';
import { activateStorePathArgv, hasStorePath, helpArgv } from '../programs/nixos-rebuild.js';
import { UNITS_FAILED_EXIT } from '../programs/switch-to-configuration.js';
import { CommandFailed, lastLines, nixSshOpts } from '../run/executor.js';
import { activate, pointProfileAtPath, runningAndProfile } from '../system/activate.js';
import { failedUnits, olderFailuresOnly } from '../system/failed-units.js';

// nixos-rebuild-ng passes switch-to-configuration's exit 4 on with "Command '…' returned non-zero
// exit status 4."; the bash nixos-rebuild turned it into exit 1 and its warning line.
const SWITCH_WARNING =
  /warning: error\(s\) occurred while switching to the new configuration|the following units failed|returned non-zero exit status 4\./;

interface Outcome {
  exitCode: number;
  output: string;
  timedOut: boolean;
  how: string;
}

/** test: active now; switch: active and the boot default; boot: the boot default only, active
 * after a reboot. */
type BuiltAction = 'test' | 'switch' | 'boot';

/** Asked once per run: the same nixos-rebuild serves every host. */
const storePathSupport = new WeakMap<Context, Promise<boolean>>();
function nixosRebuildHasStorePath(ctx: Context): Promise<boolean> {
  let known = storePathSupport.get(ctx);
  if (!known) {
    known = ctx.deployer
      .run(helpArgv(ctx.config.programs.nixos_rebuild), { timeoutMs: ctx.config.timeouts.command })
      .then(
        (r) => r.exitCode === 0 && hasStorePath(`${r.stdout}${r.stderr}`),
        () => false,
      );
    storePathSupport.set(ctx, known);
  }
  return known;
}

export async function activateBuilt(
  ctx: Context,
  host: Host,
  systemPath: string,
  action: BuiltAction,
): Promise<string> {
  const exec = ctx.executor(host);
  const failedBefore = await failedUnits(exec);
  // nixos-rebuild --store-path copies the system from this machine's store first: a system the
  // host built itself is not there
  const viaRebuild = host.buildOn === 'deployer' && (await nixosRebuildHasStorePath(ctx));
  const outcome = viaRebuild
    ? await viaNixosRebuild(ctx, host, systemPath, action)
    : await viaOwnSteps(ctx, host, systemPath, action);
  if (outcome.exitCode !== 0) {
    const unitsFailed =
      outcome.exitCode === UNITS_FAILED_EXIT || SWITCH_WARNING.test(outcome.output);
    const older =
      unitsFailed && !outcome.timedOut
        ? await olderFailuresOnly(exec, failedBefore, outcome.output, host.unit)
        : null;
    if (!older) {
      const why = outcome.timedOut
        ? 'timed out'
        : unitsFailed
          ? `exited ${outcome.exitCode}: units failed to start`
          : `exited ${outcome.exitCode}`;
      throw new ExoDeployError(
        `${host.name}: ${outcome.how} ${why}:\n${lastLines(outcome.output, 8)}`,
        ExitCode.failed,
        { host: host.name },
      );
    }
    ctx.log.warn(
      `${host.name}: ${older.join(', ')} ${older.length === 1 ? 'was' : 'were'} already failed before this activation, which left ${older.length === 1 ? 'it' : 'them'} alone: not counted against the release (see \`journalctl -u ${older[0]}\` on ${host.name})`,
    );
  }
  await mustRun(ctx, host, systemPath, action);
  return outcome.output;
}

async function viaNixosRebuild(
  ctx: Context,
  host: Host,
  systemPath: string,
  action: BuiltAction,
): Promise<Outcome> {
  // A local target is activated here, through sudo when the host says so; a remote one gets
  // --sudo instead, and nixos-rebuild itself runs unprivileged on this machine.
  const runner = host.local ? ctx.executor(host) : ctx.deployer;
  const r = await runner.run(
    activateStorePathArgv(ctx.config.programs.nixos_rebuild, action, systemPath, host),
    {
      env: { NIX_SSHOPTS: nixSshOpts(host) },
      timeoutMs: ctx.config.timeouts.build + ctx.config.timeouts.activate,
      root: host.local,
      mutates: true,
    },
  );
  return {
    exitCode: r.exitCode,
    output: `${r.stdout}${r.stderr}`,
    timedOut: r.timedOut,
    how: `nixos-rebuild ${action} --store-path`,
  };
}

async function viaOwnSteps(
  ctx: Context,
  host: Host,
  systemPath: string,
  action: BuiltAction,
): Promise<Outcome> {
  const exec = ctx.executor(host);
  const how = `${action} of ${systemPath}`;
  if (action !== 'test') {
    // as nixos-rebuild-ng: only a whole NixOS system becomes the boot default
    if ((await exec.run(existsArgv(`${systemPath}/nixos-version`))).exitCode !== 0) {
      return {
        exitCode: 1,
        output: `${systemPath} is not a NixOS system (it has no nixos-version)`,
        timedOut: false,
        how,
      };
    }
    await pointProfileAtPath(exec, systemPath);
  }
  try {
    const r = await activate(exec, systemPath, action, ctx.config.timeouts, ctx.signal);
    return { exitCode: r.exitCode, output: r.output, timedOut: false, how };
  } catch (error) {
    if (!(error instanceof CommandFailed)) throw error;
    return {
      exitCode: error.result.exitCode,
      output: `${error.result.stdout}${error.result.stderr}`,
      timedOut: error.result.timedOut,
      how,
    };
  }
}

/** The host runs systemPath now (not after boot: it runs what it ran until it reboots), and after
 * switch or boot its profile (the boot default) is it too. */
async function mustRun(
  ctx: Context,
  host: Host,
  systemPath: string,
  action: BuiltAction,
): Promise<void> {
  const { running, profile } = await runningAndProfile(ctx.executor(host));
  const wrong = [
    action !== 'boot' && running !== systemPath ? `it runs ${running}` : null,
    action !== 'test' && profile !== systemPath
      ? `its profile ${host.systemProfile} is ${profile}`
      : null,
  ].filter(Boolean);
  if (wrong.length) {
    throw new ExoDeployError(
      `${host.name}: after ${action}, ${wrong.join(' and ')}, not the system built and copied for it (${systemPath})`,
      ExitCode.failed,
      {
        host: host.name,
        hint: 'another activation ran on the host at the same time, or its nixos-rebuild activated something else',
      },
    );
  }
}
