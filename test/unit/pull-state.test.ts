// Pull mode's state file: written whole, read back; a first run told from a file that cannot
// be read, which is never taken for one.
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyState, loadState, mark, revisions, saveState } from '../../src/pull/state.js';

const file = async () =>
  path.join(await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-pull-state-')), 'state.json');

describe("pull mode's state", () => {
  it('a missing file is a first run; a saved state is read back as written, only root may read it', async () => {
    const f = await file();
    expect(await loadState(f)).toEqual({ state: null, first: true });
    const state = {
      ...emptyState('https://git.example.org/fleet.git', 'main'),
      deployed: {
        revision: 'a'.repeat(40),
        system: '/nix/store/0000-nixos-system',
        at: '2026-12-01T06:00:00.000Z',
        run: '20261201-060000-000',
      },
      rollbacks: 1,
    };
    await saveState(f, state);
    expect(await loadState(f)).toEqual({ state, first: false });
    expect((await stat(f)).mode & 0o777).toBe(0o600);
  });

  it('a file that is not JSON, or not a state it knows, is unreadable, never a first run', async () => {
    const f = await file();
    await writeFile(f, '{"schemaVersion": 1, "url": ');
    const torn = await loadState(f);
    expect(torn).toMatchObject({ state: null, first: false });
    expect('unreadable' in torn ? torn.unreadable : '').toMatch(/is not JSON/);
    await writeFile(f, JSON.stringify({ ...emptyState('u', 'main'), schemaVersion: 2 }));
    const newer = await loadState(f);
    expect('unreadable' in newer ? newer.unreadable : '').toMatch(
      /is not a pull state this exo-deploy reads: schemaVersion: /,
    );
  });

  it('marks a commit bad once (the newest mark wins), and keeps the newest 50', async () => {
    let state = emptyState('u', 'main');
    state = mark(state, 'bad', 'c1', 't1', 'its gate failed');
    state = mark(state, 'bad', 'c1', 't2', 'its gate failed again');
    expect(state.bad).toEqual([{ revision: 'c1', at: 't2', reason: 'its gate failed again' }]);
    for (let i = 0; i < 60; i++) state = mark(state, 'held', `h${i}`, `t${i}`, 'needs a reboot');
    expect(state.held).toHaveLength(50);
    expect(revisions(state.held).has('h59')).toBe(true);
    expect(revisions(state.held).has('h9')).toBe(false);
    // the file holds what was saved, not a reference to it
    const f = await file();
    await saveState(f, state);
    expect(JSON.parse(await readFile(f, 'utf8')).bad).toEqual(state.bad);
  });
});
