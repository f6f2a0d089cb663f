import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

// Every temporary folder the tests make, and the programs they start make, goes in one folder
// of this run (TMPDIR), removed when the run ends (test/global-setup.ts).
process.env.EXO_DEPLOY_TEST_TMPDIR ??= mkdtempSync(path.join(os.tmpdir(), 'exo-deploy-tests-'));
const tmp = process.env.EXO_DEPLOY_TEST_TMPDIR;

// One run, four tiers told apart by folder: unit (fake run layer), module (Nix evaluation),
// integration (real Nix on this machine), e2e (the sandbox fleet, as root).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    // A failed match shows the whole value: CI's log is often all there is of a failed run.
    chaiConfig: { truncateThreshold: 0 },
    globalSetup: ['test/global-setup.ts'],
    // Nix without a network or a binary cache, as on this machine; real hosts bring their own.
    env: {
      TMPDIR: tmp,
      NIX_CONFIG:
        process.env.NIX_CONFIG ??
        [
          'experimental-features = nix-command flakes',
          'substituters =',
          'flake-registry =',
          'build-users-group =',
          'sandbox = false',
        ].join('\n'),
      // Tests commit in repositories they create; they need an identity, not the machine's.
      GIT_AUTHOR_NAME: 'exo-deploy tests',
      GIT_AUTHOR_EMAIL: 'tests@exo-deploy.invalid',
      GIT_COMMITTER_NAME: 'exo-deploy tests',
      GIT_COMMITTER_EMAIL: 'tests@exo-deploy.invalid',
    },
  },
});
