// Small file operations on a host with the programs every Linux host has (coreutils, tar,
// sh). Where a folder or a redirect is needed, a fixed script gets the paths as arguments:
// no path is ever spliced into a script.
/** Canonical paths, one line each, also for missing ones (printed as given), so lines stay aligned. */
export const readlinkArgv = (paths: readonly string[]) => ['readlink', '-m', '--', ...paths];
export const existsArgv = (p: string) => ['test', '-e', p];
export const isExecutableArgv = (p: string) => ['test', '-x', p];
/** Whether a program is on the PATH commands run with. */
export const commandExistsArgv = (name: string) => ['sh', '-c', 'command -v -- "$1" >/dev/null', 'sh', name];
export const mkdirArgv = (p: string) => ['mkdir', '-p', '--', p];
export const renameArgv = (from: string, to: string) => ['mv', '-T', '--', from, to];
export const removeArgv = (...paths: string[]) => ['rm', '-rf', '--', ...paths];
export const symlinkArgv = (target: string, link: string) => ['ln', '-sfn', '--', target, link];
export const syncArgv = (...paths: string[]) => ['sync', '--', ...paths];
export const dfArgv = (paths: readonly string[]) => ['df', '-P', '-k', '--', ...paths];
export const meminfoArgv = () => ['cat', '/proc/meminfo'];
export const listDirArgv = (dir: string) => ['ls', '-1A', '--', dir];

/** A program's canonical path on the host: on NixOS a store path, which stays valid when
 * /run/current-system moves to another system. */
export const programPathArgv = (name: string) => ['sh', '-c', 'p=$(command -v -- "$1") && readlink -f -- "$p"', 'sh', name];

/** Runs argv inside a folder (over ssh there is no cwd). */
export const inDirArgv = (dir: string, argv: readonly string[]) => ['sh', '-c', 'cd -- "$1" && shift && exec "$@"', 'sh', dir, ...argv];

/** Writes stdin to a file: to a temporary name, flushed, then renamed over the target. */
export const writeFileArgv = (file: string) => [
  'sh', '-c', 'umask 077 && cat > "$1.tmp" && sync -- "$1.tmp" && mv -f -- "$1.tmp" "$1"', 'sh', file,
];

/** Prints each file as NAME NUL CONTENT NUL, an empty content for a missing file. */
export const readFilesArgv = (files: readonly string[]) => [
  'sh', '-c', 'for f do printf "%s\\0" "$f"; cat -- "$f" 2>/dev/null; printf "\\0"; done', 'sh', ...files,
];

export function parseReadFiles(output: string): Map<string, string> {
  const parts = output.split('\0');
  const files = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) files.set(parts[i] as string, parts[i + 1] as string);
  return files;
}

export interface DiskUsage {
  path: string;
  mount: string;
  totalBytes: number;
  availableBytes: number;
  usedPercent: number;
}

export function parseDf(output: string, paths: readonly string[]): DiskUsage[] {
  const rows = output.trim().split('\n').slice(1);
  return rows.map((row, i) => {
    const cols = row.trim().split(/\s+/);
    const total = Number(cols[1]) * 1024;
    const available = Number(cols[3]) * 1024;
    return {
      path: paths[i] ?? cols[5] ?? '?',
      mount: cols[5] ?? '?',
      totalBytes: total,
      availableBytes: available,
      usedPercent: Number((cols[4] ?? '0').replace('%', '')),
    };
  });
}

export interface Memory {
  totalBytes: number;
  availableBytes: number;
}

export function parseMeminfo(output: string): Memory {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(output)?.[1] ?? 0) * 1024;
  return { totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable') };
}
