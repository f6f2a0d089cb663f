// Removes the run's temporary folder (vitest.config.ts) once every test file has finished,
// their fleets torn down in their own afterAll.
import { rmSync } from 'node:fs';

export default function setup(): () => void {
  return () => {
    const dir = process.env.EXO_DEPLOY_TEST_TMPDIR;
    if (!dir) return;
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      process.stderr.write(`tests: could not remove ${dir}: ${(error as Error).message}\n`);
    }
  };
}
