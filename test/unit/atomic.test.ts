import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/fs/atomic.js';

describe('writeFileAtomic', () => {
  it("writes the mode asked for under a unit's UMask=0077: node-exporter reads the textfile", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-atomic-'));
    const old = process.umask(0o077);
    try {
      const file = path.join(dir, 'exo.prom');
      await writeFileAtomic(file, 'exo_up 1\n');
      expect((await stat(file)).mode & 0o777).toBe(0o644);
      expect(await readFile(file, 'utf8')).toBe('exo_up 1\n');
    } finally {
      process.umask(old);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
