// The simulated fleet is the unit tests' (test/sim/fleet.ts, with its run layer): bundled here
// into one ES module that Node runs as it is, written to a file of its own each time.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A temporary folder for the bundle, and what removes it. */
export async function fleetDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-sim-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Bundles the fleet into `dir`; returns the file. */
export async function bundleFleet(dir) {
  const outfile = path.join(dir, 'fleet.mjs');
  await build({
    absWorkingDir: repo,
    stdin: {
      contents:
        "export * from './test/sim/fleet.ts';\nexport { answeringRunner } from './test/sim/run-layer.ts';\n",
      resolveDir: repo,
      loader: 'ts',
    },
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  return outfile;
}

/** The fleet's module: the bundle named by EXO_DEPLOY_SIM_FLEET, else one made for this. */
export async function loadFleet() {
  const given = process.env.EXO_DEPLOY_SIM_FLEET;
  if (given) return import(pathToFileURL(given).href);
  const { dir, remove } = await fleetDir();
  try {
    return await import(pathToFileURL(await bundleFleet(dir)).href);
  } finally {
    await remove();
  }
}
