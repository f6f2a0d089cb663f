// A host's system generations: number, date, store path, the exo inside each (the release
// the module writes), and which one runs now (not always the profile's current one: see `test`).
import { ExoDeployError, ExitCode } from '../errors.js';
import { parseReadFiles, readFilesArgv, readlinkArgv } from '../programs/coreutils.js';
import { generationLink, listGenerationsArgv, parseGenerations } from '../programs/nix-env.js';
import type { Executor } from '../run/executor.js';

export interface GenerationInfo {
  number: number;
  date: string;
  /** The profile points at it. */
  current: boolean;
  /** It is the system running now (/run/current-system). */
  running: boolean;
  path: string | null;
  /** Which exo the generation runs: its release's identity, or 'unknown'. */
  exo: string;
}

export interface SystemState {
  host: string;
  /** Newest first. */
  generations: GenerationInfo[];
  running: string | null;
  /** The running system's release.json, read with the generations' (null when unreadable). */
  runningRelease: Release | null;
  profileGeneration: number | null;
}

/** The system a host ran before a change, and where its profile pointed: what a rollback
 * returns it to, exactly (the store path, not "the generation below"). */
export interface PreviousSystem {
  running: string | null;
  profileGeneration: number | null;
  profilePath: string | null;
  /** The system it had booted (/run/booted-system): a host that booted another one since
   * goes back with a reboot. null: none; absent: recorded by a version that did not read it. */
  booted?: string | null;
}

const RELEASE_FILE = 'etc/exo/release.json';

export async function readSystemState(exec: Executor): Promise<SystemState> {
  const { host } = exec;
  // nix-env takes the profile's lock (PROFILE.lock, in a folder only root may write) even to
  // list: as root, through sudo when the host says so.
  const list = await exec.run(listGenerationsArgv(host.systemProfile), { root: true });
  if (list.exitCode !== 0) {
    throw new ExoDeployError(
      `${host.name}: cannot list the generations of ${host.systemProfile}: ${list.stderr.trim().split('\n')[0]}`,
      ExitCode.failed,
      {
        host: host.name,
        hint: 'is this a NixOS host, and is system_profile right?',
      },
    );
  }
  const generations = parseGenerations(list.stdout).sort((a, b) => b.number - a.number);
  const links = generations.map((g) => generationLink(host.systemProfile, g.number));
  const resolved = (await exec.must(readlinkArgv([host.currentSystem, ...links]))).stdout.split(
    '\n',
  );
  const running = resolved[0] && resolved[0] !== host.currentSystem ? resolved[0] : null;
  const paths = generations.map((_, i) => {
    const p = resolved[i + 1];
    return p && p !== links[i] ? p : null;
  });
  const releases = await readReleases(exec, [
    ...new Set([...paths, running].filter((p): p is string => Boolean(p))),
  ]);
  const exoOf = (p: string | null) => (p && releases.get(p)?.identity) ?? 'unknown';
  return {
    host: host.name,
    running,
    runningRelease: (running && releases.get(running)) || null,
    profileGeneration: generations.find((g) => g.current)?.number ?? null,
    generations: generations.map((g, i) => {
      const p = paths[i] ?? null;
      return { ...g, path: p, running: p !== null && p === running, exo: exoOf(p) };
    }),
  };
}

/** exo's networking: libp2p up to the 1.0 releases, zenoh on exo's main branch since. Nodes
 * of different eras never see each other. */
export type Era = 'libp2p' | 'zenoh';

