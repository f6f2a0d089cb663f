// Bundles the command-line entry and what it loads (execa, zod, @iarna/toml included) into
// dist/cli/: a few files instead of hundreds of modules, so that Node spends its start-up
// running exo-deploy rather than resolving and compiling modules (bench/: start-up, on-host
// cost). Commands stay lazily loaded: each is its own chunk. `tsc` checks the types and
// emits dist/src for the tests and benchmarks that import modules one by one.
//
// dist/cli is committed: the Nix package installs it as it is, with nothing but nodejs
// (nix/package.nix), and CI fails when it differs from a fresh build (.ci/run). So the output
// must be a function of the sources and package-lock.json alone:
//   - dist/cli is emptied first, so a chunk of an earlier build (chunk names carry a content
//     hash) never lingers;
//   - tsc's output of a source that is gone is removed from dist/src first: the commands are
//     found by a glob (`import(`./commands/${name}.js`)`), which would bundle a stale one;
//   - paths are relative to the repository, whatever the current folder (absWorkingDir) and
//     wherever a linked node_modules really lies (preserveSymlinks);
//   - no path of this machine may end up in it (checked below: the build fails).
import { build } from 'esbuild';
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(repo, 'dist/cli');

rmSync(outdir, { recursive: true, force: true });
for (const rel of readdirSync(path.join(repo, 'dist/src'), { recursive: true })) {
  if (rel.endsWith('.js') && !existsSync(path.join(repo, 'src', `${rel.slice(0, -3)}.ts`)))
    rmSync(path.join(repo, 'dist/src', rel));
}

await build({
  absWorkingDir: repo,
  // Module paths as seen from the repository, even when node_modules is a link elsewhere.
  preserveSymlinks: true,
  entryPoints: ['dist/src/cli.js'],
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node18',
  // Smaller to parse, but names are kept: a bug's stack trace stays readable.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'external',
  // CommonJS dependencies (cross-spawn, @iarna/toml) call require(); an ES module has none.
  banner: {
    js: "import { createRequire as __exoDeployRequire } from 'node:module'; const require = __exoDeployRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

// esbuild names each bundled CommonJS module by its path relative to absWorkingDir. A path
// that leaves the repository or names this machine's folders would make the bundle differ
// from machine to machine.
const machinePaths = [...new Set([repo, realpathSync(repo), `${os.homedir()}/`])].filter(
  (p) => p.length > 2,
);
const problems = [];
for (const file of readdirSync(outdir).sort()) {
  const text = readFileSync(path.join(outdir, file), 'utf8');
  for (const p of machinePaths) if (text.includes(p)) problems.push(`${file} contains ${p}`);
  const outside = text.match(/__commonJS\(\{"\.\.\/[^"]*"/);
  if (outside) problems.push(`${file} names a module outside the repository: ${outside[0]}`);
}
if (problems.length > 0) {
  console.error(
    `scripts/bundle.mjs: dist/cli depends on where it was built, so it cannot be committed:\n  ${problems.join('\n  ')}`,
  );
  console.error('Install the dependencies inside the repository (npm ci) and build again.');
  process.exit(1);
}
