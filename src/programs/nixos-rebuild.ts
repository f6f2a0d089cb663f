// nixos-rebuild (or nixos-rebuild-ng, or the sandbox's stand-in): build, test, switch.
import type { Host } from '../config/host.js';

export type RebuildAction = 'build' | 'test' | 'switch' | 'boot' | 'dry-activate';

export function nixosRebuildArgv(program: string, action: RebuildAction, flake: string, host: Host): string[] {
  const argv = [program, action, '--flake', `${flake}#${host.name}`];
  // build happens on this machine; only activation goes to the target.
  if (!host.local && action !== 'build') {
    argv.push('--target-host', host.target);
    // --use-remote-sudo is understood by nixos-rebuild and (as a deprecated alias of --sudo) by nixos-rebuild-ng.
    if (host.sudo) argv.push('--use-remote-sudo');
  }
  return argv;
}

/** What `nix build` would build for the host (used for the closure diff and the plan). */
export const toplevelAttr = (flake: string, host: string) => `${flake}#nixosConfigurations.${host}.config.system.build.toplevel`;
