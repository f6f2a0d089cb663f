// Which backups prune removes: a pure choice over the backups' metadata.
import { describe, expect, it } from 'vitest';
import { backupsToPrune } from '../../src/backup/backups.js';
import type { BackupMeta } from '../../src/backup/layout.js';

const backup = (id: string, healthy: boolean): BackupMeta => ({
  id,
  host: 'h1',
  createdAt: id,
  reason: 'deploy',
  systemPath: null,
  generation: null,
  exo: '1.0.71',
  healthy,
  stateDir: '/var/lib/private/exo',
  files: ['state.tar.gz'],
  models: false,
});
const ids = (b: BackupMeta[]) => b.map((x) => x.id).sort();

describe('backupsToPrune', () => {
  it('removes all but the newest `keep`, whatever order they come in', () => {
    const all = ['20260101-1', '20260103-1', '20260102-1', '20260104-1'].map((id) =>
      backup(id, true),
    );
    expect(ids(backupsToPrune(all, 2))).toEqual(['20260101-1', '20260102-1']);
    expect(backupsToPrune(all, 4)).toEqual([]);
  });

  it('never removes the newest backup of a healthy system, even beyond `keep`', () => {
    const all = [
      backup('20260101-1', true),
      backup('20260102-1', true),
      backup('20260103-1', false),
      backup('20260104-1', false),
    ];
    expect(ids(backupsToPrune(all, 2))).toEqual(['20260101-1']);
  });

  it('removes what is beyond `keep` when no backup is of a healthy system', () => {
    const all = ['20260101-1', '20260102-1', '20260103-1'].map((id) => backup(id, false));
    expect(ids(backupsToPrune(all, 1))).toEqual(['20260101-1', '20260102-1']);
  });
});
