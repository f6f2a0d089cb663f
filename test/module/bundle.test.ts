// The committed bundle (dist/cli) that nix/package.nix installs with nothing but nodejs: it
// must not depend on where it was built, nor on a node_modules. (That it matches a fresh
// `npm run build` is .ci/run's check, after `npm ci`.)
import { execa } from 'execa';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './nix-eval.js';

const bundle = path.join(repoRoot, 'dist/cli');
const packageJSON = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
};

describe('dist/cli, the committed bundle', () => {
  it('is the whole command: cli.js and its chunks, no node_modules', () => {
    const files = readdirSync(bundle);
    expect(files).toContain('cli.js');
    expect(files.every((f) => /\.(js|txt)$/.test(f))).toBe(true);
  });

  it("is committed, while tsc's dist/src is not", async () => {
    const ignored = async (p: string) =>
      (await execa('git', ['check-ignore', '-q', p], { cwd: repoRoot, reject: false })).exitCode ===
      0;
    expect(await ignored('dist/cli/cli.js')).toBe(false);
    expect(await ignored('dist/src/cli.js')).toBe(true);
  });

  it('names no path of the machine that built it', () => {
    const machine = [...new Set([repoRoot, realpathSync(repoRoot), `${os.homedir()}/`])].filter(
      (p) => p.length > 2,
    );
    for (const file of readdirSync(bundle)) {
      const text = readFileSync(path.join(bundle, file), 'utf8');
      for (const p of machine) expect(text.includes(p), `${file} contains ${p}`).toBe(false);
      // esbuild's names of bundled CommonJS modules: relative to the repository, inside it
      expect(text, file).not.toMatch(/__commonJS\(\{"(\.\.\/|\/)/);
    }
  });

  it('runs with plain node from a copy outside the repository, with no node_modules anywhere above it', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'bundle-copy-'));
    cpSync(bundle, path.join(root, 'dist/cli'), { recursive: true });
    cpSync(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
    for (let dir = root; ; dir = path.dirname(dir)) {
      expect(existsSync(path.join(dir, 'node_modules')), `${dir}/node_modules`).toBe(false);
      if (dir === path.dirname(dir)) break;
    }
    const cli = path.join(root, 'dist/cli/cli.js');
    const env = { PATH: process.env.PATH!, HOME: root, TMPDIR: root };
    const run = (args: string[]) =>
      execa(process.execPath, [cli, ...args], { cwd: root, env, extendEnv: false, reject: false });

    const version = await run(['--version']);
    expect(version).toMatchObject({ exitCode: 0, stdout: packageJSON.version });
    // a command's chunk, execa and @iarna/toml (bundled CommonJS) load: the TOML parser answers
    writeFileSync(path.join(root, 'exo-deploy.toml'), 'this is = = not toml\n');
    const status = await run(['--config', path.join(root, 'exo-deploy.toml'), 'status']);
    expect(status.exitCode).toBe(2);
    expect(status.stderr).toMatch(/TOML syntax error/);
  });
});
