// flake.lock: read it, and tell what moved between two versions of it.
import * as z from 'zod';

const Locked = z.looseObject({
  rev: z.string().optional(),
  lastModified: z.number().optional(),
  narHash: z.string().optional(),
  type: z.string().optional(),
  url: z.string().optional(),
  owner: z.string().optional(),
  repo: z.string().optional(),
  path: z.string().optional(),
});
const Node = z.looseObject({
  inputs: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  locked: Locked.optional(),
});
export const FlakeLock = z.looseObject({
  nodes: z.record(z.string(), Node),
  root: z.string(),
  version: z.number(),
});
export type FlakeLock = z.output<typeof FlakeLock>;

export interface InputLock {
  name: string;
  rev: string | null;
  date: string | null;
  narHash: string | null;
  source: string;
  /** Where it comes from, as locked: its fetcher (git, github, path, …), and a git input's URL
   * or a forge's owner and repository. */
  origin: { type: string | null; url: string | null; owner: string | null; repo: string | null };
}

export interface InputChange {
  name: string;
  before: InputLock | null;
  after: InputLock | null;
}

export function parseLock(text: string): FlakeLock {
  return FlakeLock.parse(JSON.parse(text));
}

/** The root's direct inputs (those that follow another input are left out: they move with it). */
export function rootInputs(lock: FlakeLock): InputLock[] {
  const root = lock.nodes[lock.root];
  return Object.entries(root?.inputs ?? {}).flatMap(([name, ref]) => {
    if (typeof ref !== 'string') return [];
    const locked = lock.nodes[ref]?.locked;
    return [
      {
        name,
        rev: locked?.rev ?? null,
        date: locked?.lastModified
          ? new Date(locked.lastModified * 1000).toISOString().slice(0, 10)
          : null,
        narHash: locked?.narHash ?? null,
        source: describeSource(locked),
        origin: {
          type: locked?.type ?? null,
          url: locked?.url ?? null,
          owner: locked?.owner ?? null,
          repo: locked?.repo ?? null,
        },
      },
    ];
  });
}

function describeSource(locked: z.output<typeof Locked> | undefined): string {
  if (!locked) return '?';
  if (locked.owner && locked.repo)
    return `${locked.type ?? 'github'}:${locked.owner}/${locked.repo}`;
  return locked.url ?? locked.path ?? locked.type ?? '?';
}

export function diffLocks(before: FlakeLock | null, after: FlakeLock): InputChange[] {
  const old = new Map((before ? rootInputs(before) : []).map((i) => [i.name, i]));
  const changes: InputChange[] = [];
  for (const input of rootInputs(after)) {
    const previous = old.get(input.name) ?? null;
    if (!previous || previous.narHash !== input.narHash || previous.rev !== input.rev)
      changes.push({ name: input.name, before: previous, after: input });
    old.delete(input.name);
  }
  for (const removed of old.values())
    changes.push({ name: removed.name, before: removed, after: null });
  return changes;
}

const shortRev = (i: InputLock | null) =>
  i
    ? `${i.rev?.slice(0, 7) ?? i.narHash?.slice(7, 19) ?? '?'}${i.date ? ` (${i.date})` : ''}`
    : 'none';
export const describeChange = (c: InputChange) =>
  `${c.name}: ${shortRev(c.before)} → ${shortRev(c.after)}`;
