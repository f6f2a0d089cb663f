// exo's failure strings in the journal. A pattern is a plain substring, or /a regex/flags.
import type { JournalLine } from '../programs/journalctl.js';

export interface JournalMatch {
  at: string;
  pattern: string;
  message: string;
}

type Matcher = (message: string) => boolean;

function compilePattern(pattern: string): Matcher {
  const regex = /^\/(.+)\/([a-z]*)$/.exec(pattern);
  if (regex) {
    const compiled = new RegExp(regex[1] as string, regex[2]);
    return (m) => compiled.test(m);
  }
  return (m) => m.includes(pattern);
}

export function findFailures(
  lines: readonly JournalLine[],
  patterns: readonly string[],
  limit = 20,
): JournalMatch[] {
  const matchers = patterns.map((p) => [p, compilePattern(p)] as const);
  const matches: JournalMatch[] = [];
  for (const line of lines) {
    const hit = matchers.find(([, match]) => match(line.message));
    if (hit)
      matches.push({
        at: new Date(line.at).toISOString(),
        pattern: hit[0],
        message: line.message.slice(0, 500),
      });
    if (matches.length >= limit) break;
  }
  return matches;
}
