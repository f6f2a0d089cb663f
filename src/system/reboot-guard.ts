// A host's reboot guard: the revert timer of a host that reboots into a new system. A transient
// timer does not outlive the boot that armed it, so before the reboot the deployer leaves what
// the timer needs in a folder that survives it, and the new system's exo-deploy-reboot-guard
// unit (services.exo) arms the timer at boot, when the host booted that system. Unless the
// deployer confirms in time over a new ssh connection, the host makes the system it ran before
// its boot default again and reboots into it: a release that cuts the deployer off after the
// reboot (sshd, the firewall, the network), or a deployer that died, cannot leave it there.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  privateDirArgv,
  programPathArgv,
  removeArgv,
  writeFileArgv,
} from '../programs/coreutils.js';
import {
  guardArgsFile,
  REBOOT_REVERT_SCRIPT,
  rebootGuardTimerArgs,
  unitActiveArgv,
} from '../programs/systemd-run.js';
import type { Executor } from '../run/executor.js';
import type { PreviousSystem } from './generations.js';
import type { RevertTimer } from './revert-timer.js';

/** The unit of the module's that arms the timer at boot (once per boot). */
const REBOOT_GUARD_UNIT = 'exo-deploy-reboot-guard.service';

/** The guard's files in its folder: `arm` (systemd-run's arguments; the guard acts while it
 * exists), `system` (the system it guards), the revert script and the revert's exit status. */
const guardFiles = (dir: string) => ({
  arm: `${dir}/arm`,
  system: `${dir}/system`,
  script: `${dir}/revert.sh`,
  status: `${dir}/status`,
});

/** What the guard boots back into: the profile's system before the deploy, by its
 * generation; or, where the profile named the guarded system already (an earlier run that
 * stopped after its `boot`), the system the host ran. */
export type GuardBack = { bootDefault: string; profileGeneration: number | null };

/** null: nothing to go back to that is not the guarded system itself (a guard would boot it
 * again and again). */
export function guardBack(before: PreviousSystem, system: string): GuardBack | null {
  if (before.profilePath && before.profilePath !== system)
    return { bootDefault: before.profilePath, profileGeneration: before.profileGeneration };
  if (before.running && before.running !== system)
    return { bootDefault: before.running, profileGeneration: null };
  return null;
}

/**
 * Leaves the guard on the host, for the boot into `system`: the timer fires delayMs after that
 * boot arms it and puts the host back on the system its profile named before. `arm` is written
 * last: a guard half left does nothing.
 */
export async function leaveRebootGuard(
  exec: Executor,
  dir: string,
  unit: string,
  system: string,
  back: GuardBack,
  delayMs: number,
): Promise<RevertTimer> {
  const [sh, nixEnv, systemctl] = (
    await Promise.all(
      ['sh', 'nix-env', 'systemctl'].map((p) => exec.must(programPathArgv(p), { root: true })),
    )
  ).map((r) => r.stdout.trim()) as [string, string, string];
  const files = guardFiles(dir);
  const write = (file: string, input: string) =>
    exec.must(writeFileArgv(file), { root: true, mutates: true, input });
  await exec.must(privateDirArgv(dir), { root: true, mutates: true });
  // a status left by an earlier guard would read as this one's revert
  await exec.must(removeArgv(files.status), { root: true, mutates: true });
  await write(files.script, REBOOT_REVERT_SCRIPT);
  await write(files.system, `${system}\n`);
  const args = rebootGuardTimerArgs(unit, Math.ceil(delayMs / 1000), files.script, files.status, {
    armFile: files.arm,
    systemProfile: exec.host.systemProfile,
    ...back,
    sh,
    nixEnv,
    systemctl,
  });
  await write(files.arm, guardArgsFile(args));
  return {
    unit,
    scriptFile: files.script,
    statusFile: files.status,
    // arm first: once it is gone, the guard does nothing at the next boot
    files: [files.arm, files.system, files.script, files.status],
  };
}

export type GuardState = { armed: true } | { armed: false; why: string };

/** How often the guard unit is asked whether it has run. */
const GUARD_POLL_MS = 1000;

/** Waits, up to timeoutMs, until the host's guard unit has run at this boot. */
export async function whenGuardArmed(
  exec: Executor,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<GuardState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = (await exec.run(unitActiveArgv(REBOOT_GUARD_UNIT))).stdout.trim();
    // a oneshot that remains after exit: active once it has armed the timer
    if (state === 'active') return { armed: true };
    if (state === 'failed') return { armed: false, why: `${REBOOT_GUARD_UNIT} failed at boot` };
    if (Date.now() > deadline)
      return {
        armed: false,
        why: `${REBOOT_GUARD_UNIT} had not run ${Math.round(timeoutMs / 1000)} s after the host answered (${state || 'no state'})`,
      };
    await sleep(GUARD_POLL_MS, undefined, { signal });
  }
}
