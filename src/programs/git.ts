// git, for committing flake.lock in the user's config repo, and for reading the history of an
// input that is a git repository.
export const gitAddArgv = (git: string, repo: string, file: string) => [
  git,
  '-C',
  repo,
  'add',
  '--',
  file,
];
export const gitCommitArgv = (git: string, repo: string, file: string, message: string) => [
  git,
  '-C',
  repo,
  'commit',
  '--quiet',
  '-m',
  message,
  '--',
  file,
];

/** The commit a name stands for (full hash); exit 1 and nothing printed when there is none. */
export const gitResolveArgv = (git: string, repo: string, ref: string) => [
  git,
  '-C',
  repo,
  'rev-parse',
  '--verify',
  '--quiet',
  '--end-of-options',
  `${ref}^{commit}`,
];

/** The top folder of the repository `repo` lies in. */
export const gitTopArgv = (git: string, repo: string) => [
  git,
  '-C',
  repo,
  'rev-parse',
  '--show-toplevel',
];

/** Where `repo` lies in its repository ("" at its top, "sub/" below). */
export const gitPrefixArgv = (git: string, repo: string) => [
  git,
  '-C',
  repo,
  'rev-parse',
  '--show-prefix',
];

/** Whether a name can be a branch's: exit 0 when it can. */
export const gitBranchNameArgv = (git: string, name: string) => [
  git,
  'check-ref-format',
  '--branch',
  name,
];

/** The files of a commit, as a tar file (the working tree, staged or not, plays no part). */
export const gitArchiveArgv = (git: string, repo: string, commit: string, tarFile: string) => [
  git,
  '-C',
  repo,
  'archive',
  '--format=tar',
  `--output=${tarFile}`,
  commit,
];

// A commit made beside the working tree: a temporary index (GIT_INDEX_FILE) read from the parent,
// one file's new content added to it, the tree written, a commit of it on top of the parent, and
// a new branch there. Neither the working tree, the index nor the branch checked out moves.

export const gitReadTreeArgv = (git: string, repo: string, commit: string) => [
  git,
  '-C',
  repo,
  'read-tree',
  commit,
];
/** Stores a file's content in the repository; prints its blob's hash. */
export const gitHashObjectArgv = (git: string, repo: string, file: string) => [
  git,
  '-C',
  repo,
  'hash-object',
  '-w',
  '--',
  file,
];
/** path: from the top of the repository. */
export const gitIndexFileArgv = (git: string, repo: string, blob: string, path: string) => [
  git,
  '-C',
  repo,
  'update-index',
  '--add',
  '--cacheinfo',
  `100644,${blob},${path}`,
];
export const gitWriteTreeArgv = (git: string, repo: string) => [git, '-C', repo, 'write-tree'];
/** The message comes on stdin; prints the new commit's hash. */
export const gitCommitTreeArgv = (git: string, repo: string, tree: string, parent: string) => [
  git,
  '-C',
  repo,
  'commit-tree',
  tree,
  '-p',
  parent,
  '-F',
  '-',
];
/** A new branch at a commit; fails when the branch exists. */
export const gitNewBranchArgv = (git: string, repo: string, name: string, commit: string) => [
  git,
  '-C',
  repo,
  'branch',
  '--end-of-options',
  name,
  commit,
];

/** The commits in `to` that are not in `from`, newest first: one "HASH TAB SUBJECT" line each. */
export const gitLogArgv = (git: string, repo: string, from: string, to: string, max: number) => [
  git,
  '-C',
  repo,
  'log',
  '--format=%H%x09%s',
  `--max-count=${max}`,
  '--end-of-options',
  `${from}..${to}`,
];
export const gitCountArgv = (git: string, repo: string, from: string, to: string) => [
  git,
  '-C',
  repo,
  'rev-list',
  '--count',
  '--end-of-options',
  `${from}..${to}`,
];

export interface GitCommit {
  rev: string;
  subject: string;
}

export const parseGitLog = (output: string): GitCommit[] =>
  output
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf('\t');
      return tab < 0
        ? { rev: line, subject: '' }
        : { rev: line.slice(0, tab), subject: line.slice(tab + 1) };
    });
