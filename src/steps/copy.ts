// Copy a built system to its host, and say what changes against what the host runs.
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { copyToArgv, diffClosuresArgv, parseClosureDiff } from '../programs/nix.js';
import { nixSshOpts } from '../run/executor.js';

export async function copyClosure(ctx: Context, host: Host, systemPath: string): Promise<string> {
  if (host.local) return 'local host: nothing to copy';
  const result = await ctx.deployer.must(
    copyToArgv(ctx.config.programs.nix, host.target, systemPath, host.substituteOnTarget),
    {
      env: { NIX_SSHOPTS: nixSshOpts(host) },
      timeoutMs: ctx.config.timeouts.build,
    },
  );
  return `${result.stdout}${result.stderr}`;
}

/** `nix store diff-closures` on the host, where both systems are now present. */
export async function closureDiff(
  ctx: Context,
  host: Host,
  before: string | null,
  after: string,
): Promise<string[]> {
  if (!before) return ['(no running system to compare with)'];
  const result = await ctx
    .executor(host)
    .run(diffClosuresArgv(ctx.config.programs.nix, before, after));
  if (result.exitCode !== 0)
    return [
      `(no closure diff: ${result.stderr.trim().split('\n')[0] ?? 'nix store diff-closures failed'})`,
    ];
  const lines = parseClosureDiff(result.stdout);
  return lines.length ? lines : ['(no package changes)'];
}
