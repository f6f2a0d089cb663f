// journalctl: the unit's messages since a time, as JSON lines.
import { printable } from '../output/format.js';

export const MAX_JOURNAL_LINES = 20_000;

export const unitJournalArgv = (unit: string, sinceMs: number) => [
  'journalctl',
  '--unit',
  unit,
  '--since',
  `@${Math.floor(sinceMs / 1000)}`,
  '--output',
  'json',
  '--output-fields',
  'MESSAGE',
  '--all',
  '--no-pager',
  '--quiet',
  '--lines',
  String(MAX_JOURNAL_LINES),
];

export interface JournalLine {
  /** Epoch milliseconds. */
  at: number;
  message: string;
}

export function parseJournal(output: string): JournalLine[] {
  const lines: JournalLine[] = [];
  for (const raw of output.split('\n')) {
    if (!raw.startsWith('{')) continue;
    try {
      const entry = JSON.parse(raw) as { MESSAGE?: unknown; __REALTIME_TIMESTAMP?: string };
      const message = Array.isArray(entry.MESSAGE)
        ? Buffer.from(entry.MESSAGE as number[]).toString('utf8')
        : String(entry.MESSAGE ?? '');
      // exo colours its lines even under systemd (journald then stores them as byte arrays);
      // any escape sequence is dropped, not only colours: these lines reach terminals and reports
      lines.push({
        at: Math.floor(Number(entry.__REALTIME_TIMESTAMP ?? 0) / 1000),
        message: printable(message),
      });
    } catch {
      // a truncated last line (timeout) is skipped, not fatal
    }
  }
  return lines;
}
