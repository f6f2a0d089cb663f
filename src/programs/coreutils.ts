// Small file operations on a host with the programs every Linux host has (coreutils, tar,
// sh). Where a folder or a redirect is needed, a fixed script gets the paths as arguments:
// no path is ever spliced into a script.
/** Canonical paths, one line each, also for missing ones (printed as given), so lines stay aligned. */
export const readlinkArgv = (paths: readonly string[]) => ['readlink', '-m', '--', ...paths];
export const existsArgv = (p: string) => ['test', '-e', p];
export const isExecutableArgv = (p: string) => ['test', '-x', p];
/** Whether a program is on the PATH commands run with. */
export const commandExistsArgv = (name: string) => [
  'sh',
  '-c',
  'command -v -- "$1" >/dev/null',
  'sh',
  name,
];
export const mkdirArgv = (p: string) => ['mkdir', '-p', '--', p];
/** A folder only its owner may enter (the parents as mkdir -p makes them). */
export const privateDirArgv = (p: string) => ['mkdir', '-p', '-m', '0700', '--', p];
export const renameArgv = (from: string, to: string) => ['mv', '-T', '--', from, to];
export const removeArgv = (...paths: string[]) => ['rm', '-rf', '--', ...paths];
export const symlinkArgv = (target: string, link: string) => ['ln', '-sfn', '--', target, link];
export const syncArgv = (...paths: string[]) => ['sync', '--', ...paths];
export const dfArgv = (paths: readonly string[]) => ['df', '-P', '-k', '--', ...paths];
export const meminfoArgv = () => ['cat', '/proc/meminfo'];
/** The kernel's id of this boot: a new one at every boot. */
export const bootIdArgv = () => ['cat', '/proc/sys/kernel/random/boot_id'];
/** A folder's size in KiB, on its own filesystem, leaving out names matching `excludes`. */
export const duArgv = (dir: string, excludes: readonly string[]) => [
  'du',
  '-s',
  '-k',
  '-x',
  ...excludes.map((e) => `--exclude=${e}`),
  '--',
  dir,
];
export const parseDuBytes = (output: string) => Number(output.trim().split(/\s+/)[0]) * 1024;
/** The inverse of parseDuBytes. */
export const formatDu = (bytes: number, dir: string) => `${Math.ceil(bytes / 1024)}\t${dir}\n`;
export const listDirArgv = (dir: string) => ['ls', '-1A', '--', dir];

/** A program's path on the host through store paths only (valid when /run/current-system
 * moves to another system), under its own name: links are followed while they keep the name,
 * since a multi-call program (nix-env, a link to nix) acts on the name it is run as. */
export const programPathArgv = (name: string) => [
  'sh',
  '-c',
  [
    'p=$(command -v -- "$1") || exit 1',
    'name=$(basename -- "$p")',
    'while [ -L "$p" ]; do',
    '  t=$(readlink -- "$p") || break',
    '  case $t in /*) ;; *) t=$(dirname -- "$p")/$t ;; esac',
    '  [ "$(basename -- "$t")" = "$name" ] || break',
    '  p=$t',
    'done',
    'd=$(cd -P -- "$(dirname -- "$p")" && pwd -P) && printf "%s/%s\\n" "$d" "$name"',
  ].join('\n'),
  'sh',
  name,
];

/** Runs argv inside a folder (over ssh there is no cwd). */
export const inDirArgv = (dir: string, argv: readonly string[]) => [
  'sh',
  '-c',
  'cd -- "$1" && shift && exec "$@"',
  'sh',
  dir,
  ...argv,
];

/** Exit status of the exclusive writes below when the file is someone else's. */
export const FILE_TAKEN_EXIT = 17;

/** Writes stdin to file only if there is none (linked in place from temp: the file never
 * exists without its content); otherwise prints the file there is and exits FILE_TAKEN_EXIT. */
export const createExclusiveArgv = (file: string, temp: string) => [
  'sh',
  '-c',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
  'mkdir -p -- "${1%/*}" && umask 022 && cat > "$2" && { ln -- "$2" "$1" 2>/dev/null; code=$?; rm -f -- "$2"; [ "$code" = 0 ] || { cat -- "$1"; exit 17; }; }',
  'sh',
  file,
  temp,
];

/** Replaces file with stdin only if it still holds `expected` (its content without the last
 * line break): it is moved aside (of several writers, one moves it), compared, then the new one
 * linked in place; exits FILE_TAKEN_EXIT when it held something else (which is put back) or was
 * taken meanwhile. */
export const replaceIfArgv = (file: string, expected: string, temp: string, aside: string) => [
  'sh',
  '-c',
  'mv -- "$1" "$4" 2>/dev/null || exit 17; if [ "$(cat -- "$4")" != "$2" ]; then ln -- "$4" "$1" 2>/dev/null; rm -f -- "$4"; exit 17; fi; rm -f -- "$4"; umask 022 && cat > "$3" && { ln -- "$3" "$1" 2>/dev/null; code=$?; rm -f -- "$3"; [ "$code" = 0 ] || exit 17; }',
  'sh',
  file,
  expected,
  temp,
  aside,
];

/** Removes file only if it holds `expected` (its content without the last line break). */
export const removeIfArgv = (file: string, expected: string) => [
  'sh',
  '-c',
  'if [ "$(cat -- "$1" 2>/dev/null)" = "$2" ]; then rm -f -- "$1"; fi',
  'sh',
  file,
  expected,
];

/** Writes stdin to a file: to a temporary name, flushed, then renamed over the target. */
export const writeFileArgv = (file: string) => [
  'sh',
  '-c',
  'umask 077 && cat > "$1.tmp" && sync -- "$1.tmp" && mv -f -- "$1.tmp" "$1"',
  'sh',
  file,
];

/** Prints each file as NAME NUL CONTENT NUL, an empty content for a missing file. */
export const readFilesArgv = (files: readonly string[]) => [
  'sh',
  '-c',
  'for f do printf "%s\\0" "$f"; cat -- "$f" 2>/dev/null; printf "\\0"; done',
  'sh',
  ...files,
];

export function parseReadFiles(output: string): Map<string, string> {
  const parts = output.split('\0');
  const files = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2)
    files.set(parts[i] as string, parts[i + 1] as string);
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
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(output)?.[1] ?? 0) * 1024;
  return { totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable') };
}
