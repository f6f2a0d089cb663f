// Pull mode's verdict: move to the tip, stay, or refuse; from what the mirror told.
import { describe, expect, it } from 'vitest';
import { decide, type PullFacts } from '../../src/pull/decide.js';

const at = 'a'.repeat(40);
const tip = 'b'.repeat(40);
const facts = (over: Partial<PullFacts> = {}): PullFacts => ({
  tip,
  at,
  ancestry: 'descends',
  runsAt: true,
  bad: new Set(),
  held: new Set(),
  signature: null,
  ...over,
});

describe('pull mode: whether a host moves to the tip', () => {
  it('moves to a descendant, and on its first pull (no commit known) to whatever the tip is', () => {
    expect(decide(facts())).toEqual({ move: true });
    expect(decide(facts({ at: null, ancestry: null }))).toEqual({ move: true });
  });

  it('never to an older commit, one beside it, or from one the branch does not have (exit 2)', () => {
    expect(decide(facts({ ancestry: 'behind' }))).toEqual({
      move: false,
      outcome: 'behind',
      exitCode: 2,
      reason: `the branch went back: its tip ${tip.slice(0, 12)} is older than ${at.slice(0, 12)}, which this host is at (a reset or a force-push); it stays`,
    });
    expect(decide(facts({ ancestry: 'diverged' }))).toMatchObject({
      move: false,
      outcome: 'diverged',
      exitCode: 2,
    });
    expect(decide(facts({ ancestry: 'unknown' }))).toMatchObject({
      move: false,
      outcome: 'unknown-commit',
      exitCode: 2,
    });
  });

  it('stays at the tip it is at, and does not try again a tip that failed or was held here (exit 0: said before)', () => {
    expect(decide(facts({ ancestry: 'same', tip: at }))).toMatchObject({
      move: false,
      outcome: 'current',
      exitCode: 0,
    });
    expect(decide(facts({ bad: new Set([tip]) }))).toMatchObject({
      move: false,
      outcome: 'skipped-bad',
      exitCode: 0,
    });
    expect(decide(facts({ held: new Set([tip]) }))).toMatchObject({
      move: false,
      outcome: 'skipped-held',
      exitCode: 0,
    });
    // a bad commit the branch left behind does not stop its descendant
    expect(decide(facts({ bad: new Set([at]) }))).toEqual({ move: true });
  });

  it('moves to the tip it is at when it does not run it as built (a dirty build of it, a system changed since)', () => {
    expect(decide(facts({ ancestry: 'same', tip: at, runsAt: false }))).toEqual({ move: true });
    // but not to one that failed here
    expect(
      decide(facts({ ancestry: 'same', tip: at, runsAt: false, bad: new Set([at]) })),
    ).toMatchObject({ move: false, outcome: 'skipped-bad' });
  });

  it('where signatures are required, moves only to a tip an allowed signer signed', () => {
    expect(decide(facts({ signature: { trusted: true, signer: 'ops' } }))).toEqual({ move: true });
    expect(
      decide(facts({ signature: { trusted: false, why: `${tip.slice(0, 12)} is not signed` } })),
    ).toEqual({
      move: false,
      outcome: 'untrusted',
      exitCode: 2,
      reason: `${tip.slice(0, 12)} is not signed: signed commits are required; it stays`,
    });
    // a branch that went back is refused for that, signed or not
    expect(
      decide(facts({ ancestry: 'behind', signature: { trusted: true, signer: 'ops' } })),
    ).toMatchObject({ outcome: 'behind' });
  });
});
