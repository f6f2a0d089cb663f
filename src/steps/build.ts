// Evaluate and build hosts' systems, each once per deploy: on this machine several hosts to one
// Nix process, or (build_on = "target") on the host itself from a copy of the flake. What is
// built is what gets copied, gated and made permanent.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import {
  buildFromStoreArgv,
  buildSystemsArgv,
  flakeArchiveToArgv,
  parseBuildOutputs,
  parseFlakeArchive,
} from '../programs/nix.js';
import { lastLines, nixSshOpts } from '../run/executor.js';

/** The out links in the deploy's folder keep the new systems alive against garbage collection
 * until the deploy ends. Returns each host's store path. */
export async function buildSystems(
  ctx: Context,
  hosts: readonly Host[],
  runDir: string,
  batch: number,
): Promise<{ systems: Map<string, string>; output: string }> {
  const names = hosts.map((h) => h.name);
  const dir = path.join(runDir, 'build');
  await mkdir(dir, { recursive: true });
  const result = await ctx.deployer.run(
    buildSystemsArgv(
      ctx.config.programs.nix,
      ctx.config.flake,
      names,
      path.join(dir, `batch-${batch}`),
    ),
    {
      timeoutMs: ctx.config.timeouts.build,
    },
  );
  if (result.exitCode !== 0) throw buildFailed(ctx, names, result, '');
  const paths = parseBuildOutputs(result.stdout);
  if (paths.length !== names.length)
    throw new ExoDeployError(
      `nix build returned ${paths.length} systems for ${names.length} hosts`,
      ExitCode.failed,
    );
  return { systems: new Map(names.map((n, i) => [n, paths[i] as string])), output: result.stderr };
}

/** The flake goes to the host's store (with its inputs), and the host evaluates and builds its
 * own system there: for a machine that cannot build it (another system, too little memory). */
export async function buildOnTarget(
  ctx: Context,
  host: Host,
): Promise<{ systemPath: string; output: string }> {
  const archive = await ctx.deployer.must(
    flakeArchiveToArgv(ctx.config.programs.nix, host.target, ctx.config.flake),
    {
      env: { NIX_SSHOPTS: nixSshOpts(host) },
      timeoutMs: ctx.config.timeouts.build,
    },
  );
  const source = parseFlakeArchive(archive.stdout);
  // the host's own nix (programs.nix names this machine's)
  const result = await ctx.executor(host).run(buildFromStoreArgv('nix', source, host.name), {
    root: true,
    timeoutMs: ctx.config.timeouts.build,
  });
  if (result.exitCode !== 0) throw buildFailed(ctx, [host.name], result, ` on ${host.name}`);
  const [systemPath] = parseBuildOutputs(result.stdout);
  if (!systemPath)
    throw new ExoDeployError(`${host.name}: nix build returned no system`, ExitCode.failed, {
      host: host.name,
    });
  return { systemPath, output: `flake copied to ${host.name} as ${source}\n${result.stderr}` };
}

function buildFailed(
  ctx: Context,
  names: readonly string[],
  result: { exitCode: number; timedOut: boolean; stderr: string },
  where: string,
): ExoDeployError {
  const what = result.timedOut ? 'timed out' : `failed (nix build exited ${result.exitCode})`;
  return new ExoDeployError(
    `building the system of ${names.join(', ')}${where} ${what}:\n${lastLines(result.stderr, 8)}`,
    ExitCode.failed,
    {
      ...(names.length === 1 ? { host: names[0] } : {}),
      hint: `is nixosConfigurations.<host> in ${ctx.config.flake} for each of them, and does it build? (nix build ${ctx.config.flake}#nixosConfigurations.${names[0]}.config.system.build.toplevel)`,
    },
  );
}
