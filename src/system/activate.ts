// Changing what a host runs: point the profile, run the system's switch-to-configuration.
import type { Timeouts } from '../config/schema.js';
import { CommandFailed, type Executor } from '../run/executor.js';
import { setProfileArgv, switchGenerationArgv } from '../programs/nix-env.js';
import { switchToConfigurationArgv, UNITS_FAILED_EXIT, type SwitchAction } from '../programs/switch-to-configuration.js';

export interface ActivationResult {
  action: SwitchAction;
  systemPath: string;
  exitCode: number;
  /** switch-to-configuration's exit 4: the system is active, but units failed to start. */
  unitsFailed: boolean;
  output: string;
  durationMs: number;
}

export async function activate(exec: Executor, systemPath: string, action: SwitchAction, timeouts: Timeouts): Promise<ActivationResult> {
  const result = await exec.run(switchToConfigurationArgv(systemPath, action), { root: true, mutates: true, timeoutMs: timeouts.activate });
  if (result.exitCode !== 0 && result.exitCode !== UNITS_FAILED_EXIT) throw new CommandFailed(exec.host.name, result);
  return {
    action,
    systemPath,
    exitCode: result.exitCode,
    unitsFailed: result.exitCode === UNITS_FAILED_EXIT,
    output: `${result.stdout}${result.stderr}`,
    durationMs: result.durationMs,
  };
}

export async function pointProfileAtGeneration(exec: Executor, generation: number): Promise<void> {
  await exec.must(switchGenerationArgv(exec.host.systemProfile, generation), { root: true, mutates: true });
}

export async function pointProfileAtPath(exec: Executor, systemPath: string): Promise<void> {
  await exec.must(setProfileArgv(exec.host.systemProfile, systemPath), { root: true, mutates: true });
}