/** The inverse of parseGitLog. */
export const formatGitLog = (commits: readonly GitCommit[]) =>
  commits.map((c) => `${c.rev}\t${c.subject}\n`).join('');

/** An empty repository without a working tree, to fetch into. */
export const gitInitBareArgv = (git: string, dir: string) => [
  git,
  'init',
  '--quiet',
  '--bare',
  dir,
];

/** An empty repository with a working tree, to fetch into and check a commit out in. */
export const gitInitArgv = (git: string, dir: string) => [git, 'init', '--quiet', dir];

/** The working tree made exactly `rev`'s files, HEAD detached at it: what was there before
 * (edits, files git does not track, ignored ones too) is gone, so the tree is clean. */
export const gitCheckoutArgv = (git: string, repo: string, rev: string) => [
  git,
  '-C',
  repo,
  'checkout',
  '--quiet',
  '--force',
  '--detach',
  rev,
  '--',
];
export const gitCleanArgv = (git: string, repo: string) => [git, '-C', repo, 'clean', '-ffdxq'];

/** Fetches refspecs (or commits) from url, without tags; blobless: without file contents where
 * the server can leave them out (a server that cannot sends them, with a warning). */
const gitFetchArgv = (
  git: string,
  repo: string,
  url: string,
  refspecs: readonly string[],
  { blobless = false } = {},
) => [
  git,
  '-C',
  repo,
  'fetch',
  '--quiet',
  '--no-tags',
  ...(blobless ? ['--filter=blob:none'] : []),
  '--end-of-options',
  url,
  ...refspecs,
];

/** Just these commits and their history, without file contents. */
export const gitFetchRevsArgv = (git: string, repo: string, url: string, revs: readonly string[]) =>
  gitFetchArgv(git, repo, url, revs, { blobless: true });

// A host's mirror of its config repository (pull mode): one branch fetched into a ref of its
// own, whose history tells whether a new tip descends from what the host runs.

/** The branch's tip into `ref`, forced: a rewound branch is seen (and refused by ancestry), not
 * hidden by a failed fast-forward. */
export const gitFetchBranchArgv = (
  git: string,
  repo: string,
  url: string,
  branch: string,
  ref: string,
) => gitFetchArgv(git, repo, url, [`+refs/heads/${branch}:${ref}`]);

/** Exit 0: `ancestor` is `descendant` or one of its ancestors; 1: it is not; 128: one of them
 * is not in the repository. */
export const gitIsAncestorArgv = (
  git: string,
  repo: string,
  ancestor: string,
  descendant: string,
) => [git, '-C', repo, 'merge-base', '--is-ancestor', '--end-of-options', ancestor, descendant];

export const IS_ANCESTOR = { yes: 0, no: 1 } as const;

/** A commit's signature as git judges it against the allowed signers (SSH keys): its %G? letter,
 * key and signer, TAB-separated. */
export const gitSignatureArgv = (
  git: string,
  repo: string,
  rev: string,
  allowedSigners: string,
) => [
  git,
  '-c',
  `gpg.ssh.allowedSignersFile=${allowedSigners}`,
  '-C',
  repo,
  'log',
  '-1',
  '--format=%G?%x09%GK%x09%GS',
  '--end-of-options',
  rev,
];

export interface Signature {
  /** git's %G?: G good and trusted, U good from a key not trusted (not an allowed signer),
   * N none, B bad, E cannot be checked, X/Y expired, R revoked. */
  status: string;
  key: string;
  signer: string;
}

export function parseSignature(output: string): Signature {
  const [status = 'N', key = '', signer = ''] = output.replace(/\n$/, '').split('\t');
  return { status, key, signer };
}
/** The inverse of parseSignature. */
export const formatSignature = (s: Signature) => `${s.status}\t${s.key}\t${s.signer}\n`;

/** What went wrong, from git's stderr: its first "fatal:" or "error:" line (git adds advice
 * lines after it), else its last line. */
export function gitError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const first = lines.find((l) => /^(fatal|error): /.test(l));
  return (first ?? lines.at(-1) ?? '').replace(/^(fatal|error): /, '');
}
