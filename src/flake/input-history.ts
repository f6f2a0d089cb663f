// What an update brings in an input: its commits between the two locked revisions, read with
// git from the input's repository (a git input; a GitHub input through its git URL), and, for a
// forge, the page that compares them. Only the two revisions are fetched, without file
// contents, into a folder of their own that is removed after.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Context } from '../context.js';
import {
  gitCountArgv,
  gitError,
  gitFetchRevsArgv,
  gitInitBareArgv,
  gitLogArgv,
  parseGitLog,
  type GitCommit,
} from '../programs/git.js';
import type { InputChange, InputLock } from './lock.js';

/** At most this many commits are listed; the count says how many there are. */
const MAX_LISTED = 50;

export interface InputHistory {
  name: string;
  from: string;
  to: string;
  /** Newest first, at most MAX_LISTED; null: they could not be read (see why). */
  commits: GitCommit[] | null;
  /** How many commits `to` has that `from` has not; null: unknown. */
  count: number | null;
  /** The forge's page comparing the two, where the input is on one. */
  compare: string | null;
  why: string | null;
}

/** The history between the two revisions of a changed input; null for an input that has no
 * revisions to compare (a path, a tarball, one added or removed). */
export async function inputHistory(
  ctx: Context,
  change: InputChange,
): Promise<InputHistory | null> {
  const { before, after } = change;
  if (!before?.rev || !after?.rev) return null;
  const url = gitUrl(after);
  if (!url) return null;
  const history: InputHistory = {
    name: change.name,
    from: before.rev,
    to: after.rev,
    commits: null,
    count: null,
    compare: compareUrl(after, before.rev, after.rev),
    why: null,
  };
  const git = ctx.config.programs.git;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-history-'));
  try {
    await ctx.deployer.must(gitInitBareArgv(git, dir));
    const fetched = await ctx.deployer.run(
      gitFetchRevsArgv(git, dir, url, [before.rev, after.rev]),
      {
        timeoutMs: ctx.config.timeouts.build,
        // an input that wants credentials is not listed, rather than asking on the terminal
        env: { GIT_TERMINAL_PROMPT: '0' },
      },
    );
    if (fetched.exitCode !== 0) {
      history.why = `git could not fetch ${before.rev.slice(0, 7)} and ${after.rev.slice(0, 7)} from ${url}: ${gitError(fetched.stderr) || `exit ${fetched.exitCode}`}`;
      return history;
    }
    const [log, count] = await Promise.all([
      ctx.deployer.must(gitLogArgv(git, dir, before.rev, after.rev, MAX_LISTED)),
      ctx.deployer.must(gitCountArgv(git, dir, before.rev, after.rev)),
    ]);
    history.commits = parseGitLog(log.stdout);
    history.count = Number(count.stdout.trim());
    return history;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The URL git fetches the input from: a git input's own, a GitHub input's repository. */
function gitUrl(input: InputLock): string | null {
  const { type, url, owner, repo } = input.origin;
  if (type === 'git' && url) return url;
  if (type === 'github' && owner && repo) return `https://github.com/${owner}/${repo}.git`;
  return null;
}

function compareUrl(input: InputLock, from: string, to: string): string | null {
  const { type, owner, repo } = input.origin;
  if (!owner || !repo) return null;
  if (type === 'github') return `https://github.com/${owner}/${repo}/compare/${from}...${to}`;
  if (type === 'gitlab') return `https://gitlab.com/${owner}/${repo}/-/compare/${from}...${to}`;
  return null;
}

/** The part of a commit message that lists what came in with an input. */
export function describeHistory(h: InputHistory): string[] {
  const head = `${h.name} ${h.from.slice(0, 12)}..${h.to.slice(0, 12)}`;
  const lines: string[] = [];
  if (h.commits) {
    const more = h.count !== null && h.count > h.commits.length ? h.count - h.commits.length : 0;
    lines.push(`${head}: ${h.count ?? h.commits.length} commit${h.count === 1 ? '' : 's'}`);
    lines.push(...h.commits.map((c) => `- ${c.rev.slice(0, 12)} ${c.subject}`));
    if (more) lines.push(`- … and ${more} more`);
    // from..to is empty when the update went back: then say so
    if (h.count === 0) lines.push('  (none: the new revision is not a descendant of the old one)');
  } else lines.push(`${head}: commits not listed (${h.why})`);
  if (h.compare) lines.push(`Compare: ${h.compare}`);
  return lines;
}
