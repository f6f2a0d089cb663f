// systemd-run: a command in a transient unit, which outlives the ssh session that started it.

/** The command's exit status also goes to statusFile, to be read after a dropped connection.
 * systemd expands $VAR in a unit's command line itself (systemd-run --expand-environment=no
 * only exists from systemd 254), so the script's every $ is written $$ for it. */
const SCRIPT = 'status_file=$1 && shift && mkdir -p -- "${status_file%/*}" && "$@"; code=$?; echo "$code" > "$status_file"; exit "$code"';

export const transientUnitArgv = (unit: string, statusFile: string, argv: readonly string[]) => [
  'systemd-run', `--unit=${unit}`, '--wait', '--pipe', '--collect', '--quiet', '--service-type=exec', '--',
  'sh', '-c', SCRIPT.replaceAll('$', () => '$$'), 'sh', statusFile, ...argv,
];

export const unitActiveArgv = (unit: string) => ['systemctl', 'is-active', unit];
