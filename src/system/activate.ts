// Changing what a host runs: point the profile, run the system's switch-to-configuration.
// The switch runs in a transient systemd unit, as nixos-rebuild does, so that a dropped ssh
// connection neither kills it halfway nor leaves us guessing: its exit status is kept in a
// file under /run, which is read back once the host answers again.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Timeouts } from '../config/schema.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { CommandFailed, type Executor } from '../run/executor.js';
import { setProfileArgv, switchGenerationArgv } from '../programs/nix-env.js';
import {
  switchToConfigurationArgv,
  UNITS_FAILED_EXIT,
  type SwitchAction,
} from '../programs/switch-to-configuration.js';
import {
  LOCK_HELD,
  SKIP_PRE_SWITCH_CHECKS,
  transientUnitArgv,
  unitActiveArgv,
} from '../programs/systemd-run.js';
import { mkdirArgv, readlinkArgv } from '../programs/coreutils.js';
import { runningUnitsArgv } from '../programs/systemctl.js';
import type { ProcessResult } from '../run/process.js';

export interface ActivationResult {
  action: SwitchAction;
  systemPath: string;
  exitCode: number;
  /** switch-to-configuration's exit 4: the system is active, but units failed to start. */
  unitsFailed: boolean;
  output: string;
  durationMs: number;
  /** The ssh connection dropped while it ran; the result was read after reconnecting. */
  reconnected: boolean;
}

/** Where transient units leave their exit status, to be read after a dropped connection. */
export const STATUS_DIR = '/run/exo-deploy';
/** Hosts without systemd as PID 1 (containers, this project's own test machine) run it directly. */
const NO_SYSTEMD =
  /Failed to connect to bus|System has not been booted with systemd|Failed to create bus connection/;

/** How long to wait between two tries while another activation holds the lock. */
const LOCK_RETRY_MS = 2000;

/**
 * skipPreSwitchChecks: for putting a host back on the system it ran before, which the system's
 * pre-switch checks (comparisons with the running system) must not refuse.
 */
/** The transient units activations run in: `${ACTIVATION_UNIT_PREFIX}…`. */
const ACTIVATION_UNIT_PREFIX = 'exo-deploy-switch-';

/** Until no activation of ours runs on the host (one a killed run started goes on without it),
 * up to timeoutMs. */
export async function activationsSettled(exec: Executor, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await exec.run(runningUnitsArgv(`${ACTIVATION_UNIT_PREFIX}*`));
    if (r.exitCode === 0 && !r.stdout.trim()) return;
    await sleep(1_000);
  }
}

export async function activate(
  exec: Executor,
  systemPath: string,
  action: SwitchAction,
  timeouts: Timeouts,
  signal?: AbortSignal,
  { skipPreSwitchChecks = false } = {},
): Promise<ActivationResult> {
  const started = Date.now();
  const env = skipPreSwitchChecks ? [SKIP_PRE_SWITCH_CHECKS] : [];
  const deadline = started + timeouts.activate;
  const options = { root: true, mutates: true, timeoutMs: timeouts.activate } as const;
  // The unit's PATH may hold no mkdir (NixOS): the status folder is made from here.
  await exec.must(mkdirArgv(STATUS_DIR), { root: true, mutates: true });
  let result: ProcessResult;
  let reconnected = false;
  for (let attempt = 1; ; attempt++) {
    const unit = `${ACTIVATION_UNIT_PREFIX}${started}-${process.pid}-${attempt}`;
    const statusFile = `${STATUS_DIR}/${unit}.status`;
    try {
      result = await exec.run(
        transientUnitArgv(unit, statusFile, switchToConfigurationArgv(systemPath, action), env),
        options,
      );
      if (result.exitCode !== 0 && NO_SYSTEMD.test(result.stderr))
        result = await exec.run(
          [
            ...(env.length ? ['env', ...env] : []),
            ...switchToConfigurationArgv(systemPath, action),
          ],
          options,
        );
    } catch (error) {
      if (!(error instanceof ExoDeployError) || exec.host.local) throw error;
      result = await resultAfterReconnect(exec, unit, statusFile, deadline, signal);
      reconnected = true;
    }
    // Another activation (one cut off from an earlier run, or nixos-rebuild by hand) is still
    // running: wait for it rather than fail, within the activation timeout.
    if (
      result.exitCode === 0 ||
      !LOCK_HELD.test(`${result.stdout}${result.stderr}`) ||
      Date.now() + LOCK_RETRY_MS > deadline
    )
      break;
    await sleep(LOCK_RETRY_MS, undefined, { signal });
  }
  if (result.exitCode !== 0 && result.exitCode !== UNITS_FAILED_EXIT)
    throw new CommandFailed(exec.host.name, result);
  return {
    action,
    systemPath,
    exitCode: result.exitCode,
    unitsFailed: result.exitCode === UNITS_FAILED_EXIT,
    output: `${result.stdout}${result.stderr}`,
    durationMs: Date.now() - started,
    reconnected,
  };
}

/** The connection dropped: wait until the host answers, until the unit is done, then read its status. */
async function resultAfterReconnect(
  exec: Executor,
  unit: string,
  statusFile: string,
  deadline: number,
  signal?: AbortSignal,
): Promise<ProcessResult> {
  for (;;) {
    if (Date.now() > deadline) {
      throw new ExoDeployError(
        `${exec.host.name}: lost the connection during activation and could not read its result in time (unit ${unit})`,
        ExitCode.needsPerson,
        { host: exec.host.name },
      );
    }
    await sleep(2000, undefined, { signal });
    try {
      const state = (await exec.run(unitActiveArgv(unit))).stdout.trim();
      if (state === 'active' || state === 'activating' || state === 'deactivating') continue;
      const status = await exec.run(['cat', statusFile], { root: true });
      const exitCode = /^\d+$/.test(status.stdout.trim()) ? Number(status.stdout.trim()) : 1;
      return {
        argv: [unit],
        exitCode,
        stdout: '',
        stderr: status.exitCode === 0 ? '' : `the unit ${unit} left no exit status`,
        durationMs: 0,
        timedOut: false,
      };
    } catch (error) {
      if (!(error instanceof ExoDeployError)) throw error; // still unreachable: try again
    }
  }
}

/** Waits until a host answers over ssh again (after a network blip), up to timeoutMs. */
export async function waitUntilReachable(
  exec: Executor,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await exec.run(['true']);
      return;
    } catch (error) {
      if (!(error instanceof ExoDeployError) || Date.now() > deadline) throw error;
      await sleep(2000, undefined, { signal });
    }
  }
}

/** What the host runs now and what its profile (the boot default) is: canonical store paths. */
export async function runningAndProfile(
  exec: Executor,
): Promise<{ running: string; profile: string }> {
  const [running = '', profile = ''] = (
    await exec.must(readlinkArgv([exec.host.currentSystem, exec.host.systemProfile]))
  ).stdout.split('\n');
  return { running, profile };
}

export async function pointProfileAtGeneration(exec: Executor, generation: number): Promise<void> {
  await exec.must(switchGenerationArgv(exec.host.systemProfile, generation), {
    root: true,
    mutates: true,
  });
}

export async function pointProfileAtPath(exec: Executor, systemPath: string): Promise<void> {
  await exec.must(setProfileArgv(exec.host.systemProfile, systemPath), {
    root: true,
    mutates: true,
  });
}
