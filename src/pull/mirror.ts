// A host's mirror of its config repository, for pull mode: a repository that one branch of the
// remote is fetched into. What it answers (the branch's tip, whether that descends from what the
// host runs, whether its signature is an allowed signer's) decides whether the host moves; only
// then is the tip checked out in it, clean, for Nix to build from (a git checkout, so that the
// system records the commit it was built from).
import {
  gitCheckoutArgv,
  gitCleanArgv,
  gitError,
  gitFetchBranchArgv,
  gitInitArgv,
  gitIsAncestorArgv,
  gitResolveArgv,
  gitSignatureArgv,
  IS_ANCESTOR,
  parseSignature,
} from '../programs/git.js';
import type { Executor } from '../run/executor.js';

/** Where the fetched tip is kept in the mirror. */
const TIP_REF = 'refs/exo-deploy/tip';

export interface Mirror {
  exec: Executor;
  git: string;
  dir: string;
}

export type Fetched = { fetched: true; tip: string } | { fetched: false; why: string };

/** The branch's tip, fetched into the mirror (made when there is none). Never asks for a
 * password: a remote that wants one is a failure to fetch. */
export async function fetchTip(
  m: Mirror,
  url: string,
  branch: string,
  timeoutMs: number,
): Promise<Fetched> {
  await m.exec.must(gitInitArgv(m.git, m.dir));
  const r = await m.exec.run(gitFetchBranchArgv(m.git, m.dir, url, branch, TIP_REF), {
    timeoutMs,
    env: { GIT_TERMINAL_PROMPT: '0' },
  });
  if (r.exitCode !== 0 || r.timedOut)
    return {
      fetched: false,
      why: r.timedOut
        ? `fetching ${branch} from ${url} took longer than ${Math.round(timeoutMs / 1000)} s`
        : `git could not fetch ${branch} from ${url}: ${gitError(r.stderr) || `exit ${r.exitCode}`}`,
    };
  const tip = (await m.exec.must(gitResolveArgv(m.git, m.dir, TIP_REF))).stdout.trim();
  return { fetched: true, tip };
}

/** The working tree made exactly the commit's files. */
export async function checkOut(m: Mirror, rev: string): Promise<void> {
  await m.exec.must(gitCheckoutArgv(m.git, m.dir, rev));
  await m.exec.must(gitCleanArgv(m.git, m.dir));
}

/** How the tip stands to the commit the host is at: the same, a descendant, behind it (the
 * branch went back), diverged from it (rewritten), or unknown (the mirror lacks it). */
export type Ancestry = 'same' | 'descends' | 'behind' | 'diverged' | 'unknown';

export async function ancestry(m: Mirror, at: string, tip: string): Promise<Ancestry> {
  if (at === tip) return 'same';
  const forward = await m.exec.run(gitIsAncestorArgv(m.git, m.dir, at, tip));
  if (forward.exitCode === IS_ANCESTOR.yes) return 'descends';
  if (forward.exitCode !== IS_ANCESTOR.no) return 'unknown';
  const back = await m.exec.run(gitIsAncestorArgv(m.git, m.dir, tip, at));
  return back.exitCode === IS_ANCESTOR.yes ? 'behind' : 'diverged';
}

export type SignatureCheck = { trusted: true; signer: string } | { trusted: false; why: string };

/** Whether a commit is signed by an allowed signer (an SSH key in the allowed-signers file):
 * only git's "G" for an SSH key counts. A GPG signature git calls good says only that root's
 * keyring trusts the key, not that the allowed-signers file names it. */
export async function checkSignature(
  m: Mirror,
  rev: string,
  allowedSigners: string,
): Promise<SignatureCheck> {
  const r = await m.exec.must(gitSignatureArgv(m.git, m.dir, rev, allowedSigners));
  const s = parseSignature(r.stdout);
  const short = rev.slice(0, 12);
  switch (s.status) {
    case 'G':
      if (s.key.startsWith('SHA256:')) return { trusted: true, signer: s.signer };
      return {
        trusted: false,
        why: `${short} is signed with a GPG key (${s.key || '?'}): only SSH keys in ${allowedSigners} count`,
      };
    case 'N':
      return { trusted: false, why: `${short} is not signed` };
    case 'U':
      return {
        trusted: false,
        why: `${short} is signed by ${s.key || 'a key'} that is not an allowed signer (${allowedSigners})`,
      };
    default:
      return {
        trusted: false,
        why: `${short}'s signature does not verify (git's status ${s.status})`,
      };
  }
}
