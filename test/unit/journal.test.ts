import { appendFile, readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { foldJournal, journalFile, latestDeploy, DeployJournal } from '../../src/deploy/journal.js';

describe('run journal', () => {
  /** A reboot guard's timer as the deploy journals it: read back whole. */
  const guard = {
    unit: 'exo-deploy-revert-20261128-031500-123',
    state: 'armed',
    scriptFile: '/var/lib/exo-deploy/reboot-guard/revert.sh',
    statusFile: '/var/lib/exo-deploy/reboot-guard/status',
    files: ['/var/lib/exo-deploy/reboot-guard/arm'],
    rebootGuard: true,
  } as const;

  it("is appended in order, one fsynced line per event, and folds into each host's last state", async () => {
    const state = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-journal-'));
    const journal = new DeployJournal(journalFile(state, '20261128-031500-123'));
    const before = {
      running: '/nix/store/a-old',
      profileGeneration: 4,
      profilePath: '/nix/store/a-old',
    };
    await Promise.all([
      journal.append({
        type: 'run',
        id: '20261128-031500-123',
        command: 'deploy h1,h2',
        hosts: ['h1', 'h2'],
        pid: 4242,
      }),
      journal.append({ type: 'before', host: 'h1', before }),
      journal.append({ type: 'phase', host: 'h1', phase: 'activated' }),
      journal.append({ type: 'revert-timer', host: 'h1', ...guard }),
      journal.append({ type: 'step', step: 'test', host: 'h1', ok: true, durationMs: 1200 }),
    ]);
    const lines = (await readFile(journal.file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).type);
    expect(lines).toEqual(['run', 'before', 'phase', 'revert-timer', 'step']);
    const run = await latestDeploy(state);
    expect(run).toMatchObject({
      id: '20261128-031500-123',
      pid: 4242,
      outcome: null,
      lastStep: { step: 'test', host: 'h1' },
    });
    expect(run?.hosts.get('h1')).toEqual({
      before,
      built: null,
      phase: 'activated',
      revertTimer: guard,
    });
    expect(run?.hosts.get('h2')).toEqual({
      before: null,
      built: null,
      phase: 'pending',
      revertTimer: null,
    });
  });

  it('after a torn last line (a crash while writing), the next event is a line of its own and is read back', async () => {
    const state = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-journal-'));
    const file = journalFile(state, '20261128-031500-123');
    const first = new DeployJournal(file);
    await first.append({ type: 'phase', host: 'h1', phase: 'activated' });
    await appendFile(file, '{"at":"y","type":"phase","host":"h1","pha');
    await new DeployJournal(file).append({ type: 'phase', host: 'h1', phase: 'permanent' });
    expect(foldJournal(await readFile(file, 'utf8')).hosts.get('h1')?.phase).toBe('permanent');
  });

  it('ignores a torn last line, as a crash while writing leaves it', () => {
    const text = `${JSON.stringify({ at: 'x', type: 'phase', host: 'h1', phase: 'permanent' })}\n{"at":"y","type":"phase","host":"h1","pha`;
    expect(foldJournal(text).hosts.get('h1')?.phase).toBe('permanent');
  });

  it("reads a revert timer from a journal written before timers recorded their files: a live timer's, with none", () => {
    const text = JSON.stringify({
      at: 'x',
      type: 'revert-timer',
      host: 'h1',
      unit: 'exo-deploy-revert-1',
      state: 'armed',
    });
    expect(foldJournal(text).hosts.get('h1')?.revertTimer).toEqual({
      unit: 'exo-deploy-revert-1',
      state: 'armed',
      scriptFile: '',
      statusFile: '',
      files: [],
      rebootGuard: false,
    });
  });

  it('has no latest run in a folder without journals', async () => {
    expect(
      await latestDeploy(await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-none-'))),
    ).toBeNull();
  });
});
