// One host's check, against a fake run layer: which journal lines count.
import { describe, expect, it } from 'vitest';
import { resolveHost } from '../../src/config/host.js';
import { DEFAULT_JOURNAL_PATTERNS } from '../../src/config/schema.js';
import type { Config } from '../../src/config/load.js';
import { checkHost } from '../../src/health/check.js';
import { formatTimestamp } from '../../src/programs/systemctl.js';
import { silentLog } from '../../src/output/log.js';
import { createExecutor } from '../../src/run/executor.js';
import { fakeRunner } from '../sim/run-layer.js';
import { hostDefaults } from './host-defaults.js';

const defaults = hostDefaults({ system_profile: '/p', current_system: '/c' });
const health = {
  probes: [],
  journal_patterns: DEFAULT_JOURNAL_PATTERNS,
  timeout: 1000,
} as unknown as Config['health'];
const line = (atMs: number, message: string) =>
  JSON.stringify({ __REALTIME_TIMESTAMP: String(atMs * 1000), MESSAGE: message });

describe('the journal part of a check', () => {
  // A crash at .067 s and the rollback's activation at .427 s of the same second: journalctl
  // --since takes whole seconds, so the old process's last line comes back with the new ones.
  const second = Date.UTC(2026, 10, 28, 6, 51, 34);
  const activatedAt = second + 427;
  const journal = [
    line(second + 67, 'RuntimeError: Runner found to be dead'),
    line(second + 900, 'INFO: starting exo'),
  ].join('\n');

  const check = (startedAt: number, journalOut: string) => {
    const fake = fakeRunner((argv) => {
      if (argv[0] === 'systemctl')
        return {
          stdout: `ActiveState=active\nSubState=running\nMainPID=42\nExecMainStartTimestamp=${formatTimestamp(startedAt)}\n`,
        };
      if (argv[0] === 'journalctl') return { stdout: `${journalOut}\n` };
      return undefined;
    });
    const exec = createExecutor(resolveHost('h1', { target: 'local', tags: [] }, defaults), {
      runner: fake.runner,
      cleanupRunner: fake.runner,
      log: silentLog,
      dryRun: false,
      defaultTimeoutMs: 1000,
      sshConnectTimeoutMs: 1000,
      sshProgram: 'ssh',
    });
    const fetch = async () => {
      throw new Error('no probes');
    };
    return checkHost(
      exec,
      {
        health,
        nix: 'nix',
        sinceMs: activatedAt,
        sinceProcessStart: true,
        expectedNodes: null,
        fetch,
      },
      ['unit', 'journal'],
    );
  };

  it('counts no line from before the time asked for, even within the same second', async () => {
    const c = await check(second + 850, journal);
    expect(c.journal.scanned).toBe(1);
    expect(c.journal.matches).toEqual([]);
    expect(c.healthy).toBe(true);
  });

  it('still finds a failure line after it', async () => {
    const c = await check(
      second + 850,
      [journal, line(second + 950, 'RuntimeError: Runner found to be dead')].join('\n'),
    );
    expect(c.journal.matches.map((m) => m.message)).toEqual([
      'RuntimeError: Runner found to be dead',
    ]);
    expect(c.healthy).toBe(false);
  });
});
