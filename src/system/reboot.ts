// Whether a new system needs a reboot to run as built, as NixOS's own auto-upgrade decides it:
// a different kernel, initrd or kernel modules than the system the host booted; and, where exo
// uses CUDA, a different NVIDIA driver, whose user-space part no longer matches the kernel
// module loaded at boot until the host reboots.
import { setTimeout as sleep } from 'node:timers/promises';
import { ExitCode, ExoDeployError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import { bootIdArgv, readlinkArgv } from '../programs/coreutils.js';
import {
  PRE_SWITCH_CHECKS_FAILED,
  switchToConfigurationArgv,
  UNKNOWN_ACTION,
} from '../programs/switch-to-configuration.js';
import { bootDoneArgv, rebootArgv } from '../programs/systemctl.js';
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

/** The system a host booted (/run/booted-system, resolved) and its parts. */
export interface BootedSystem extends BootParts {
  system: string;
}

/** The parts of the system the host booted, in one read; null when it has none
 * (/run/booted-system is missing: a host that never booted NixOS). */
export async function readBootedParts(exec: Executor): Promise<BootedSystem | null> {
  const [out, releases] = await Promise.all([
    exec.must(readlinkArgv([BOOTED_SYSTEM, ...LINKS.map((l) => `${BOOTED_SYSTEM}/${l}`)])),
    readReleases(exec, [BOOTED_SYSTEM]),
  ]);
  const [first = '', ...targets] = out.stdout.split('\n');
  const booted = bootedPath(first);
  if (!booted) return null;
  return {
    system: booted,
    ...linksOf(booted, targets),
    gpuDriver: releases.get(BOOTED_SYSTEM)?.gpuDriver ?? null,
  };
}

/** The system the host booted; null: none (never booted NixOS). */
export async function readBootedSystem(exec: Executor): Promise<string | null> {
  return bootedPath((await exec.must(readlinkArgv([BOOTED_SYSTEM]))).stdout);
}

/** readlink -m's answer for /run/booted-system; null when it is missing (readlink -m prints a
 * path that does not exist as it is). */
function bootedPath(answer: string): string | null {
  const booted = answer.trim();
  return booted && booted !== BOOTED_SYSTEM ? booted : null;
}

/**
 * Why the system's own pre-switch checks refuse to switch to it live (they compare it with the
 * system running: a new D-Bus implementation, say), read on the host where the system is; null
 * when they do not, or cannot tell (another activation holds the lock). Such a system can only
 * be booted: its checks skip `boot`.
 */
export async function liveSwitchRefusal(
  exec: Executor,
  systemPath: string,
): Promise<string | null> {
  const ask = (action: 'check' | 'dry-activate') =>
    exec.run(switchToConfigurationArgv(systemPath, action), { root: true });
  let r = await ask('check');
  if (r.exitCode !== 0 && UNKNOWN_ACTION.test(`${r.stdout}${r.stderr}`))
    r = await ask('dry-activate');
  const output = `${r.stdout}${r.stderr}`;
  if (r.exitCode === 0 || !PRE_SWITCH_CHECKS_FAILED.test(output)) return null;
  const why = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Pre-switch checks? /.test(l))
    .slice(0, 3)
    .join(' ');
  return `its pre-switch checks refuse a live switch${why ? ` (${why})` : ''}`;
}

/** How often a rebooting host is asked whether it is back. */
const REBOOT_POLL_MS = 2000;

/**
 * Reboots the host and waits until it answers from a new boot (its kernel's boot id changed),
 * up to timeoutMs; onAsked: once the reboot is asked for. A host that does not come back in time
 * needs a person: nothing on it can be reached to put it back. Its boot may still be under way
 * (waitForBoot).
 */
export async function rebootHost(
  exec: Executor,
  timeoutMs: number,
  signal?: AbortSignal,
  onAsked?: () => void,
): Promise<{ downMs: number; bootId: string }> {
  const { name } = exec.host;
  const bootId = (await exec.must(bootIdArgv())).stdout.trim();
  const started = Date.now();
  // The host may cut the session before systemctl answers: only an answer that it refused counts.
  const asked = await exec
    .run(rebootArgv(), { root: true, mutates: true, fresh: true })
    .catch(() => null);
  // (a status from 128 up: the command was killed by the shutdown it started)
  if (asked && asked.exitCode > 0 && asked.exitCode < 128 && !asked.timedOut)
    throw new ExoDeployError(
      `${name}: systemctl reboot failed (exit ${asked.exitCode}): ${asked.stderr.trim().split('\n')[0]}`,
      ExitCode.failed,
      { host: name },
    );
  onAsked?.();
  // The shared connection dies with the boot it was made to: the next command makes a new one.
  await exec.close();
  let last = 'not reached yet';
  for (;;) {
    await sleep(REBOOT_POLL_MS, undefined, { signal });
    try {
      const r = await exec.run(bootIdArgv(), { fresh: true });
      const now = r.stdout.trim();
      if (r.exitCode === 0 && now && now !== bootId)
        return { downMs: Date.now() - started, bootId: now };
      last = r.exitCode === 0 ? 'it answers from the boot before (not down yet)' : r.stderr.trim();
    } catch (error) {
      if (!(error instanceof ExoDeployError)) throw error;
      last = error.message;
    }
    if (Date.now() - started > timeoutMs)
      throw new ExoDeployError(
        `${name}: did not come back within ${formatDuration(timeoutMs)} of its reboot (last: ${last}); it needs a person`,
        ExitCode.needsPerson,
        {
          host: name,
          hint: `look at ${name}'s console: a boot that hangs or panics, or a network that does not come up; its boot default is the new system, and the system it ran before is the generation below`,
        },
      );
  }
}

/** Waits until the host's boot is done (no start job left), up to settleMs: what it runs, and
 * its units, are settled only then. A boot that takes longer is looked at as it is. */
export async function waitForBoot(exec: Executor, settleMs: number): Promise<void> {
  await exec.run(bootDoneArgv(), { fresh: true, timeoutMs: settleMs });
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
