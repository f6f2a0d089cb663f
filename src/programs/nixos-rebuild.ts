// nixos-rebuild-ng (NixOS 26.05 and later) activates a system that is already built:
// `--store-path`. Older ones (and the bash nixos-rebuild) evaluate and build again.
import type { Host } from '../config/host.js';

export const helpArgv = (program: string) => [program, '--help'];

/** Whether this nixos-rebuild can activate a given store path (its --help lists the flag). */
export const hasStorePath = (help: string) => /--store-path\b/.test(help);

export function activateStorePathArgv(
  program: string,
  action: 'test' | 'switch' | 'boot',
  storePath: string,
  host: Host,
): string[] {
  const argv = [program, action, '--store-path', storePath];
  if (!host.local) {
    argv.push('--target-host', host.target);
    if (host.sudo) argv.push('--sudo');
  }
  return argv;
}
