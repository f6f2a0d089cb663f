// An activation's exit 4 caused only by units that were failed before it and that it never
// touched does not count against the release; any other failed unit does.
import { describe, expect, it } from 'vitest';
import type { Executor } from '../../src/run/executor.js';
import {
  formatFailedUnits,
  formatInvocations,
  type UnitInvocation,
} from '../../src/programs/systemctl.js';
import { failedUnits, olderFailuresOnly } from '../../src/system/failed-units.js';

type Units = Map<string, UnitInvocation>;
const failed = (invocation: string): UnitInvocation => ({ invocation, activeState: 'failed' });

/** A host whose systemd holds `units`, answering list-units and show as systemctl does. */
function hostWith(units: Units): Executor {
  const result = (stdout: string) => ({
    argv: [],
    exitCode: 0,
    stdout,
    stderr: '',
    durationMs: 1,
    timedOut: false,
  });
  return {
    host: { name: 'h1' } as Executor['host'],
    async run(argv) {
      if (argv[1] === 'list-units')
        return result(
          formatFailedUnits(
            [...units].filter(([, u]) => u.activeState === 'failed').map(([id]) => id),
          ),
        );
      if (argv[1] === 'show') {
        const asked = argv.slice(argv.indexOf('--') + 1);
        return result(
          formatInvocations(
            new Map(
              asked.map((id) => [id, units.get(id) ?? { invocation: '', activeState: 'inactive' }]),
            ),
          ),
        );
      }
      throw new Error(`unexpected ${argv.join(' ')}`);
    },
    must: async () => {
      throw new Error('not used');
    },
    close: async () => {},
  };
}

const STC = 'warning: the following units failed: exo-backup.service\n';

describe('older failed units', () => {
  it('a unit failed before, in the same run, is the only failure: not counted', async () => {
    const before = await failedUnits(hostWith(new Map([['exo-backup.service', failed('a1')]])));
    expect([...before.keys()]).toEqual(['exo-backup.service']);
    expect(
      await olderFailuresOnly(
        hostWith(new Map([['exo-backup.service', failed('a1')]])),
        before,
        STC,
        'exo.service',
      ),
    ).toEqual(['exo-backup.service']);
  });
  it('the unit ran again during the activation (a new InvocationID) and failed: counted', async () => {
    const before = await failedUnits(hostWith(new Map([['exo-backup.service', failed('a1')]])));
    expect(
      await olderFailuresOnly(
        hostWith(new Map([['exo-backup.service', failed('b2')]])),
        before,
        STC,
        'exo.service',
      ),
    ).toBeNull();
  });
  it('a unit that was not failed before: counted', async () => {
    const before = await failedUnits(hostWith(new Map()));
    expect(before.size).toBe(0);
    expect(
      await olderFailuresOnly(
        hostWith(new Map([['exo-backup.service', failed('a1')]])),
        before,
        STC,
        'exo.service',
      ),
    ).toBeNull();
  });
  it("exo's own unit always counts, and so does output that names no unit", async () => {
    const units = new Map([
      ['exo.service', failed('x')],
      ['exo-backup.service', failed('a1')],
    ]);
    const before = await failedUnits(hostWith(units));
    expect(
      await olderFailuresOnly(
        hostWith(units),
        before,
        'warning: the following units failed: exo-backup.service, exo.service\n',
        'exo.service',
      ),
    ).toBeNull();
    expect(
      await olderFailuresOnly(
        hostWith(units),
        before,
        "Command 'x' returned non-zero exit status 4.\n",
        'exo.service',
      ),
    ).toBeNull();
  });
});
