// Evaluate and build hosts' systems on this machine, several hosts to one Nix process: each
// system is evaluated once per deploy, and what is built is what gets copied, gated and made
// permanent.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { buildSystemsArgv, parseBuildOutputs } from '../programs/nix.js';
import { lastLines } from '../run/executor.js';

/** The out links in the run's folder keep the new systems alive against garbage collection
 * until the run ends. Returns each host's store path. */
export async function buildSystems(ctx: Context, hosts: readonly Host[], runDir: string, batch: number): Promise<{ systems: Map<string, string>; output: string }> {
  const names = hosts.map((h) => h.name);
  const dir = path.join(runDir, 'build');
  await mkdir(dir, { recursive: true });
  const result = await ctx.deployer.run(buildSystemsArgv(ctx.config.programs.nix, ctx.config.flake, names, path.join(dir, `batch-${batch}`)), {
    timeoutMs: ctx.config.timeouts.build,
  });
  const output = result.stderr;
  if (result.exitCode !== 0) {
    const what = result.timedOut ? 'timed out' : `failed (nix build exited ${result.exitCode})`;
    throw new ExoDeployError(`building the system of ${names.join(', ')} ${what}:\n${lastLines(output, 8)}`, ExitCode.failed, {
      ...(names.length === 1 ? { host: names[0] } : {}),
      hint: `is nixosConfigurations.<host> in ${ctx.config.flake} for each of them, and does it build? (nix build ${ctx.config.flake}#nixosConfigurations.${names[0]}.config.system.build.toplevel)`,
    });
  }
  const paths = parseBuildOutputs(result.stdout);
  if (paths.length !== names.length) throw new ExoDeployError(`nix build returned ${paths.length} systems for ${names.length} hosts`, ExitCode.failed);
  return { systems: new Map(names.map((n, i) => [n, paths[i] as string])), output };
}
