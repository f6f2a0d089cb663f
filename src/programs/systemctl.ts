// systemctl: the state of the exo unit, read as key=value properties.
const UNIT_PROPERTIES = [
  'LoadState',
  'ActiveState',
  'SubState',
  'Result',
  'NRestarts',
  'MainPID',
  'ExecMainStartTimestamp',
  'MemoryCurrent',
] as const;

export const showUnitArgv = (unit: string) => [
  // Microseconds: "is this journal line the running process's?" is decided to the
  // millisecond, and a crash and the rollback after it can fall within one second.
  'systemctl',
  'show',
  unit,
  `--property=${UNIT_PROPERTIES.join(',')}`,
  '--timestamp=us+utc',
];

export interface UnitState {
  loadState: string;
  activeState: string;
  subState: string;
  result: string;
  restarts: number;
  mainPid: number;
  /** Epoch milliseconds, or undefined when the unit never started. */
  startedAt: number | undefined;
  /** Bytes, or undefined where accounting is off. */
  memoryBytes: number | undefined;
}

export function parseUnitState(output: string): UnitState {
  const props = new Map<string, string>();
  for (const line of output.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const num = (key: string) => {
    const value = props.get(key);
    return value && /^\d+$/.test(value) ? Number(value) : undefined;
  };
  const startedAt = parseTimestamp(props.get('ExecMainStartTimestamp') ?? '');
  return {
    loadState: props.get('LoadState') ?? 'unknown',
    activeState: props.get('ActiveState') ?? 'unknown',
    subState: props.get('SubState') ?? 'unknown',
    result: props.get('Result') ?? 'unknown',
    restarts: num('NRestarts') ?? 0,
    mainPid: num('MainPID') ?? 0,
    startedAt,
    memoryBytes: num('MemoryCurrent'),
  };
}

/** Epoch ms from `--timestamp=us+utc` ("Sat 2026-11-28 06:51:34.977505 UTC") or `unix`
 * ("@1795848694"); undefined when empty (never started). */
function parseTimestamp(value: string): number | undefined {
  const unix = /^@(\d+)$/.exec(value);
  if (unix) return unix[1] === '0' ? undefined : Number(unix[1]) * 1000;
  const utc = /(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)? UTC$/.exec(value);
  if (!utc) return undefined;
  return Date.parse(`${utc[1]}T${utc[2]}${(utc[3] ?? '').slice(0, 4)}Z`);
}

/** The inverse of parseTimestamp: what `--timestamp=us+utc` prints (the simulated fleets use it). */
export function formatTimestamp(ms: number): string {
  const d = new Date(ms);
  return `${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]} ${d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.(\d{3})Z$/, '.$1000 UTC')}`;
}

export const systemdVersionArgv = () => ['systemctl', '--version'];

/** The units in the failed state (`--plain`: one unit a line, its name first). */
export const failedUnitsArgv = () => [
  'systemctl',
  'list-units',
  '--state=failed',
  '--all',
  '--plain',
  '--no-legend',
  '--full',
];

export function parseFailedUnits(output: string): string[] {
  return output
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((unit) => /^[\w@:.\\-]+\.[a-z]+$/.test(unit));
}

/** The inverse of parseFailedUnits: what `list-units --plain --no-legend` prints for them. */
export const formatFailedUnits = (units: readonly string[]) =>
  units.map((u) => `${u} loaded failed failed ${u}\n`).join('');

/** Which run of each unit is the current one: InvocationID changes at every start. */
export const invocationsArgv = (units: readonly string[]) => [
  'systemctl',
  'show',
  '--property=Id,InvocationID,ActiveState',
  '--',
  ...units,
];

export interface UnitInvocation {
  invocation: string;
  activeState: string;
}

export function parseInvocations(output: string): Map<string, UnitInvocation> {
  const units = new Map<string, UnitInvocation>();
  for (const block of output.split(/\n\s*\n/)) {
    const props = new Map(
      block
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()] as const),
    );
    const id = props.get('Id');
    if (id)
      units.set(id, {
        invocation: props.get('InvocationID') ?? '',
        activeState: props.get('ActiveState') ?? 'unknown',
      });
  }
  return units;
}

/** The inverse of parseInvocations. */
export const formatInvocations = (units: ReadonlyMap<string, UnitInvocation>) =>
  [...units]
    .map(([id, u]) => `Id=${id}\nInvocationID=${u.invocation}\nActiveState=${u.activeState}\n`)
    .join('\n');

/** Reboots the host; the ssh session that asks may be cut before it answers. */
export const rebootArgv = () => ['systemctl', 'reboot'];

/** Waits until the boot is done (no start job left), then prints the system's state: running,
 * degraded (a unit failed), …; exits non-zero for every state but running. */
export const bootDoneArgv = () => ['systemctl', 'is-system-running', '--wait'];

/** The units matching a pattern that are running or starting, one name a line first. */
export const runningUnitsArgv = (pattern: string) => [
  'systemctl',
  'list-units',
  '--plain',
  '--no-legend',
  '--state=active,activating,deactivating',
  '--',
  pattern,
];
