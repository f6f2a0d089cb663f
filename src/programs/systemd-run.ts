// systemd-run: a command in a transient unit, which outlives the ssh session that started it.

/** The command's exit status also goes to statusFile (whose folder must exist), to be read after
 * a dropped connection. Shell built-ins only: on NixOS a unit's PATH holds nothing but systemd's
 * own programs. systemd expands $VAR in a unit's command line itself (systemd-run
 * --expand-environment=no only exists from systemd 254), so the script's every $ is written $$. */
const SCRIPT =
  'status_file=$1 && shift && "$@"; code=$?; echo "$code" > "$status_file"; exit "$code"';

/** As nixos-rebuild-ng runs switch-to-configuration: LOCALE_ARCHIVE and NIXOS_INSTALL_BOOTLOADER
 * passed through from the caller, no password prompt; `env`: more NAME=VALUE settings. */
export const transientUnitArgv = (
  unit: string,
  statusFile: string,
  argv: readonly string[],
  env: readonly string[] = [],
) => [
  'systemd-run',
  '-E',
  'LOCALE_ARCHIVE',
  '-E',
  'NIXOS_INSTALL_BOOTLOADER',
  ...env.flatMap((e) => ['-E', e]),
  `--unit=${unit}`,
  '--wait',
  '--pipe',
  '--collect',
  '--no-ask-password',
  '--quiet',
  '--service-type=exec',
  '--',
  'sh',
  '-c',
  SCRIPT.replaceAll('$', () => '$$'),
  'sh',
  statusFile,
  ...argv,
];

/** switch-to-configuration skips the system's pre-switch checks with this (and only this) set. */
export const SKIP_PRE_SWITCH_CHECKS = 'NIXOS_NO_CHECK=1';

/** Whether another activation holds switch-to-configuration's lock: NixOS's takes it without
 * waiting and fails with this line. */
export const LOCK_HELD = /Could not acquire lock/;

export const unitActiveArgv = (unit: string) => ['systemctl', 'is-active', unit];

// The revert timer: a transient timer on the host that puts it back on the system it ran
// before, unless it is restarted (confirmed) in time. The host reverts itself when a release
// cut the deployer off (sshd, the firewall, the network), or when the deployer died.

/** What the timer puts the host back on, and with what. sh and nixEnv: canonical paths found
 * before the deploy changed anything (a unit's PATH holds neither, and /run/current-system
 * moves). */
export interface RevertTo {
  systemProfile: string;
  running: string;
  profilePath: string | null;
  profileGeneration: number | null;
  sh: string;
  nixEnv: string;
}

/** The exit status of a switch-to-configuration that found its lock taken. */
const LOCK_HELD_EXIT = 11;

/** A missing argument ("-"): systemd writes a transient unit to a file under
 * /run/systemd/transient and reads it back at every daemon-reload (each activation does one),
 * so its command line holds nothing that file could mangle: no script, no empty argument. */
const NONE = '-';

/** The scripts' first step: the profile back on its generation (else its path), unless it is
 * there; `code` is set to how it went. */
const PROFILE_BACK = `code=0
if [ -n "$profile_path" ] && ! [ "$profile" -ef "$profile_path" ]; then
  if [ -n "$generation" ]; then
    "$nix_env" -p "$profile" --switch-generation "$generation" || code=$?
  else
    "$nix_env" -p "$profile" --set "$profile_path" || code=$?
  fi
fi`;

/** The scripts' end: another activation holds the lock (systemd starts the script again), or
 * the exit status goes to the status file. */
const STATUS_UNLESS_LOCKED = `if [ "$code" = ${LOCK_HELD_EXIT} ]; then exit ${LOCK_HELD_EXIT}; fi
echo "$code" > "$status_file"`;

/**
 * The revert, as a file on the host run by the timer's unit. Shell built-ins only (a unit's
 * PATH holds systemd's programs alone). The profile goes back first (a switch had moved it),
 * then the system the profile names becomes the boot default, then the running system is
 * activated: `switch` when it is the profile's, else `test`. Every step is idempotent, so that
 * systemd may start the script again while another activation holds switch-to-configuration's
 * lock.
 */
export const REVERT_SCRIPT = `status_file=$1 profile=$2 running=$3 profile_path=$4 generation=$5 nix_env=$6
[ "$profile_path" = ${NONE} ] && profile_path=
[ "$generation" = ${NONE} ] && generation=
echo "exo-deploy: the deployer did not confirm in time: putting this host back on $running"
${PROFILE_BACK}
action=test
if [ "$code" = 0 ] && [ -n "$profile_path" ]; then
  if [ "$profile_path" = "$running" ]; then
    action=switch
  else
    NIXOS_NO_CHECK=1 "$profile_path/bin/switch-to-configuration" boot || code=$?
  fi
fi
if [ "$code" = 0 ]; then
  NIXOS_NO_CHECK=1 "$running/bin/switch-to-configuration" "$action"
  code=$?
fi
${STATUS_UNLESS_LOCKED}
exit "$code"
`;

/** Writes REVERT_SCRIPT (stdin) to scriptFile, in a folder made if missing, then arms the timer:
 * one round trip. */
