// exo-deploy update [INPUT…] [--commit | --branch NAME]: move flake inputs, say what moved
// (with the commits each input brings, where git can read them), and optionally commit: on the
// branch checked out, or on a new branch beside it, for review.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FLAKE_INPUT } from '../config/patterns.js';
import type { Context } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { describeHistory, inputHistory, type InputHistory } from '../flake/input-history.js';
import {
  describeChange,
  diffLocks,
  parseLock,
  rootInputs,
  type FlakeLock,
  type InputChange,
} from '../flake/lock.js';
import type { Outcome } from '../output/outcome.js';
import {
  gitAddArgv,
  gitArchiveArgv,
  gitBranchNameArgv,
  gitCommitArgv,
  gitCommitTreeArgv,
  gitHashObjectArgv,
  gitIndexFileArgv,
  gitNewBranchArgv,
  gitPrefixArgv,
  gitReadTreeArgv,
  gitResolveArgv,
  gitTopArgv,
  gitWriteTreeArgv,
} from '../programs/git.js';
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
  const branch = typeof ctx.options.branch === 'string' ? ctx.options.branch : null;
  if (branch !== null && ctx.options.commit)
    throw usageError(
      '--commit and --branch exclude each other: --branch commits on the new branch',
    );
  const repo = branch === null ? null : await branchBase(ctx, branch);
  const dryRun = Boolean(ctx.options['dry-run']);
  // A new branch is made from HEAD's files, in a copy: the working tree stays as it is.
  const work = repo && !dryRun ? await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-update-')) : null;
  try {
    const flake = work && repo ? await checkOut(ctx, repo, work) : config.flake;
    const lockFile = path.join(flake, 'flake.lock');
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
    if (!version)
      throw usageError(`cannot read the Nix version from "${versionOut.stdout.trim()}"`);
    const argv = flakeUpdateArgv(config.programs.nix, version, flake, inputs);
    ctx.log.info(
      `updating ${inputs.length ? inputs.join(', ') : 'all inputs'} of ${config.flake} (${version.text})`,
    );
    await ctx.deployer.must(argv, { mutates: true, timeoutMs: config.timeouts.build, cwd: flake });

    const after = await readLock(lockFile);
    if (!after || dryRun)
      return done(
        { changed: [], committed: null, branch: null, dryRun, argv },
        'dry run: nothing changed',
      );
    const changes = diffLocks(before, after);
    if (changes.length === 0)
      return done(
        { changed: [], committed: null, branch: null, argv },
        'nothing changed: every input is already at its newest revision',
      );

    const histories = (await Promise.all(changes.map((c) => inputHistory(ctx, c)))).filter(
      (h): h is InputHistory => h !== null,
    );
    const message = commitMessage(changes, histories);
    let committed: string | null = null;
    if (repo && work) committed = await commitBeside(ctx, repo, work, lockFile, message);
    else if (ctx.options.commit) committed = await commitHere(ctx, message);
    const text = [
      ...changes.map(describeChange),
      ...histories.flatMap(describeHistory),
      ...(committed
        ? [
            branch
              ? `committed flake.lock on the new branch ${branch} as ${committed.slice(0, 7)} (the branch checked out is unchanged)`
              : `committed flake.lock as ${committed.slice(0, 7)}`,
          ]
        : []),
    ].join('\n');
    return done({ changed: changes, histories, message, committed, branch, argv }, text);
  } finally {
    if (work) await rm(work, { recursive: true, force: true });
  }
}

interface BranchBase {
  /** The repository's top folder, and the flake's folder's place in it ("" at its top). */
  top: string;
  prefix: string;
  /** The commit checked out (full hash): the new branch's parent. */
  head: string;
  name: string;
}

/** Where a new branch starts, refused (exit 2, nothing changed) when the name cannot be a
 * branch's, is one already, or the flake is not in a git repository with a commit. */
