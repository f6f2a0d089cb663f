// A host's revert timer: a transient systemd timer that puts the host back on the system it ran
// before, unless the deployer restarts it in time over a new ssh connection. Armed before a
// deploy's first activation of the host, stopped once the host is done.
import { ExitCode, ExoDeployError } from '../errors.js';
import { programPathArgv } from '../programs/coreutils.js';
import {
  armRevertTimerArgv,
  confirmTimerArgv,
  REVERT_SCRIPT,
  stopTimerArgv,
  UNIT_NOT_LOADED_EXIT,
  unitActiveArgv,
  type RevertTo,
} from '../programs/systemd-run.js';
import type { Executor } from '../run/executor.js';
import { STATUS_DIR } from './activate.js';

export interface RevertTimer {
  unit: string;
  /** The revert script the timer's unit runs. */
  scriptFile: string;
  /** The revert's exit status, written when it is done. */
  statusFile: string;
  /** Every file of the timer's on the host, removed when it is stopped. */
  files: readonly string[];
}

export const revertTimerUnit = (runId: string) => `exo-deploy-revert-${runId}`;

export async function armRevertTimer(
  exec: Executor,
  unit: string,
  to: Pick<RevertTo, 'running' | 'profilePath' | 'profileGeneration'>,
  delayMs: number,
): Promise<RevertTimer> {
  const [sh, nixEnv] = (
    await Promise.all([
      exec.must(programPathArgv('sh'), { root: true }),
      exec.must(programPathArgv('nix-env'), { root: true }),
    ])
  ).map((r) => r.stdout.trim()) as [string, string];
  const scriptFile = `${STATUS_DIR}/${unit}.sh`;
  const statusFile = `${STATUS_DIR}/${unit}.status`;
  const timer = { unit, scriptFile, statusFile, files: [scriptFile, statusFile] };
  const argv = armRevertTimerArgv(
    STATUS_DIR,
    unit,
    Math.ceil(delayMs / 1000),
    timer.scriptFile,
    timer.statusFile,
    { ...to, systemProfile: exec.host.systemProfile, sh, nixEnv },
  );
  await exec.must(argv, { root: true, mutates: true, input: REVERT_SCRIPT });
  return timer;
}

export type Confirmation = { confirmed: true } | { confirmed: false; fired: boolean; why: string };

/** Restarts the timer's countdown over a new ssh connection. fired: the timer is gone or the
 * revert has started, so the host is on its way back. */
export async function confirmRevertTimer(
  exec: Executor,
  timer: RevertTimer,
  timeoutMs: number,
): Promise<Confirmation> {
  try {
    const r = await exec.run(confirmTimerArgv(timer.unit, timer.statusFile), {
      root: true,
      mutates: true,
      fresh: true,
      timeoutMs,
    });
    if (r.exitCode === 0) return { confirmed: true };
    if (r.timedOut)
      return {
        confirmed: false,
        fired: false,
        why: `confirming took longer than ${Math.round(timeoutMs / 1000)}s`,
      };
    return { confirmed: false, fired: true, why: `its revert timer ${timer.unit} has fired` };
  } catch (error) {
    if (!(error instanceof ExoDeployError)) throw error;
    return { confirmed: false, fired: false, why: error.message };
  }
}

/** Stops the timer and removes its files. False when it was gone already (it fired). Runs
 * after Ctrl-C too. */
export async function stopRevertTimer(
  exec: Executor,
  timer: Pick<RevertTimer, 'unit' | 'files'>,
): Promise<boolean> {
  const r = await exec.run(stopTimerArgv(timer.unit, timer.files), {
    root: true,
    mutates: true,
    afterInterrupt: true,
  });
  if (r.exitCode === 0 || r.exitCode === UNIT_NOT_LOADED_EXIT) return r.exitCode === 0;
  throw new ExoDeployError(
    `${exec.host.name}: could not stop its revert timer ${timer.unit}: ${r.stderr.trim() || `exit ${r.exitCode}`}`,
    ExitCode.failed,
    { host: exec.host.name },
  );
}

/** Stops a timer, and says whether it had fired. A reboot guard's timer is loaded only once
 * the host armed it at boot: its revert's status tells. */
export async function disarm(
  exec: Executor,
  timer: RevertTimer & { rebootGuard: boolean },
): Promise<'stopped' | 'fired'> {
  const guardStatus = timer.rebootGuard ? await revertStatus(exec, timer) : null;
  const stopped = await stopRevertTimer(exec, timer);
  return (timer.rebootGuard ? guardStatus !== null : !stopped) ? 'fired' : 'stopped';
}

/** A revert's exit status, once it ran; null: it has not run. */
export async function revertStatus(
  exec: Executor,
  timer: Pick<RevertTimer, 'statusFile'>,
): Promise<number | null> {
  // (also after Ctrl-C: the guard is taken off then)
  const code = (
    await exec.run(['cat', '--', timer.statusFile], { root: true, afterInterrupt: true })
  ).stdout.trim();
  return /^\d+$/.test(code) ? Number(code) : null;
}

export type RevertState = { done: false; running: boolean } | { done: true; exitCode: number };

/** Whether the host's revert has run: its exit status once it is done. */
export async function revertState(exec: Executor, timer: RevertTimer): Promise<RevertState> {
  const [exitCode, active] = await Promise.all([
    revertStatus(exec, timer),
    exec.run(unitActiveArgv(`${timer.unit}.service`)),
  ]);
  if (exitCode !== null) return { done: true, exitCode };
  return { done: false, running: ['active', 'activating'].includes(active.stdout.trim()) };
}
