// Several reads on one host in one ssh session: the commands run side by side on the host and
// their outputs come back framed by a marker line. A check makes about ten small reads per
// host; as ten sessions they cost ten ssh processes here and ten shells there, which on a
// busy machine (or a fleet) is most of a check's time (bench/: check latency).
import { open } from 'node:fs/promises';
import type { ProcessResult } from './process.js';
import { shellQuote } from './shell-quote.js';

/** Run by `sh -c SCRIPT exo-deploy-batch MARKER CMD…`: each CMD is one command line quoted by
 * shellQuote, as ssh would carry it alone. Outputs go to a private temporary folder, then out
 * in order, each as soon as it and those before it have ended: `MARKER o I`, stdout,
 * `MARKER e I`, stderr, `MARKER r I STATUS`. */
const BATCH_SCRIPT = [
  'm=$1; shift; pids=',
  'd=$(mktemp -d) || exit 125',
  // Ended early (a timeout, Ctrl-C, the session cut): the commands still running end too.
  'trap \'kill $pids 2>/dev/null; rm -rf "$d"\' EXIT',
  "trap 'exit 143' HUP INT TERM",
  'i=0',
  'for c do i=$((i+1)); (eval "exec $c") >"$d/$i.o" 2>"$d/$i.e" </dev/null & pids="$pids $!"; done',
  'i=0',
  'for p in $pids; do i=$((i+1)); wait "$p"; r=$?; printf \'%s o %d\\n\' "$m" "$i"; cat "$d/$i.o"; printf \'\\n%s e %d\\n\' "$m" "$i"; cat "$d/$i.e"; printf \'\\n%s r %d %d\\n\' "$m" "$i" "$r"; done',
].join('\n');

const BATCH_NAME = 'exo-deploy-batch';

/** Unguessable, so that no output (a journal line is anyone's to write) can forge a frame.
 * From /dev/urandom (exo-deploy runs on Linux): loading node:crypto for 8 bytes costs the
 * module's health timer more CPU than the rest of a batch. */
export async function newMarker(): Promise<string> {
  const urandom = await open('/dev/urandom', 'r');
  try {
    const { buffer } = await urandom.read(Buffer.alloc(8), 0, 8, null);
    return `${BATCH_NAME}-${buffer.toString('hex')}`;
  } finally {
    await urandom.close();
  }
}

export function batchArgv(commands: readonly (readonly string[])[], marker: string): string[] {
  return [
    'sh',
    '-c',
    BATCH_SCRIPT,
    BATCH_NAME,
    marker,
    ...commands.map((argv) => argv.map(shellQuote).join(' ')),
  ];
}

/** The commands of a batch argv (each still one quoted command line), or null. */
export function batchCommands(
  argv: readonly string[],
): { marker: string; commands: string[] } | null {
  if (argv[0] !== 'sh' || argv[2] !== BATCH_SCRIPT || argv[3] !== BATCH_NAME || !argv[4])
    return null;
  return { marker: argv[4], commands: argv.slice(5) };
}

/** What the batch script prints for these results (the simulated fleets answer with it). */
export function formatBatchOutput(
  marker: string,
  results: readonly { exitCode: number; stdout: string; stderr: string }[],
): string {
  return results
    .map(
      (r, k) =>
        `${marker} o ${k + 1}\n${r.stdout}\n${marker} e ${k + 1}\n${r.stderr}\n${marker} r ${k + 1} ${r.exitCode}\n`,
    )
    .join('');
}

/** Each command's result. A command the output does not finish (the session timed out or
 * was cut) gets the whole session's exit status, and its stderr. */
export function parseBatchOutput(
  whole: ProcessResult,
  marker: string,
  argvs: readonly (readonly string[])[],
): ProcessResult[] {
  const out = whole.stdout;
  const parts = argvs.map(() => ({ stdout: '', stderr: '', exitCode: null as number | null }));
  const head = `${marker} `;
  let open: { kind: string; index: number; from: number } | null = null;
  for (let at = out.indexOf(head); at >= 0; at = out.indexOf(head, at + 1)) {
    if (at > 0 && out[at - 1] !== '\n') continue;
    const eol = out.indexOf('\n', at);
    if (eol < 0) break;
    const [kind = '', index = '0', status] = out.slice(at + head.length, eol).split(' ');
    // The script prints a newline before an `e` and an `r` line: it is not the output's.
    const part = open && parts[open.index - 1];
    if (open && part && open.kind === 'o') part.stdout = out.slice(open.from, at - 1);
    if (open && part && open.kind === 'e') part.stderr = out.slice(open.from, at - 1);
    open = { kind, index: Number(index), from: eol + 1 };
    if (kind === 'r' && parts[open.index - 1])
      (parts[open.index - 1] as { exitCode: number | null }).exitCode = Number(status);
  }
  // Cut short inside a command's output: what it printed so far.
  const last = open && parts[open.index - 1];
  if (open && last && open.kind === 'o') last.stdout = out.slice(open.from);
  if (open && last && open.kind === 'e') last.stderr = out.slice(open.from);
  return parts.map((p, k) => ({
    argv: argvs[k] ?? [],
    exitCode: p.exitCode ?? (whole.exitCode === 0 ? 125 : whole.exitCode),
    stdout: p.stdout,
    stderr: p.exitCode === null ? `${p.stderr}${whole.stderr}` : p.stderr,
    durationMs: whole.durationMs,
    timedOut: p.exitCode === null && whole.timedOut,
  }));
}