async function branchBase(ctx: Context, name: string): Promise<BranchBase> {
  const { git } = ctx.config.programs;
  const { flake } = ctx.config;
  if ((await ctx.deployer.run(gitBranchNameArgv(git, name))).exitCode !== 0)
    throw usageError(`"${name}" cannot be a branch's name (git check-ref-format --branch)`);
  const prefix = await ctx.deployer.run(gitPrefixArgv(git, flake));
  if (prefix.exitCode !== 0)
    throw usageError(
      `${flake} is not in a git repository: --branch commits flake.lock on a new branch of it`,
    );
  const head = await ctx.deployer.run(gitResolveArgv(git, flake, 'HEAD'));
  if (head.exitCode !== 0)
    throw usageError(`the repository of ${flake} has no commit yet to start a branch from`);
  if ((await ctx.deployer.run(gitResolveArgv(git, flake, `refs/heads/${name}`))).exitCode === 0)
    throw usageError(
      `the branch ${name} exists already`,
      'name another branch, or delete that one first',
    );
  const top = (await ctx.deployer.must(gitTopArgv(git, flake))).stdout.trim();
  return { top, prefix: prefix.stdout.trim(), head: head.stdout.trim(), name };
}

/** HEAD's files, the whole repository's (a flake may use files beside its folder), into
 * `work`; returns where the flake lies in that copy. */
async function checkOut(ctx: Context, repo: BranchBase, work: string): Promise<string> {
  const tar = path.join(work, 'head.tar');
  const tree = path.join(work, 'tree');
  await mkdir(tree);
  await ctx.deployer.must(
    // from the top: archived from a subfolder, git would take only that folder
    gitArchiveArgv(ctx.config.programs.git, repo.top, repo.head, tar),
  );
  await ctx.deployer.must(['tar', '-x', '-f', tar, '-C', tree]);
  return path.join(tree, repo.prefix);
}

/** A commit of HEAD with the new flake.lock, on the new branch; returns its hash. */
async function commitBeside(
  ctx: Context,
  repo: BranchBase,
  work: string,
  lockFile: string,
  message: string,
): Promise<string> {
  const { git } = ctx.config.programs;
  const { flake } = ctx.config;
  // a temporary index: the repository's own stays as it is
  const env = { GIT_INDEX_FILE: path.join(work, 'index') };
  const must = (argv: string[], input?: string) =>
    ctx.deployer.must(argv, { env, input }).then((r) => r.stdout.trim());
  await must(gitReadTreeArgv(git, flake, repo.head));
  const blob = await must(gitHashObjectArgv(git, flake, lockFile));
  await must(gitIndexFileArgv(git, flake, blob, `${repo.prefix}flake.lock`));
  const tree = await must(gitWriteTreeArgv(git, flake));
  const commit = await must(gitCommitTreeArgv(git, flake, tree, repo.head), message);
  await must(gitNewBranchArgv(git, flake, repo.name, commit));
  return commit;
}

async function commitHere(ctx: Context, message: string): Promise<string> {
  const { git } = ctx.config.programs;
  const { flake } = ctx.config;
  await ctx.deployer.must(gitAddArgv(git, flake, 'flake.lock'), { mutates: true });
  await ctx.deployer.must(gitCommitArgv(git, flake, 'flake.lock', message), { mutates: true });
  return (await ctx.deployer.must(gitResolveArgv(git, flake, 'HEAD'))).stdout.trim();
}

/** The change, as a commit message: which inputs moved, then what each brings. */
function commitMessage(changes: readonly InputChange[], histories: readonly InputHistory[]) {
  return [
    `flake.lock: update ${changes.map((c) => c.name).join(', ')}`,
    '',
    ...changes.map((c) => `- ${describeChange(c)}`),
    ...histories.flatMap((h) => ['', ...describeHistory(h)]),
    '',
  ].join('\n');
}

async function readLock(file: string): Promise<FlakeLock | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  return text === null ? null : parseLock(text);
}

function done(data: Record<string, unknown>, text: string): Outcome {
  return { exitCode: ExitCode.ok, data, text };
}
