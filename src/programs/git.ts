// git, for committing flake.lock in the user's config repo.
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
export const gitHeadArgv = (git: string, repo: string) => [
  git,
  '-C',
  repo,
  'rev-parse',
  '--short',
  'HEAD',
];