export const armRevertTimerArgv = (
  dir: string,
  unit: string,
  delaySeconds: number,
  scriptFile: string,
  statusFile: string,
  to: RevertTo,
) => [
  'sh',
  '-c',
  'mkdir -p -- "$1" && umask 077 && cat > "$2" && shift 2 && exec "$@"',
  'sh',
  dir,
  scriptFile,
  ...revertTimerArgv(unit, delaySeconds, scriptFile, statusFile, to),
];

/** Arms the timer (unit.timer starting unit.service) to fire delaySeconds from now, once, and
 * run scriptFile (REVERT_SCRIPT); both units go away after it fired. */
export const revertTimerArgv = (
  unit: string,
  delaySeconds: number,
  scriptFile: string,
  statusFile: string,
  to: RevertTo,
) =>
  timerArgv(unit, delaySeconds, 'back to the previous system unless the deployer confirms', [
    to.sh,
    scriptFile,
    statusFile,
    to.systemProfile,
    to.running,
    to.profilePath ?? NONE,
    to.profileGeneration === null ? NONE : String(to.profileGeneration),
    to.nixEnv,
  ]);

/** A one-shot timer whose service runs `command`: again while it exits with LOCK_HELD_EXIT. */
const timerArgv = (
  unit: string,
  delaySeconds: number,
  description: string,
  command: readonly string[],
) => [
  'systemd-run',
  `--unit=${unit}`,
  `--description=exo-deploy: ${description}`,
  `--on-active=${delaySeconds}`,
  '--timer-property=AccuracySec=1s',
  '--timer-property=RemainAfterElapse=no',
  '--collect',
  '--no-ask-password',
  '--quiet',
  '--service-type=exec',
  '-E',
  'LOCALE_ARCHIVE',
  '-p',
  `RestartForceExitStatus=${LOCK_HELD_EXIT}`,
  '-p',
  'RestartSec=3s',
  '--',
  ...command,
];

// The reboot guard: the revert timer of a host that rebooted into a new system. A transient
// timer does not outlive the boot that armed it, so the host arms this one itself, at the boot.

/** What the reboot guard's timer boots the host back into. */
export interface RebootRevertTo {
  /** The guard's file of arguments, emptied when it fires. */
  armFile: string;
  systemProfile: string;
  /** The system the profile named before: the boot default again. */
  bootDefault: string;
  /** The profile's generation that named it; null: none (the profile is set to bootDefault). */
  profileGeneration: number | null;
  sh: string;
  nixEnv: string;
  systemctl: string;
}

/**
 * The reboot guard's revert, run by its timer's unit: the profile back, its system the boot
 * default, then a reboot into it. Shell built-ins and the programs it is given only. Idempotent,
 * as REVERT_SCRIPT: systemd starts it again while another activation holds the lock.
 */
export const REBOOT_REVERT_SCRIPT = `status_file=$1 profile=$2 profile_path=$3 generation=$4 nix_env=$5 systemctl=$6 arm_file=$7
[ "$generation" = ${NONE} ] && generation=
echo "exo-deploy: the deployer did not confirm in time after this host booted a new system: booting it back into $profile_path"
${PROFILE_BACK}
if [ "$code" = 0 ]; then
  NIXOS_NO_CHECK=1 "$profile_path/bin/switch-to-configuration" boot
  code=$?
fi
${STATUS_UNLESS_LOCKED}
# a guard fires once: emptied, its arguments arm nothing at a later boot
: > "$arm_file"
[ "$code" = 0 ] || exit "$code"
exec "$systemctl" reboot
`;

/** systemd-run's arguments (without the program) that arm the reboot guard's timer: the host
 * runs systemd-run with them when it boots the new system. */
export const rebootGuardTimerArgs = (
  unit: string,
  delaySeconds: number,
  scriptFile: string,
  statusFile: string,
  to: RebootRevertTo,
) =>
  timerArgv(unit, delaySeconds, 'boot the previous system again unless the deployer confirms', [
    to.sh,
    scriptFile,
    statusFile,
    to.systemProfile,
    to.bootDefault,
    to.profileGeneration === null ? NONE : String(to.profileGeneration),
    to.nixEnv,
    to.systemctl,
    to.armFile,
  ]).slice(1);

/** The file the host's guard reads those arguments from (`xargs -0`): a NUL after each. */
export const guardArgsFile = (args: readonly string[]) => args.map((a) => `${a}\0`).join('');

/** Restarts the timer's countdown, and succeeds only while it has not fired: restarting a
 * timer that is gone fails, and a revert under way or done shows as its active service or its
 * status file. */
export const confirmTimerArgv = (unit: string, statusFile: string) => [
  'sh',
  '-c',
  'systemctl restart -- "$1.timer" && ! systemctl is-active --quiet -- "$1.service" && ! [ -e "$2" ]',
  'sh',
  unit,
  statusFile,
];

/** Stops the timer (it will not fire) and removes its files; exits as systemctl stop did: 5
 * when the timer was gone already (it fired, or was stopped). */
export const stopTimerArgv = (unit: string, files: readonly string[]) => [
  'sh',
  '-c',
  'unit=$1 && shift && systemctl stop -- "$unit.timer"; code=$? && rm -f -- "$@" && exit "$code"',
  'sh',
  unit,
  ...files,
];
export const UNIT_NOT_LOADED_EXIT = 5;
