// Activate the flake's system on a host with nixos-rebuild test or switch.
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { nixosRebuildArgv } from '../programs/nixos-rebuild.js';
import { UNITS_FAILED_EXIT } from '../programs/switch-to-configuration.js';
import { lastLines, nixSshOpts } from '../run/executor.js';
import { failedUnits, olderFailuresOnly } from '../system/failed-units.js';

// nixos-rebuild-ng passes switch-to-configuration's exit 4 on with "Command '…' returned non-zero
// exit status 4."; the bash nixos-rebuild of NixOS 25.05 and earlier turned it into exit 1 and
// its warning line.
const SWITCH_WARNING = /warning: error\(s\) occurred while switching to the new configuration|the following units failed|returned non-zero exit status 4\./;

export async function nixosRebuild(ctx: Context, host: Host, action: 'test' | 'switch'): Promise<string> {
  // A local target is activated here, through sudo when the host says so; a remote one gets
  // --use-remote-sudo instead, and nixos-rebuild itself runs unprivileged on this machine.
  const runner = host.local ? ctx.executor(host) : ctx.deployer;
  const failedBefore = await failedUnits(ctx.executor(host));
  const result = await runner.run(nixosRebuildArgv(ctx.config.programs.nixos_rebuild, action, ctx.config.flake, host), {
    env: { NIX_SSHOPTS: nixSshOpts(host) },
    timeoutMs: ctx.config.timeouts.build + ctx.config.timeouts.activate,
    root: host.local,
    mutates: true,
  });
  const output = `${result.stdout}${result.stderr}`;
  if (result.exitCode === 0) return output;
  const unitsFailed = result.exitCode === UNITS_FAILED_EXIT || SWITCH_WARNING.test(output);
  if (unitsFailed && !result.timedOut) {
    const older = await olderFailuresOnly(ctx.executor(host), failedBefore, output, host.unit);
    if (older) {
      ctx.log.warn(`${host.name}: ${older.join(', ')} ${older.length === 1 ? 'was' : 'were'} already failed before this activation, which left ${older.length === 1 ? 'it' : 'them'} alone: not counted against the release (see \`journalctl -u ${older[0]}\` on ${host.name})`);
      return output;
    }
  }
  const why = result.timedOut ? 'timed out' : unitsFailed ? `exited ${result.exitCode}: units failed to start` : `exited ${result.exitCode}`;
  throw new ExoDeployError(`${host.name}: nixos-rebuild ${action} ${why}:\n${lastLines(output, 8)}`, ExitCode.failed, { host: host.name });
}
