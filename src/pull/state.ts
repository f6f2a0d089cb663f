// What a host in pull mode remembers between two runs, in one file written whole: the commit
// it moved to last, its last attempt, how often it was rolled back, and the commits that
// failed (bad) or were held back here, which it does not try again until the branch moves on.
// A file that cannot be read is never taken for a first run: that would forget the commit the
// host is at, and with it the guard against going back.
import { readFile } from 'node:fs/promises';
import * as z from 'zod';
import { writeFileAtomic } from '../fs/atomic.js';

/** How many bad and held commits are kept (the newest). */
const KEPT = 50;

const Mark = z.object({ revision: z.string(), at: z.string(), reason: z.string() });
export type Mark = z.output<typeof Mark>;

export const PullState = z.object({
  schemaVersion: z.literal(1),
  url: z.string(),
  branch: z.string(),
  /** The commit it moved to last, and the system built from it. */
  deployed: z
    .object({
      revision: z.string(),
      system: z.string(),
      at: z.string(),
      run: z.string().nullable(),
    })
    .nullable(),
  lastAttempt: z
    .object({
      at: z.string(),
      revision: z.string().nullable(),
      /** "deploying" (exitCode null) while the deploy runs: left so, the run was stopped. */
      outcome: z.string(),
      exitCode: z.number().int().nullable(),
      reason: z.string(),
    })
    .nullable(),
  lastSuccessAt: z.string().nullable(),
  rollbacks: z.number().int().nonnegative(),
  bad: z.array(Mark),
  held: z.array(Mark),
});
export type PullState = z.output<typeof PullState>;

export const emptyState = (url: string, branch: string): PullState => ({
  schemaVersion: 1,
  url,
  branch,
  deployed: null,
  lastAttempt: null,
  lastSuccessAt: null,
  rollbacks: 0,
  bad: [],
  held: [],
});

export type Loaded =
  | { state: PullState; first: false }
  | { state: null; first: true }
  | { state: null; first: false; unreadable: string };

/** The state, or a first run (no file), or why the file cannot be used. */
export async function loadState(file: string): Promise<Loaded> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: null, first: true };
    return { state: null, first: false, unreadable: (error as Error).message };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return {
      state: null,
      first: false,
      unreadable: `${file} is not JSON: ${(error as Error).message}`,
    };
  }
  const parsed = PullState.safeParse(json);
  if (!parsed.success)
    return {
      state: null,
      first: false,
      unreadable: `${file} is not a pull state this exo-deploy reads: ${parsed.error.issues
        .slice(0, 2)
        .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
        .join('; ')}`,
    };
  return { state: parsed.data, first: false };
}

/** Root's alone: it names what the host runs and where it pulls from. */
export const saveState = (file: string, state: PullState) =>
  writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, 0o600);

/** The state with the commit marked bad (failed here) or held (needs what pull mode does not
 * do); the newest KEPT of each are kept. */
export function mark(
  state: PullState,
  list: 'bad' | 'held',
  revision: string,
  at: string,
  reason: string,
): PullState {
  const kept = state[list].filter((m) => m.revision !== revision);
  return { ...state, [list]: [...kept, { revision, at, reason }].slice(-KEPT) };
}

export const revisions = (marks: readonly Mark[]) => new Set(marks.map((m) => m.revision));
