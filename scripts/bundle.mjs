// Bundles the command-line entry and what it loads (execa, zod, @iarna/toml included) into
// dist/cli/: a few files instead of hundreds of modules, so that Node spends its start-up
// running exo-deploy rather than resolving and compiling modules (bench/: start-up, on-host
// cost). Commands stay lazily loaded: each is its own chunk. `tsc` checks the types and
// emits dist/src for the tests and benchmarks that import modules one by one.
import { build } from 'esbuild';

await build({
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
  banner: { js: "import { createRequire as __exoDeployRequire } from 'node:module'; const require = __exoDeployRequire(import.meta.url);" },
  logLevel: 'warning',
});
