// exo-deploy update [INPUT…] [--commit]: move flake inputs, say what moved, optionally commit.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FLAKE_INPUT } from '../config/patterns.js';
import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { describeChange, diffLocks, parseLock, rootInputs, type FlakeLock } from '../flake/lock.js';
import type { Outcome } from '../output/outcome.js';
import { gitAddArgv, gitCommitArgv, gitHeadArgv } from '../programs/git.js';
import { flakeUpdateArgv, parseNixVersion } from '../programs/nix.js';

export async function run(ctx: Context): Promise<Outcome> {
  const { config } = ctx;
  if (!config.flakeIsPath)
    throw usageError(
      `flake = "${config.flake}" is not a folder: update needs the config flake checked out here`,
    );
  const inputs = ctx.positionals;
  for (const input of inputs)
    if (!FLAKE_INPUT.test(input)) throw usageError(`"${input}" is not a flake input name`);
  const lockFile = path.join(config.flake, 'flake.lock');
  const before = await readLock(lockFile);
  if (before) {
    const known = rootInputs(before).map((i) => i.name);
    const unknown = inputs.filter((i) => !known.includes(i.split('/')[0] as string));
    if (unknown.length)
      throw usageError(
        `the flake has no input ${unknown.map((u) => `"${u}"`).join(', ')}`,
        `its inputs: ${known.join(', ')}`,
      );
  }

  const versionOut = await ctx.deployer.must([config.programs.nix, '--version']);
  const version = parseNixVersion(versionOut.stdout);
  if (!version) throw usageError(`cannot read the Nix version from "${versionOut.stdout.trim()}"`);
  const argv = flakeUpdateArgv(config.programs.nix, version, config.flake, inputs);
  ctx.log.info(
    `updating ${inputs.length ? inputs.join(', ') : 'all inputs'} of ${config.flake} (${version.text})`,
  );
  await ctx.deployer.must(argv, {
    mutates: true,
    timeoutMs: config.timeouts.build,
    cwd: config.flake,
  });

  const after = await readLock(lockFile);
  if (!after || ctx.options['dry-run'])
    return done(
      { changed: [], committed: null, dryRun: Boolean(ctx.options['dry-run']), argv },
      'dry run: nothing changed',
    );
  const changes = diffLocks(before, after);
  if (changes.length === 0)
    return done(
      { changed: [], committed: null, argv },
      'nothing changed: every input is already at its newest revision',
    );

  let committed: string | null = null;
  if (ctx.options.commit) {
    const message = `flake.lock: update ${changes.map((c) => c.name).join(', ')}\n\n${changes.map((c) => `- ${describeChange(c)}`).join('\n')}\n`;
    await ctx.deployer.must(gitAddArgv(config.programs.git, config.flake, 'flake.lock'), {
      mutates: true,
    });
    await ctx.deployer.must(
      gitCommitArgv(config.programs.git, config.flake, 'flake.lock', message),
      { mutates: true },
    );
    committed = (
      await ctx.deployer.must(gitHeadArgv(config.programs.git, config.flake))
    ).stdout.trim();
  }
  const text = [
    ...changes.map(describeChange),
    ...(committed ? [`committed flake.lock as ${committed}`] : []),
  ].join('\n');
  return done({ changed: changes, committed, argv }, text);
}

async function readLock(file: string): Promise<FlakeLock | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  return text === null ? null : parseLock(text);
}

function done(data: Record<string, unknown>, text: string): Outcome {
  return { exitCode: ExitCode.ok, data, text };
}
