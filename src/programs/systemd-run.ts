// systemd-run: a command in a transient unit, which outlives the ssh session that started it.

/** The command's exit status also goes to statusFile (whose folder must exist), to be read after
 * a dropped connection. Shell built-ins only: on NixOS a unit's PATH holds nothing but systemd's
 * own programs. systemd expands $VAR in a unit's command line itself (systemd-run
 * --expand-environment=no only exists from systemd 254), so the script's every $ is written $$. */
const SCRIPT = 'status_file=$1 && shift && "$@"; code=$?; echo "$code" > "$status_file"; exit "$code"';

/** As nixos-rebuild-ng runs switch-to-configuration: LOCALE_ARCHIVE and NIXOS_INSTALL_BOOTLOADER
 * passed through from the caller, no password prompt; `env`: more NAME=VALUE settings. */
export const transientUnitArgv = (unit: string, statusFile: string, argv: readonly string[], env: readonly string[] = []) => [
  'systemd-run', '-E', 'LOCALE_ARCHIVE', '-E', 'NIXOS_INSTALL_BOOTLOADER', ...env.flatMap((e) => ['-E', e]), `--unit=${unit}`, '--wait', '--pipe', '--collect', '--no-ask-password', '--quiet', '--service-type=exec', '--',
  'sh', '-c', SCRIPT.replaceAll('$', () => '$$'), 'sh', statusFile, ...argv,
];

/** switch-to-configuration skips the system's pre-switch checks with this (and only this) set. */
export const SKIP_PRE_SWITCH_CHECKS = 'NIXOS_NO_CHECK=1';

/** Whether another activation holds switch-to-configuration's lock: NixOS's takes it without
 * waiting and fails with this line. */
export const LOCK_HELD = /Could not acquire lock/;

export const unitActiveArgv = (unit: string) => ['systemctl', 'is-active', unit];
