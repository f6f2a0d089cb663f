// The deploy lock between real processes: twenty started at once race for it, each that gets it
// holds it a moment and writes down when; no two holds overlap, and the lock is gone after.
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** One process: tries the lock once; when it has it, notes its hold in the log, waits, releases. */
const RACER = `
const [lockModule, stateDir, log] = process.argv.slice(1);
const { acquireDeployLock } = await import(lockModule);
const { appendFile } = await import('node:fs/promises');
const quiet = { info() {}, verbose() {}, step() {}, warn() {} };
try {
  const lock = await acquireDeployLock(stateDir, 'deploy #' + process.pid, quiet);
  const from = Date.now();
  await new Promise((r) => setTimeout(r, 100));
  await appendFile(log, JSON.stringify({ pid: process.pid, from, to: Date.now() }) + '\\n');
  await lock.release();
} catch (error) {
  process.exit(error.exitCode === 4 ? 4 : 1);
}
`;

describe('deploy lock between processes', () => {
  it('of twenty processes racing, the holds never overlap, the others exit 4, and the lock is gone after', async () => {
    const dir = await tempDir('lock');
    dirs.push(dir);
    const log = path.join(dir, 'holds.jsonl');
    const lockModule = path.join(repoRoot, 'dist/src/deploy/lock.js');
    const runs = await Promise.all(
      Array.from({ length: 20 }, () =>
        execa(
          'node',
          ['--input-type=module', '-e', RACER, lockModule, path.join(dir, 'state'), log],
          { reject: false },
        ),
      ),
    );
    expect(runs.filter((r) => ![0, 4].includes(r.exitCode ?? -1)).map((r) => r.stderr)).toEqual([]);
    const holds = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { from: number; to: number })
      .sort((a, b) => a.from - b.from);
    expect(holds.length).toBeGreaterThanOrEqual(1);
    expect(holds.length).toBe(runs.filter((r) => r.exitCode === 0).length);
    for (let i = 1; i < holds.length; i++)
      expect(holds[i]!.from).toBeGreaterThanOrEqual(holds[i - 1]!.to);
    expect(await readdir(path.join(dir, 'state'))).toEqual([]);
  });
});
