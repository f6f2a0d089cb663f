// What the sandbox fleet needs (sandbox/README.md): root, systemd-nspawn, and nixpkgs' lib for
// the hosts' NixOS configurations. Suites that use a fleet skip, and say why, without them.
import { execFileSync } from 'node:child_process';
import { nixpkgsLib } from '../sandbox/fleet.mjs';

const hasNspawn = (() => {
  try {
    execFileSync('which', ['systemd-nspawn'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const missing = [
  process.getuid?.() !== 0 ? 'root' : null,
  hasNspawn ? null : 'systemd-nspawn',
  nixpkgsLib() ? null : "nixpkgs' lib (NIXPKGS_LIB)",
].filter((m): m is string => m !== null);

/** True when a sandbox fleet cannot be brought up here. */
export const noSandbox = missing.length > 0;
if (noSandbox)
  console.log(
    `sandbox and e2e tests skipped: they need ${missing.join(', ')} (see sandbox/README.md)`,
  );
