// systemctl: the state of the exo unit, read as key=value properties.
export const UNIT_PROPERTIES = [
  'LoadState', 'ActiveState', 'SubState', 'Result', 'NRestarts', 'MainPID',
  'ExecMainStartTimestamp', 'MemoryCurrent',
] as const;

export const showUnitArgv = (unit: string) => [
  'systemctl', 'show', unit, `--property=${UNIT_PROPERTIES.join(',')}`, '--timestamp=unix',
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
  const stamp = /^@(\d+)/.exec(props.get('ExecMainStartTimestamp') ?? '');
  return {
    loadState: props.get('LoadState') ?? 'unknown',
    activeState: props.get('ActiveState') ?? 'unknown',
    subState: props.get('SubState') ?? 'unknown',
    result: props.get('Result') ?? 'unknown',
    restarts: num('NRestarts') ?? 0,
    mainPid: num('MainPID') ?? 0,
    startedAt: stamp && stamp[1] !== '0' ? Number(stamp[1]) * 1000 : undefined,
    memoryBytes: num('MemoryCurrent'),
  };
}

export const systemdVersionArgv = () => ['systemctl', '--version'];
