// The journal of a deploy, on disk: one JSON event per line, each written and fsynced before the
// deploy goes on, so that after a crash, a kill or Ctrl-C, what each host went through (and the
// system it ran before) can be read back: `status` and `rollback --last` do.
import { mkdir, open, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../fs/atomic.js';
import type { PreviousSystem } from '../system/generations.js';
import { TIMESTAMP_ID } from '../time-id.js';
import { changedByRun, leftOnNewSystem, type HostPhase, type RevertTimerRecord } from './record.js';

export type JournalEvent =
  | { type: 'run'; id: string; command: string; hosts: string[]; pid: number }
  | { type: 'before'; host: string; before: PreviousSystem }
  | { type: 'built'; host: string; systemPath: string }
  | { type: 'phase'; host: string; phase: HostPhase }
  | {
      type: 'step';
      step: string;
      host: string | null;
      ok: boolean;
      durationMs: number;
      error?: string;
    }
  | ({ type: 'revert-timer'; host: string } & RevertTimerRecord)
  | { type: 'end'; outcome: string; exitCode: number };

type Stamped = JournalEvent & { at: string };
type JournalledStep = Extract<JournalEvent, { type: 'step' }> & { at: string };

const runsDir = (stateDir: string) => path.join(stateDir, 'runs');
export const journalFile = (stateDir: string, id: string) =>
  path.join(runsDir(stateDir), id, 'journal.jsonl');

const NOTE_DELAY_MS = 100;
const line = (event: JournalEvent) =>
  `${JSON.stringify({ at: new Date().toISOString(), ...event })}\n`;

export class DeployJournal {
  private pending: { line: string; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private flushing = false;
  private dirMade = false;
  private noteTimer: NodeJS.Timeout | undefined;
  constructor(readonly file: string) {}

  /** Appends one event; resolves once it is on disk. Appends are kept in order. Events that
   * arrive while a write is under way go to disk together in the next one (one fsync for
   * many hosts' events: a 1,000-host fleet makes thousands). */
  append(event: JournalEvent): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue(event, resolve, reject));
  }

  /** Appends an event that nothing after it depends on (a step's duration, a built path):
   * written in order with the others, but the deploy does not wait for its fsync. The next
   * append() is on disk only after it, and a write error surfaces there. */
  note(event: JournalEvent): void {
    this.pending.push({ line: line(event), resolve: () => {}, reject: () => {} });
    // A note waits up to NOTE_DELAY_MS for company, so that a stream of notes is a few writes.
    this.noteTimer ??= setTimeout(() => {
      this.noteTimer = undefined;
      if (!this.flushing) void this.flush();
    }, NOTE_DELAY_MS).unref();
  }

  private enqueue(
    event: JournalEvent,
    resolve: () => void,
    reject: (error: unknown) => void,
  ): void {
    this.pending.push({ line: line(event), resolve, reject });
    if (!this.flushing) void this.flush();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      try {
        await this.write(batch.map((p) => p.line).join(''));
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = false;
  }

  private async write(text: string): Promise<void> {
    const dir = path.dirname(this.file);
    if (!this.dirMade) await mkdir(dir, { recursive: true });
    const handle = await open(this.file, 'a+', 0o644); // read too: its last byte
    try {
      const { size } = await handle.stat();
      // a line torn by a crash: the next event starts a line of its own
      const torn =
        size > 0 && (await handle.read(Buffer.alloc(1), 0, 1, size - 1)).buffer[0] !== 0x0a;
      try {
        // writeFile writes it all or fails (write() may write part of it, on a full disk)
        await handle.writeFile(torn ? `\n${text}` : text);
        await handle.sync();
      } catch (error) {
        // nothing half-written stays for the next event to be glued to
        await handle.truncate(size).catch(() => undefined);
        throw error;
      }
    } finally {
      await handle.close();
    }
    if (!this.dirMade) {
      // the new file's (and folder's) names on disk too, not only their contents
      await syncDir(dir);
      await syncDir(path.dirname(dir));
      this.dirMade = true;
    }
  }
}

interface JournalledHost {
  before: PreviousSystem | null;
  built: string | null;
  phase: HostPhase;
  revertTimer: RevertTimerRecord | null;
}

export interface JournalledDeploy {
  id: string;
  command: string;
  pid: number | null;
  startedAt: string | null;
  /** null: the deploy never wrote its end (it is running, or it was killed). */
  outcome: string | null;
  exitCode: number | null;
  hosts: Map<string, JournalledHost>;
  lastStep: JournalledStep | null;
}

/** Folds a journal into each host's last known state. A torn last line (a crash while
 * writing) is ignored: every earlier line was fsynced whole. */
export function foldJournal(text: string): JournalledDeploy {
  const summary: JournalledDeploy = {
    id: '?',
    command: '?',
    pid: null,
    startedAt: null,
    outcome: null,
    exitCode: null,
    hosts: new Map(),
    lastStep: null,
  };
  const host = (name: string) => {
    let h = summary.hosts.get(name);
    if (!h) {
      h = { before: null, built: null, phase: 'pending', revertTimer: null };
      summary.hosts.set(name, h);
    }
    return h;
  };
  for (const line of text.split('\n')) {
    let e: Stamped;
    try {
      e = JSON.parse(line) as Stamped;
    } catch {
      continue;
    }
    switch (e.type) {
      case 'run':
        Object.assign(summary, { id: e.id, command: e.command, pid: e.pid, startedAt: e.at });
        e.hosts.forEach(host);
        break;
      case 'before':
        host(e.host).before = e.before;
        break;
      case 'built':
        host(e.host).built = e.systemPath;
        break;
      case 'phase':
        host(e.host).phase = e.phase;
        break;
      case 'revert-timer':
        // (all but unit and state: not in journals written before them)
        host(e.host).revertTimer = {
          unit: e.unit,
          state: e.state,
          scriptFile: e.scriptFile ?? '',
          statusFile: e.statusFile ?? '',
          files: e.files ?? [],
          rebootGuard: e.rebootGuard ?? false,
        };
        break;
      case 'step':
        summary.lastStep = e;
        break;
      case 'end':
        summary.outcome = e.outcome;
        summary.exitCode = e.exitCode;
        break;
    }
  }
  return summary;
}

/** Whether a deploy left hosts on a system no gate passed, or where a rollback failed: it did
 * not end (a kill), was interrupted, or its rollback failed. */
export function unresolvedHosts(r: JournalledDeploy): string[] {
  if (r.outcome !== null && r.outcome !== 'interrupted' && r.outcome !== 'rollback-failed')
    return [];
  return [...r.hosts].filter(([, h]) => leftOnNewSystem(h.phase)).map(([name]) => name);
}

/** The newest run that changed a host: later runs that changed none (no change, a refusal, a
 * failed build) do not hide it. */
export async function lastDeployThatChanged(stateDir: string): Promise<JournalledDeploy | null> {
  for await (const run of deploysNewestFirst(stateDir)) {
    if ([...run.hosts.values()].some((h) => changedByRun(h.phase))) return run;
  }
  return null;
}

async function* deploysNewestFirst(stateDir: string): AsyncGenerator<JournalledDeploy> {
  const ids = (await readdir(runsDir(stateDir)).catch(() => [] as string[]))
    .filter((n) => TIMESTAMP_ID.test(n))
    .sort()
    .reverse();
  for (const id of ids) {
    const text = await readFile(journalFile(stateDir, id), 'utf8').catch(() => null);
    if (text !== null) yield foldJournal(text);
  }
}

/** The newest run's journal under the state folder, if there is one. */
export async function latestDeploy(stateDir: string): Promise<JournalledDeploy | null> {
  for await (const run of deploysNewestFirst(stateDir)) return run;
  return null;
}
