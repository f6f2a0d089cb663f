// Build a host's system on this machine with nixos-rebuild build; return its store path.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { readlinkArgv } from '../programs/coreutils.js';
import { nixosRebuildArgv } from '../programs/nixos-rebuild.js';

/** nixos-rebuild build leaves ./result; each host builds in its own folder of the run, and
 * that link keeps the new system alive against garbage collection until the run ends. */
export async function buildSystem(ctx: Context, host: Host, runDir: string): Promise<{ systemPath: string; output: string }> {
  const cwd = path.join(runDir, 'build', host.name);
  await mkdir(cwd, { recursive: true });
  const result = await ctx.deployer.must(nixosRebuildArgv(ctx.config.programs.nixos_rebuild, 'build', ctx.config.flake, host), { cwd, timeoutMs: ctx.config.timeouts.build });
  const link = (await ctx.deployer.must(readlinkArgv([path.join(cwd, 'result')]))).stdout.trim();
  if (!link || link === path.join(cwd, 'result')) {
    throw new ExoDeployError(`${host.name}: nixos-rebuild build left no ./result`, ExitCode.failed, { host: host.name, hint: `is nixosConfigurations.${host.name} in ${ctx.config.flake}?` });
  }
  return { systemPath: link, output: `${result.stdout}${result.stderr}` };
}
