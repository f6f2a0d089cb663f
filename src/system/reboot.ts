// Whether a new system needs a reboot to run as built, as NixOS's own auto-upgrade decides it:
// a different kernel, initrd or kernel modules than the system the host booted; and, where exo
// uses CUDA, a different NVIDIA driver, whose user-space part no longer matches the kernel
// module loaded at boot until the host reboots.
import { readlinkArgv } from '../programs/coreutils.js';
import type { Executor } from '../run/executor.js';
import { readReleases } from './generations.js';

/** What the boot loader starts, and the GPU driver: the parts a live switch cannot change. */
export interface BootParts {
  kernel: string;
  initrd: string;
  'kernel-modules': string;
  /** The GPU driver's package (release.json); null: none. */
  gpuDriver: string | null;
}

const LINKS = ['kernel', 'initrd', 'kernel-modules'] as const;
export type BootLinks = Pick<BootParts, (typeof LINKS)[number]>;
const BOOTED_SYSTEM = '/run/booted-system';

/** readlink -m's answers for a system's links; a link that is missing resolves inside the
 * system's own folder (a container's system has no kernel): none, ''. */
function linksOf(system: string, targets: readonly string[]): BootLinks {
  const target = (i: number) => {
    const t = targets[i] ?? '';
    return t.startsWith(`${system}/`) ? '' : t;
  };
  return { kernel: target(0), initrd: target(1), 'kernel-modules': target(2) };
}

/** Where each system's kernel, initrd and kernel modules lie, read where the systems are. */
export async function readBootLinks(
  exec: Executor,
  systemPaths: readonly string[],
): Promise<Map<string, BootLinks>> {
  if (systemPaths.length === 0) return new Map();
  const out = await exec.must(
    readlinkArgv(systemPaths.flatMap((p) => LINKS.map((l) => `${p}/${l}`))),
  );
  const targets = out.stdout.split('\n');
  return new Map(systemPaths.map((p, i) => [p, linksOf(p, targets.slice(i * 3, i * 3 + 3))]));
}

/** The parts of the system the host booted, in one read; null when it has none
 * (/run/booted-system is missing: a host that never booted NixOS). */
export async function readBootedParts(exec: Executor): Promise<BootParts | null> {
  const [out, releases] = await Promise.all([
    exec.must(readlinkArgv([BOOTED_SYSTEM, ...LINKS.map((l) => `${BOOTED_SYSTEM}/${l}`)])),
    readReleases(exec, [BOOTED_SYSTEM]),
  ]);
  const [booted, ...targets] = out.stdout.split('\n');
  // readlink -m prints a path that does not exist as it is
  if (!booted || booted === BOOTED_SYSTEM) return null;
  return { ...linksOf(booted, targets), gpuDriver: releases.get(BOOTED_SYSTEM)?.gpuDriver ?? null };
}

/** Why `built` needs a reboot after `booted`, each reason naming what changes; empty: none;
 * null: the booted system is not known, so it cannot be told. */
export function rebootReasons(booted: BootParts | null, built: BootParts): string[] | null {
  if (!booted) return null;
  const reasons: string[] = LINKS.filter((l) => booted[l] !== built[l]).map(
    (l) =>
      `${l === 'kernel-modules' ? 'kernel modules' : l} ${storeName(booted[l])} → ${storeName(built[l])}`,
  );
  if (booted.gpuDriver !== built.gpuDriver)
    reasons.push(
      `GPU driver ${storeName(booted.gpuDriver)} → ${storeName(built.gpuDriver)} (user space would not match the kernel module loaded at boot)`,
    );
  return reasons;
}

/** /nix/store/HASH-linux-6.6.52/bzImage → linux-6.6.52: the part a person recognises. */
function storeName(path: string | null): string {
  if (!path) return 'none';
  const m = /^\/nix\/store\/[0-9a-z]{32}-([^/]+)/.exec(path);
  return m ? (m[1] as string) : path;
}
