// Every .nix file of the repository parses (CI tier: needs only nix-instantiate).
import { execa } from 'execa';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './nix-eval.js';

const skipDirs = new Set(['node_modules', '.git', 'dist', 'result']);

async function nixFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (skipDirs.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await nixFiles(full)));
    else if (entry.name.endsWith('.nix')) out.push(full);
  }
  return out;
}

describe('nix files', async () => {
  const files = (await nixFiles(repoRoot)).map((f) => path.relative(repoRoot, f)).sort();

  it('include the flake, the module and the VM tests', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'flake.nix',
        'modules/exo.nix',
        'modules/exo-cli.nix',
        'nix/package.nix',
        'nix/tests/module.nix',
        'nix/tests/deploy.nix',
        'templates/default/flake.nix',
      ]),
    );
  });

  it.each(files)('%s parses', async (file) => {
    await execa('nix-instantiate', ['--parse', file], { cwd: repoRoot, timeout: 30_000 });
  });
});
