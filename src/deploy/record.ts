// What a deploy did, step by step: the facts the report (Markdown and JSON) is made from.
import type { HostCheck } from '../health/check.js';
import type { Log } from '../output/log.js';
import { lastLines } from '../run/executor.js';
import type { GateResult } from '../steps/health-gate.js';
import type { BeforeOnHost, RunJournal } from './journal.js';

export type HostPhase =
  | 'pending'
  | 'built'
  | 'activated'
  | 'permanent'
  | 'unchanged'
  | 'rolled-back'
  | 'rollback-failed';

/** The host may run the new system: activated (test) or made permanent (switch). */
export const onNewSystem = (phase: HostPhase) => phase === 'activated' || phase === 'permanent';
/** What `rollback --last` and `status` treat as not back where it was: also a failed rollback. */
export const leftOnNewSystem = (phase: HostPhase) =>
  onNewSystem(phase) || phase === 'rollback-failed';

/** A host's revert timer: armed (it puts the host back unless confirmed), stopped, or fired
 * (the host put itself back). */
export type RevertTimerState = 'armed' | 'stopped' | 'fired';

export interface HostRecord {
  host: string;
  /** exo: the identity of the exo each system carries (release.json), or 'unknown'. */
  before: {
    running: string | null;
    profileGeneration: number | null;
    profilePath: string | null;
    exo: string;
    healthy: boolean | null;
  };
  built: { systemPath: string | null; exo: string | null };
  backupId: string | null;
  diff: string[];
  phase: HostPhase;
  /** Whether `switch` restarted exo after the gate (it must not). */
  switchRestartedExo: boolean | null;
  revertTimer: { unit: string; state: RevertTimerState } | null;
  finalCheck: HostCheck | null;
  problems: string[];
}

interface StepRecord {
  step: string;
  host: string | null;
  startedAt: string;
  durationMs: number;
  ok: boolean;
  outputTail: string;
  error?: string;
}

/** partly-rolled-back: with rollback_scope "failed", earlier batches keep the new system. */
type RunOutcome =
  | 'success'
  | 'no-change'
  | 'failed'
  | 'rolled-back'
  | 'partly-rolled-back'
  | 'rollback-failed'
  | 'interrupted';

export interface RunRecord {
  id: string;
  command: string;
  configFile: string | null;
  flake: string;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  outcome: RunOutcome | null;
  exitCode: number | null;
  hosts: HostRecord[];
  steps: StepRecord[];
  gate: GateResult | null;
  /** The strategy and its batches, in order. */
  plan: { strategy: string; batches: string[][] } | null;
  error: string | null;
  reportFiles: { markdown: string; json: string } | null;
}

export class Recorder {
  private readonly byName = new Map<string, HostRecord>();
  constructor(
    readonly run: RunRecord,
    private readonly log: Log,
    private readonly now: () => number,
    readonly journal: RunJournal | null,
  ) {}

  host(name: string): HostRecord {
    let found = this.byName.get(name);
    if (!found) {
      found = this.run.hosts.find((h) => h.host === name);
      if (!found) throw new Error(`no record for host ${name}`);
      this.byName.set(name, found);
    }
    return found;
  }

  /** Every phase change (and the system a host ran before) is journaled before the run goes
   * on: it is what a later `status` or `rollback --last` reads after a crash. Built paths and
   * steps are notes: written in order, not waited for. */
  async setPhase(host: string, phase: HostPhase): Promise<void> {
    this.host(host).phase = phase;
    await this.journal?.append({ type: 'phase', host, phase });
  }

  async setBefore(host: string, before: BeforeOnHost): Promise<void> {
    Object.assign(this.host(host).before, before);
    await this.journal?.append({ type: 'before', host, before });
  }

  /** Journaled before the run goes on: after a crash, `status` tells which hosts will put
   * themselves back. */
  async setRevertTimer(host: string, unit: string, state: RevertTimerState): Promise<void> {
    this.host(host).revertTimer = { unit, state };
    await this.journal?.append({ type: 'revert-timer', host, unit, state });
  }

  async setBuilt(host: string, systemPath: string): Promise<void> {
    this.host(host).built.systemPath = systemPath;
    this.journal?.note({ type: 'built', host, systemPath });
  }

  /** Runs one step, records its duration, outcome and output, and shows progress on stderr. */
  async step<T>(
    step: string,
    host: string | null,
    fn: () => Promise<T>,
    output: (value: T) => string = () => '',
  ): Promise<T> {
    const started = this.now();
    this.log.step({ event: 'step-start', step, host });
    try {
      const value = await fn();
      const durationMs = this.now() - started;
      this.run.steps.push({
        step,
        host,
        startedAt: new Date(started).toISOString(),
        durationMs,
        ok: true,
        outputTail: lastLines(output(value), 15),
      });
      this.journal?.note({ type: 'step', step, host, ok: true, durationMs });
      this.log.step({ event: 'step-end', step, host, ok: true, durationMs });
      return value;
    } catch (error) {
      const durationMs = this.now() - started;
      const message = error instanceof Error ? error.message : String(error);
      this.run.steps.push({
        step,
        host,
        startedAt: new Date(started).toISOString(),
        durationMs,
        ok: false,
        outputTail: '',
        error: message,
      });
      this.journal?.note({
        type: 'step',
        step,
        host,
        ok: false,
        durationMs,
        error: message.split('\n')[0],
      });
      this.log.step({
        event: 'step-end',
        step,
        host,
        ok: false,
        durationMs,
        error: message.split('\n')[0],
      });
      throw error;
    }
  }
}
