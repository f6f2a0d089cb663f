// Telling an activation's failed units from older ones. switch-to-configuration exits 4 when
// any unit of the system is failed after it ran, also one that failed hours before (a nightly
// backup, a health check that gave up) and that the activation never touched: that must not
// roll a good release back. A unit counts as an older failure when it was failed before the
// activation and still is, in the same run (InvocationID changes at every start).
import type { Executor } from '../run/executor.js';
import {
  failedUnitsArgv,
  invocationsArgv,
  parseFailedUnits,
  parseInvocations,
  type UnitInvocation,
} from '../programs/systemctl.js';

/** The failed units of a host and their runs; empty when none (or when the host cannot say). */
export async function failedUnits(exec: Executor): Promise<Map<string, UnitInvocation>> {
  const listed = await exec.run(failedUnitsArgv());
  const units = listed.exitCode === 0 ? parseFailedUnits(listed.stdout) : [];
  if (units.length === 0) return new Map();
  const shown = await exec.run(invocationsArgv(units));
  return shown.exitCode === 0 ? parseInvocations(shown.stdout) : new Map();
}

/** The units switch-to-configuration names in "the following units failed: a, b". */
export function reportedFailedUnits(output: string): string[] {
  const line = /the following units failed: (.*)$/m.exec(output);
  return line?.[1]
    ? line[1]
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean)
    : [];
}

/**
 * The units an activation reported failed, when every one of them is an older failure and
 * none is `keep` (exo's own unit always counts); null when any counts against the activation
 * or the output names none.
 */
export async function olderFailuresOnly(
  exec: Executor,
  before: ReadonlyMap<string, UnitInvocation>,
  output: string,
  keep: string,
): Promise<string[] | null> {
  const reported = reportedFailedUnits(output);
  if (reported.length === 0 || reported.includes(keep) || reported.some((u) => !before.has(u)))
    return null;
  const now = await exec.run(invocationsArgv(reported));
  if (now.exitCode !== 0) return null;
  const after = parseInvocations(now.stdout);
  const same = reported.every(
    (u) =>
      after.get(u)?.activeState === 'failed' &&
      after.get(u)?.invocation === before.get(u)?.invocation &&
      before.get(u)?.invocation !== '',
  );
  return same ? reported : null;
}
