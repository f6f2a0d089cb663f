// A host's system generations: number, date, store path, the exo version inside each, and
// which one runs now (which is not always the profile's current one: see `test`).
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
  exoVersion: string;
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

export const RELEASE_FILE = 'etc/exo/release.json';

export async function readSystemState(exec: Executor): Promise<SystemState> {
  const { host } = exec;
  const list = await exec.run(listGenerationsArgv(host.systemProfile));
  if (list.exitCode !== 0) {
    throw new ExoDeployError(`${host.name}: cannot list the generations of ${host.systemProfile}: ${list.stderr.trim().split('\n')[0]}`, ExitCode.failed, {
      host: host.name,
      hint: 'is this a NixOS host, and is system_profile right?',
    });
  }
  const generations = parseGenerations(list.stdout).sort((a, b) => b.number - a.number);
  const links = generations.map((g) => generationLink(host.systemProfile, g.number));
  const resolved = (await exec.must(readlinkArgv([host.currentSystem, ...links]))).stdout.split('\n');
  const running = resolved[0] && resolved[0] !== host.currentSystem ? resolved[0] : null;
  const paths = generations.map((_, i) => {
    const p = resolved[i + 1];
    return p && p !== links[i] ? p : null;
  });
  const releases = await readReleases(exec, [...new Set([...paths, running].filter((p): p is string => Boolean(p)))]);
  const versionOf = (p: string | null) => (p && releases.get(p)?.version) ?? 'unknown';
  return {
    host: host.name,
    running,
    runningRelease: (running && releases.get(running)) || null,
    profileGeneration: generations.find((g) => g.current)?.number ?? null,
    generations: generations.map((g, i) => {
      const p = paths[i] ?? null;
      return { ...g, path: p, running: p !== null && p === running, exoVersion: versionOf(p) };
    }),
  };
}

export interface Release {
  version: string;
  /** exo's discovery namespace; null when it defaults to the version. */
  namespace: string | null;
}

/** What each system path carries in the release.json the module writes into it. */
export async function readReleases(exec: Executor, systemPaths: readonly string[]): Promise<Map<string, Release>> {
  const releases = new Map<string, Release>();
  if (systemPaths.length === 0) return releases;
  const out = await exec.run(readFilesArgv(systemPaths.map((p) => `${p}/${RELEASE_FILE}`)));
  for (const [file, content] of parseReadFiles(out.stdout)) {
    const release = parseRelease(content);
    if (release) releases.set(file.slice(0, -RELEASE_FILE.length - 1), release);
  }
  return releases;
}

/** The module writes {"schemaVersion":1,"exo":{"version",…},"namespace",…}; a flat {"version"} is read too. */
export function parseRelease(content: string): Release | undefined {
  try {
    const release = JSON.parse(content) as { version?: unknown; namespace?: unknown; exo?: { version?: unknown } };
    const version = release.exo?.version ?? release.version;
    if (typeof version !== 'string') return undefined;
    return { version, namespace: typeof release.namespace === 'string' && release.namespace.trim() ? release.namespace : null };
  } catch {
    return undefined;
  }
}
