// nix: version detection and the argv that differs between Nix releases.
export interface NixVersion {
  major: number;
  minor: number;
  patch: number;
  /** "nix" or "lix": Lix reports itself as "nix (Lix, like Nix) 2.91.1". */
  flavour: 'nix' | 'lix';
  text: string;
}

export function parseNixVersion(output: string): NixVersion | undefined {
  const line = output.trim().split('\n')[0] ?? '';
  const match = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(line);
  if (!match) return undefined;
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3] ?? 0),
    flavour: /lix/i.test(line) ? 'lix' : 'nix',
    text: line,
  };
}

const atLeast = (v: NixVersion, major: number, minor: number) =>
  v.major > major || (v.major === major && v.minor >= minor);

/** Nix 2.19 made `nix flake update` take input names; before, one input needed
 * `nix flake lock --update-input`. Lix (based on 2.18) has the new form and rejects the old. */
export function usesNewFlakeUpdate(v: NixVersion): boolean {
  return v.flavour === 'lix' || atLeast(v, 2, 19);
}

export function flakeUpdateArgv(
  nix: string,
  v: NixVersion,
  flake: string,
  inputs: readonly string[],
): string[] {
  if (usesNewFlakeUpdate(v))
    return [nix, ...EXPERIMENTAL, 'flake', 'update', ...inputs, '--flake', flake];
  if (inputs.length === 0) return [nix, ...EXPERIMENTAL, 'flake', 'update', flake];
  return [
    nix,
    ...EXPERIMENTAL,
    'flake',
    'lock',
    flake,
    ...inputs.flatMap((input) => ['--update-input', input]),
  ];
}

/** Flakes and the nix command are experimental in every Nix this supports; turning them on
 * for our own calls makes exo-deploy work where the user has not enabled them globally. */
const EXPERIMENTAL = ['--extra-experimental-features', 'nix-command flakes'];

/** `nix config show` arrived in 2.20; `nix show-config` is the older spelling. Only
 * nix-command is turned on here, so that the answer shows whether flakes are on. */
export function showConfigArgv(nix: string, v: NixVersion): string[] {
  const command = atLeast(v, 2, 20) || v.flavour === 'lix' ? ['config', 'show'] : ['show-config'];
  return [nix, '--extra-experimental-features', 'nix-command', ...command];
}

export function experimentalFeatures(showConfig: string): string[] {
  const line = showConfig.split('\n').find((l) => l.startsWith('experimental-features ='));
  return line
    ? line
        .slice(line.indexOf('=') + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean)
    : [];
}

export function diffClosuresArgv(nix: string, before: string, after: string): string[] {
  return [nix, ...EXPERIMENTAL, 'store', 'diff-closures', before, after];
}

/** `nix store diff-closures` lines look like "exo: 1.0.2 → 1.0.3, +12.3 KiB". */
export function parseClosureDiff(output: string): string[] {
  return (
    output
      // biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes are what it removes
      .replace(/\x1b\[[0-9;]*m/g, '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
  );
}

/** A host's system in the flake: what nixos-rebuild builds for `--flake FLAKE#HOST`. */
const toplevelAttr = (flake: string, host: string) =>
  `${flake}#nixosConfigurations.${host}.config.system.build.toplevel`;

/** Several hosts' systems evaluated and built by one Nix process; `--json` lists their outputs
 * in the order asked, and the out links (LINK, LINK-1, …) keep them from garbage collection. */
export const buildSystemsArgv = (
  nix: string,
  flake: string,
  hosts: readonly string[],
  outLink: string,
) => [
  nix,
  ...EXPERIMENTAL,
  'build',
  '--json',
  '--out-link',
  outLink,
  ...hosts.map((h) => toplevelAttr(flake, h)),
];

/** The store paths of `nix build --json`, in the order of the installables. */
export function parseBuildOutputs(stdout: string): string[] {
  const built = JSON.parse(stdout) as unknown;
  if (!Array.isArray(built)) throw new Error('nix build --json: expected a list');
  return built.map((b: { outputs?: { out?: unknown } }) => {
    if (typeof b?.outputs?.out !== 'string')
      throw new Error('nix build --json: an entry without outputs.out');
    return b.outputs.out;
  });
}

/** The inverse of parseBuildOutputs: what `nix build --json` prints for these outputs. */
export const formatBuildOutputs = (paths: readonly string[]) =>
  JSON.stringify(
    paths.map((out) => ({ drvPath: `${out.replace(/-[^/]*$/, '')}-x.drv`, outputs: { out } })),
  );

/** Copies the flake, with every input its lock names, to an ssh target's store; `--json`
 * says where the flake's own source landed. */
export const flakeArchiveToArgv = (nix: string, target: string, flake: string) => [
  nix,
  ...EXPERIMENTAL,
  'flake',
  'archive',
  '--json',
  '--to',
  `ssh://${target}`,
  flake,
];

/** The flake's store path from `nix flake archive --json`. */
export function parseFlakeArchive(stdout: string): string {
  const archived = JSON.parse(stdout) as { path?: unknown };
  if (typeof archived?.path !== 'string' || !archived.path.startsWith('/nix/store/'))
    throw new Error('nix flake archive --json: no store path');
  return archived.path;
}

/** The inverse of parseFlakeArchive. */
export const formatFlakeArchive = (storePath: string) =>
  JSON.stringify({ path: storePath, inputs: {} });

/** One host's system built on the host itself from a flake in its store (no out link: the
 * activation that follows roots it). */
export const buildFromStoreArgv = (nix: string, flakeSource: string, host: string) => [
  nix,
  ...EXPERIMENTAL,
  'build',
  '--json',
  '--no-link',
  toplevelAttr(`path:${flakeSource}`, host),
];

/** Copies a closure to an ssh target; with substitute, the target first tries its own binary
 * caches for each path. */
export const copyToArgv = (nix: string, target: string, storePath: string, substitute: boolean) => [
  nix,
  ...EXPERIMENTAL,
  'copy',
  ...(substitute ? ['--substitute-on-destination'] : []),
  '--to',
  `ssh://${target}`,
  storePath,
];
