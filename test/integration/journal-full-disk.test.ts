// The run journal on a disk that fills up (a small tmpfs, mounted for this test and unmounted
// after it): an event that does not fit is refused whole, and what is on disk still reads back.
import { execa } from 'execa';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldJournal, journalFile, DeployJournal } from '../../src/deploy/journal.js';
import { tempDir } from './helpers.js';

const root = process.getuid?.() === 0;
let mountPoint = '';
let mounted = false;

beforeAll(async () => {
  if (!root) return;
  mountPoint = await tempDir('full-disk');
  // 16 pages of 4 KiB
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint]);
  mounted = true;
});

afterAll(async () => {
  if (mounted) await execa('umount', [mountPoint]);
  if (mountPoint) await rm(mountPoint, { recursive: true, force: true });
});

describe.skipIf(!root)('run journal on a full disk', () => {
  it('refuses an event that does not fit, leaves no part of it, and goes on once there is room', async () => {
    const file = journalFile(path.join(mountPoint, 'state'), '20261130-000000-000');
    const journal = new DeployJournal(file);
    await journal.append({ type: 'phase', host: 'h1', phase: 'activated' });
    const before = await readFile(file, 'utf8');
    // the rest of the disk taken: what is left is the journal's own page, part used
    const filler = path.join(mountPoint, 'filler');
    await writeFile(filler, Buffer.alloc(15 * 4096)).catch(() => undefined);
    const big = {
      type: 'step' as const,
      step: 'x'.repeat(6000),
      host: 'h1',
      ok: true,
      durationMs: 1,
    };
    await expect(journal.append(big)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await readFile(file, 'utf8')).toBe(before);
    await rm(filler);
    await journal.append({ type: 'phase', host: 'h1', phase: 'permanent' });
    const folded = foldJournal(await readFile(file, 'utf8'));
    expect(folded.hosts.get('h1')?.phase).toBe('permanent');
    expect(
      (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).type),
    ).toEqual(['phase', 'phase']);
  });
});
