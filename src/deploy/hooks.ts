// [hooks] pre_deploy / post_deploy: the user's commands around a deploy, for notifications
// and checks. They get the deploy's facts in their environment; a failing pre_deploy stops the
// deploy before anything changes.
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { lastLines } from '../run/executor.js';
import type { DeployRecord } from './record.js';

export type HookName = 'pre_deploy' | 'post_deploy';

function hookEnv(record: DeployRecord): Record<string, string> {
  return {
    EXO_DEPLOY_RUN_ID: record.id,
    EXO_DEPLOY_HOSTS: record.hosts.map((h) => h.host).join(','),
    EXO_DEPLOY_OUTCOME: record.outcome ?? 'pending',
    EXO_DEPLOY_EXIT_CODE: record.exitCode === null ? '' : String(record.exitCode),
    EXO_DEPLOY_REPORT: record.reportFiles?.markdown ?? '',
    EXO_DEPLOY_REPORT_JSON: record.reportFiles?.json ?? '',
  };
}

export async function runHook(ctx: Context, name: HookName, record: DeployRecord): Promise<void> {
  const argv = ctx.config.hooks[name];
  if (!argv) return;
  const result = await ctx.deployer.run(argv, {
    env: hookEnv(record),
    timeoutMs: ctx.config.hooks.timeout,
    cwd: ctx.config.dir,
  });
  if (result.exitCode === 0 && !result.timedOut) {
    ctx.log.info(`hook ${name}: ok`);
    return;
  }
  const why = `${result.timedOut ? 'timed out' : `exited ${result.exitCode}`}${result.stderr.trim() ? `: ${lastLines(result.stderr, 3)}` : ''}`;
  if (name === 'post_deploy') {
    ctx.log.warn(`hook post_deploy ${why}`);
    return;
  }
  throw new ExoDeployError(
    `hook pre_deploy ${why}: the deploy did not start, nothing changed`,
    ExitCode.failed,
    { hint: `the hook is [hooks] pre_deploy in ${ctx.config.file}` },
  );
}
