// Whether a host in pull mode moves to its branch's tip: never to a commit older than the one it
// is at, nor one beside it (a force-push cannot downgrade a host), never again to one that
// failed here until the branch moves on, and, where signatures are required, only to a commit
// an allowed signer signed. Decided from what the mirror told; nothing is changed here.
import type { Ancestry, SignatureCheck } from './mirror.js';

export interface PullFacts {
  /** The branch's tip, fetched. */
  tip: string;
  /** The commit the host is at (the one it last moved to, or its running system's); null: none
   * known, the first pull. */
  at: string | null;
  /** How the tip stands to `at`; null when `at` is. */
  ancestry: Ancestry | null;
  /** Whether the host runs `at` as built from it: false when it runs a build of it with changes
   * (a dirty tree), or another system since the last pull. Such a host is moved to the tip
   * even when the tip is `at`. */
  runsAt: boolean;
  /** Commits that failed here (their gate, or their build too often), and commits held back
   * (they need what pull mode does not do, such as a reboot). */
  bad: ReadonlySet<string>;
  held: ReadonlySet<string>;
  /** The tip's signature, where signatures are required; null: they are not. */
  signature: SignatureCheck | null;
}

export type Verdict =
  | { move: true }
  | {
      move: false;
      outcome: 'current' | 'skipped-bad' | 'skipped-held';
      exitCode: 0;
      reason: string;
    }
  | {
      move: false;
      outcome: 'behind' | 'diverged' | 'unknown-commit' | 'untrusted';
      exitCode: 2;
      reason: string;
    };

export function decide(f: PullFacts): Verdict {
  const tip = f.tip.slice(0, 12);
  const at = f.at?.slice(0, 12) ?? '';
  switch (f.ancestry) {
    case 'same':
      if (!f.runsAt) break;
      return { move: false, outcome: 'current', exitCode: 0, reason: `at ${tip}, the tip` };
    case 'behind':
      return refuse(
        'behind',
        `the branch went back: its tip ${tip} is older than ${at}, which this host is at (a reset or a force-push); it stays`,
      );
    case 'diverged':
      return refuse(
        'diverged',
        `the branch was rewritten: its tip ${tip} does not descend from ${at}, which this host is at (a force-push); it stays`,
      );
    case 'unknown':
      return refuse(
        'unknown-commit',
        `${at}, which this host is at, is not in the branch's history: it stays until a person deploys it onto the branch`,
      );
    default:
      break;
  }
  if (f.bad.has(f.tip))
    return {
      move: false,
      outcome: 'skipped-bad',
      exitCode: 0,
      reason: `${tip} failed here before: not tried again until the branch moves on`,
    };
  if (f.held.has(f.tip))
    return {
      move: false,
      outcome: 'skipped-held',
      exitCode: 0,
      reason: `${tip} was held back before: not tried again until the branch moves on`,
    };
  if (f.signature && !f.signature.trusted)
    return refuse('untrusted', `${f.signature.why}: signed commits are required; it stays`);
  return { move: true };
}

const refuse = (
  outcome: 'behind' | 'diverged' | 'unknown-commit' | 'untrusted',
  reason: string,
): Verdict => ({ move: false, outcome, exitCode: 2, reason });
