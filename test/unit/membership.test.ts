// Who sees whom: hosts checked together must each list the others' current node ids.
import { describe, expect, it } from 'vitest';
import { membershipProblems, SeenNodes, type Member } from '../../src/health/membership.js';

// exo's ids: os.urandom(16).hex().lstrip("0")
const id = (n: number) => `${n.toString(16)}f3e9a0c41b7d25e8${n.toString(16).padStart(6, '0')}a1`;
const member = (host: string, own: number | null, sees: number[] | null): Member => ({
  host,
  nodeId: own === null ? null : id(own),
  seen: sees === null ? null : new SeenNodes(sees.map(id)),
});

describe('SeenNodes', () => {
  it('answers whether an id is listed, for every listed id and for none other', () => {
    const listed = Array.from({ length: 500 }, (_, i) => id(i * 2));
    const seen = new SeenNodes(listed);
    expect(seen.count).toBe(500);
    expect(listed.every((x) => seen.has(x))).toBe(true);
    expect(Array.from({ length: 500 }, (_, i) => id(i * 2 + 1)).some((x) => seen.has(x))).toBe(
      false,
    );
  });

  it("is left out of JSON: a record lists a few ids, not a cluster's", () => {
    expect(JSON.stringify({ nodes: ['a'], seenNodes: new SeenNodes(['a', 'b']) })).toBe(
      '{"nodes":["a"]}',
    );
  });
});

describe('membershipProblems', () => {
  it("finds nothing when every host lists every other's current id, stale and unmanaged ids besides", () => {
    const problems = membershipProblems([
      member('h1', 1, [1, 2, 3, 90]),
      member('h2', 2, [1, 2, 3, 91, 92]),
      member('h3', 3, [1, 2, 3]),
    ]);
    expect(problems.size).toBe(0);
  });

  it("names the host that does not see a peer's current id, even when its count is met by a stale id", () => {
    // h2 restarted: its new id is 12; h1 still lists its old one (2) and so counts 3 nodes
    const problems = membershipProblems([
      member('h1', 1, [1, 2, 3]),
      member('h2', 12, [1, 12, 3]),
      member('h3', 3, [1, 12, 3]),
    ]);
    expect([...problems.keys()]).toEqual(['h1']);
    expect(problems.get('h1')).toEqual([
      `h1 does not see h2 (node ${id(12).slice(0, 4)}…${id(12).slice(-4)}); it sees 3 id(s), 1 not of a checked host`,
    ]);
  });

  it('charges a peer that is not judged to the judged host it does not see, and skips pairs of peers', () => {
    const members = [
      member('new1', 1, [1, 2, 3]),
      member('old2', 2, [2, 3]),
      member('old3', 3, [3]),
    ];
    const problems = membershipProblems(members, (h) => h === 'new1');
    expect([...problems.keys()]).toEqual(['new1']);
    expect(problems.get('new1')).toEqual([
      expect.stringMatching(/^old2 does not see new1 \(node /),
      expect.stringMatching(/^old3 does not see new1 \(node /),
    ]);
  });

  it('skips hosts that did not answer (their probes failed already)', () => {
    expect(
      membershipProblems([
        member('h1', 1, [1]),
        member('h2', null, null),
        member('h3', 3, null),
      ]).get('h1'),
    ).toEqual([expect.stringMatching(/^h1 does not see h3 /)]);
  });

  it('says so when two hosts answer as the same node (their api points at one exo)', () => {
    const problems = membershipProblems([member('h1', 1, [1]), member('h2', 1, [1])]);
    expect(problems.get('h2')).toEqual([
      expect.stringContaining('h1 and h2 answer as the same exo node'),
    ]);
  });
});
