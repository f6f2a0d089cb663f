// Whether a host can activate a system and go back: every system it will run needs its own
// bin/switch-to-configuration (NixOS leaves it out under system.switch.enable = false, and such
// a system can only be booted), and the host needs systemd-run (transient units: the activation
// and the revert timer) and nix-env (the profile), as nixos-rebuild-ng does.
import { commandExistsArgv, existsArgv, isExecutableArgv } from '../programs/coreutils.js';
import { switchToConfigurationArgv } from '../programs/switch-to-configuration.js';
import type { Executor } from '../run/executor.js';

const PROGRAMS = ['systemd-run', 'nix-env'] as const;

/** What keeps the host from activating anything and going back to what it runs; none when it can. */
export async function hostActivationProblems(exec: Executor): Promise<string[]> {
  // reads issued together: one ssh session
  const [programs, [runs, canSwitch]] = await Promise.all([
    Promise.all(PROGRAMS.map((p) => exec.run(commandExistsArgv(p), { root: true }))),
    Promise.all([
      exec.run(existsArgv(exec.host.currentSystem)),
      exec.run(isExecutableArgv(switcher(exec.host.currentSystem))),
    ]),
  ]);
  return [
    ...PROGRAMS.filter((_, i) => programs[i]?.exitCode !== 0).map(
      (p) => `it has no ${p} on the PATH exo-deploy runs commands with`,
    ),
    // a host that runs no system yet (its first deploy) has nothing to go back to
    ...(runs.exitCode === 0 && canSwitch.exitCode !== 0
      ? [
          `the system it runs (${exec.host.currentSystem}) has no bin/switch-to-configuration (system.switch.enable = false): nothing could put it back after a deploy`,
        ]
      : []),
  ];
}

/** The systems (store paths, where exec finds them) that have no switch-to-configuration. */
export async function unswitchableSystems(
  exec: Executor,
  systems: readonly string[],
): Promise<string[]> {
  const found = await Promise.all(systems.map((s) => exec.run(isExecutableArgv(switcher(s)))));
  return systems.filter((_, i) => found[i]?.exitCode !== 0);
}

const switcher = (system: string) => switchToConfigurationArgv(system, 'test')[0] as string;