export interface Release {
  /** What names this exo: its version, else its source revision or its store path's name.
   * Never empty ('unknown' when the file says neither). */
  identity: string;
  /** exo's release version; '' for a build without one (exo's own flake). */
  version: string;
  /** The full source revision, when the module knew it. */
  revision: string | null;
  /** The exo package's store path. */
  package: string | null;
  /** null: the file predates schema 2, so the era is unknown. */
  era: Era | null;
  /** exo's discovery namespace when pinned; null: exo's default for its era. */
  namespace: string | null;
  /** The GPU driver the system runs exo with (NVIDIA's, where exo uses CUDA): its package's
   * store path; null when the system has none or the file does not say. */
  gpuDriver: string | null;
  /** The folder the system's reboot guard arms a revert timer from at boot; null: it has none. */
  rebootGuard: string | null;
  /** The config repository's revision it was built from (system.configurationRevision): a
   * commit, a commit with "-dirty", or "dirty"; null: not recorded. */
  configRevision: string | null;
}

/** The running system and its release.json (null: unreadable), without the generations: what a
 * host runs, in one read of each. */
export async function readRunningRelease(
  exec: Executor,
): Promise<{ running: string | null; release: Release | null }> {
  const link = exec.host.currentSystem;
  const resolved = (await exec.must(readlinkArgv([link]))).stdout.trim();
  const running = resolved && resolved !== link ? resolved : null;
  if (!running) return { running, release: null };
  return { running, release: (await readReleases(exec, [running])).get(running) ?? null };
}

/** A recorded config revision read: the commit it names (null: none, as in a bare "dirty"), and
 * whether the tree had changes on top of it ("COMMIT-dirty", "dirty"). */
export function parseConfigRevision(recorded: string): { commit: string | null; dirty: boolean } {
  const m = /^([0-9a-f]{40})(-dirty)?$/.exec(recorded);
  return m
    ? { commit: m[1] as string, dirty: m[2] !== undefined }
    : { commit: null, dirty: recorded.endsWith('dirty') };
}

/** What each system path carries in the release.json the module writes into it. */
export async function readReleases(
  exec: Executor,
  systemPaths: readonly string[],
): Promise<Map<string, Release>> {
  const releases = new Map<string, Release>();
  if (systemPaths.length === 0) return releases;
  const out = await exec.run(readFilesArgv(systemPaths.map((p) => `${p}/${RELEASE_FILE}`)));
  for (const [file, content] of parseReadFiles(out.stdout)) {
    const release = parseRelease(content);
    if (release) releases.set(file.slice(0, -RELEASE_FILE.length - 1), release);
  }
  return releases;
}

/** The module's release.json. Schema 2: {"schemaVersion":2,"exo":{"version","identity",
 * "revision","package","era"},"namespace",…}; schema 1 has only exo.version (era unknown); a
 * flat {"version"} is read too. undefined when the file names no exo at all. */
export function parseRelease(content: string): Release | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const release = parsed as {
    version?: unknown;
    namespace?: unknown;
    gpu?: { driver?: unknown } | null;
    rebootGuard?: unknown;
    configRevision?: unknown;
    exo?: {
      version?: unknown;
      identity?: unknown;
      revision?: unknown;
      package?: unknown;
      era?: unknown;
    } | null;
  };
  const exo = typeof release.exo === 'object' && release.exo !== null ? release.exo : {};
  const version =
    typeof exo.version === 'string'
      ? exo.version
      : typeof release.version === 'string'
        ? release.version
        : undefined;
  const identity = nonEmpty(exo.identity) ?? nonEmpty(version);
  if (version === undefined && identity === null) return undefined;
  return {
    identity: identity ?? 'unknown',
    version: version ?? '',
    revision: nonEmpty(exo.revision),
    package: nonEmpty(exo.package),
    era: exo.era === 'libp2p' || exo.era === 'zenoh' ? exo.era : null,
    namespace: nonEmpty(release.namespace),
    gpuDriver:
      typeof release.gpu === 'object' && release.gpu !== null ? nonEmpty(release.gpu.driver) : null,
    rebootGuard: nonEmpty(release.rebootGuard),
    configRevision: nonEmpty(release.configRevision),
  };
}

const nonEmpty = (value: unknown): string | null =>
  typeof value === 'string' && value.trim() ? value : null;
