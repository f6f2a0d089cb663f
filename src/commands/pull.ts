// exo-deploy pull: on the host itself, follow a branch of the config repository: deploy its
// tip here, behind the same gate as a push, when it moved forward. What the module's timer runs.
import { access, constants } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HOST_NAME } from '../config/patterns.js';
import type { Context } from '../context.js';
import { acquireDeployLock } from '../deploy/lock.js';
import { usageError, type ExitCode } from '../errors.js';
import type { Outcome } from '../output/outcome.js';
import { gitBranchNameArgv } from '../programs/git.js';
import { PullRun, pullPaths, type PullResult, type PullSettings } from '../pull/pull-run.js';

export const DEFAULT_PULL_DIR = '/var/lib/exo-deploy/pull';

export async function run(ctx: Context): Promise<Outcome> {
  const settings = await pullSettings(ctx);
  const lock = await acquireDeployLock(
    pullPaths(settings.dir).deploys,
    `pull ${settings.branch}`,
    ctx.log,
  );
  let result: PullResult;
  try {
    result = await PullRun.run(ctx, settings);
  } finally {
    await lock.release();
  }
  return { exitCode: result.exitCode as ExitCode, data: result, text: summary(result) };
}

/** The command line, checked before anything is fetched or written. */
async function pullSettings(ctx: Context): Promise<PullSettings> {
  const o = ctx.options;
  const url = o.url;
  if (!url) throw usageError('pull needs --url: the config repository to follow');
  if (url.startsWith('-') || /[\0\n\r]/.test(url))
    throw usageError(`--url ${JSON.stringify(url)}: not a git URL`);
  if (carriesCredentials(url))
    throw usageError(
      '--url carries credentials: they would be kept in the state file, the journal and the unit',
      'give a URL without them, and an ssh key (GIT_SSH_COMMAND) or a git credential helper',
    );
  const branch = o.branch ?? 'main';
  if ((await ctx.deployer.run(gitBranchNameArgv(ctx.config.programs.git, branch))).exitCode !== 0)
    throw usageError(`--branch ${JSON.stringify(branch)}: git takes no branch of that name`);
  const hostName = o['host-name'] ?? os.hostname().split('.')[0] ?? '';
  if (!HOST_NAME.test(hostName))
    throw usageError(
      `${o['host-name'] ? '--host-name' : "this machine's host name"} ${JSON.stringify(hostName)} is not a host name of a config`,
      'pass --host-name NAME, as the host is named in the repository',
    );
  const repoConfig = o['repo-config'] ?? 'exo-deploy.toml';
  if (path.isAbsolute(repoConfig) || path.normalize(repoConfig).startsWith('..'))
    throw usageError(
      `--repo-config ${repoConfig}: expected a path inside the repository, from its top`,
    );
  const dir = o['pull-dir'] ?? DEFAULT_PULL_DIR;
  if (!path.isAbsolute(dir)) throw usageError(`--pull-dir ${dir}: expected an absolute path`);
  const allowedSigners = o['allowed-signers'] ?? null;
  if (allowedSigners) {
    if (!path.isAbsolute(allowedSigners))
      throw usageError(`--allowed-signers ${allowedSigners}: expected an absolute path`);
    await access(allowedSigners, constants.R_OK).catch((error: NodeJS.ErrnoException) => {
      throw usageError(
        `--allowed-signers ${allowedSigners}: cannot read it (${error.code}): no commit could be trusted`,
      );
    });
  }
  return {
    url,
    branch,
    hostName,
    repoConfig,
    allowedSigners,
    dir,
    textfile: o.textfile ?? null,
  };
}

/** A password in any URL's user part, or anything there in an http(s) URL (a token given as
 * the user name). */
function carriesCredentials(url: string): boolean {
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url)?.[1];
  if (userinfo === undefined) return false;
  return userinfo.includes(':') || /^https?:/i.test(url);
}

function summary(r: PullResult): string {
  const lines = [
    `pull ${r.host} (${r.branch} of ${r.url}): ${r.outcome} (exit ${r.exitCode})`,
    `  ${r.reason}`,
  ];
  if (r.deploy?.reportFiles) lines.push(`  report: ${r.deploy.reportFiles.markdown}`);
  return lines.join('\n');
}
