// What a deploy did, step by step: the facts the report (Markdown and JSON) is made from. The
// Recorder is their only writer; everything else reads them through read-only types.
import type { HostCheck } from '../health/check.js';
import type { Log } from '../output/log.js';
import { lastLines } from '../run/executor.js';
import type { GateResult } from '../steps/health-gate.js';
import type { PreviousSystem } from '../system/generations.js';
import type { RevertTimer } from '../system/revert-timer.js';
import type { DeployJournal } from './journal.js';

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
/** The run changed the host: it ran the new system at some point. */
export const changedByRun = (phase: HostPhase) =>
  phase !== 'pending' && phase !== 'built' && phase !== 'unchanged';
/** What `rollback --last` and `status` treat as not back where it was: also a failed rollback. */
export const leftOnNewSystem = (phase: HostPhase) =>
  onNewSystem(phase) || phase === 'rollback-failed';

/** A host's revert timer: armed (it puts the host back unless confirmed), stopped, or fired
 * (the host put itself back). */
export type RevertTimerState = 'armed' | 'stopped' | 'fired';

/** A host's revert timer as recorded: its unit and files on the host (rollback --last stops
 * one left armed), and whether it is a reboot guard (armed by the host at its next boot). */
export interface RevertTimerRecord extends RevertTimer {
  state: RevertTimerState;
  rebootGuard: boolean;
}

/** partly-rolled-back: with rollback_scope "failed", earlier batches keep the new system.
 * window-closed: the reboot window closed before a batch that reboots; the batches before it
 * keep the new system, the rest were not touched. */
export type DeployOutcome =
  | 'success'
  | 'no-change'
  | 'failed'
  | 'rolled-back'
  | 'partly-rolled-back'
  | 'rollback-failed'
  | 'window-closed'
  | 'interrupted';

interface HostFacts {
  host: string;
  /** exo: the identity of the exo each system carries (release.json), or 'unknown'. */
  before: PreviousSystem & { exo: string; healthy: boolean | null };
  built: { systemPath: string | null; exo: string | null };
  backupId: string | null;
  diff: string[];
  /** Why the new system needs a reboot to run as built ([]: it does not); null: not known (the
   * host does not change, or the system it booted is unknown). */
  rebootReasons: string[] | null;
  /** The host takes the boot path: the new system its boot default, a reboot, then the gate. */
  reboots: boolean;
  phase: HostPhase;
  /** Whether `switch` restarted exo after the gate (it must not). */
  switchRestartedExo: boolean | null;
  revertTimer: RevertTimerRecord | null;
  finalCheck: HostCheck | null;
  problems: string[];
}

interface StepFacts {
  step: string;
  host: string | null;
  startedAt: string;
  durationMs: number;
  ok: boolean;
  outputTail: string;
  error?: string;
}

interface DeployFacts {
  id: string;
  command: string;
  configFile: string | null;
  flake: string;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  outcome: DeployOutcome | null;
  exitCode: number | null;
  hosts: HostFacts[];
  steps: StepFacts[];
  gate: GateResult | null;
  /** The strategy and its batches, in order. */
  plan: { strategy: string; batches: string[][] } | null;
  error: string | null;
  reportFiles: { markdown: string; json: string } | null;
}

type ReadonlyDeep<T> = T extends (infer U)[]
  ? readonly ReadonlyDeep<U>[]
  : T extends object
    ? { readonly [K in keyof T]: ReadonlyDeep<T[K]> }
    : T;

export type HostRecord = ReadonlyDeep<HostFacts>;
export type DeployRecord = ReadonlyDeep<DeployFacts>;

export interface DeployIdentity {
  id: string;
  command: string;
  configFile: string | null;
  flake: string;
  hosts: readonly string[];
}

export class Recorder {
  private readonly facts: DeployFacts;
  private readonly byName = new Map<string, HostFacts>();
  private readonly startedAtMs: number;

  constructor(
    identity: DeployIdentity,
    private readonly log: Log,
    private readonly now: () => number,
    private readonly journal: DeployJournal | null,
  ) {
    this.startedAtMs = now();
    this.facts = {
      id: identity.id,
      command: identity.command,
      configFile: identity.configFile,
      flake: identity.flake,
      startedAt: new Date(this.startedAtMs).toISOString(),
      finishedAt: null,
      durationMs: null,
      outcome: null,
      exitCode: null,
      hosts: identity.hosts.map((host) => ({
        host,
        before: {
          running: null,
          profileGeneration: null,
          profilePath: null,
          exo: 'unknown',
          healthy: null,
        },
        built: { systemPath: null, exo: null },
        backupId: null,
        diff: [],
        rebootReasons: null,
        reboots: false,
        phase: 'pending',
        switchRestartedExo: null,
        revertTimer: null,
        finalCheck: null,
        problems: [],
      })),
      steps: [],
      gate: null,
      plan: null,
      error: null,
      reportFiles: null,
    };
    for (const h of this.facts.hosts) this.byName.set(h.host, h);
  }

  get record(): DeployRecord {
    return this.facts;
  }

  host(name: string): HostRecord {
    return this.entry(name);
  }

  private entry(name: string): HostFacts {
    const found = this.byName.get(name);
    if (!found) throw new Error(`no record for host ${name}`);
    return found;
  }

  /** The journal's first line: which deploy, on which hosts, by which process. */
  async begin(): Promise<void> {
    const { id, command, hosts } = this.facts;
    await this.journal?.append({
      type: 'run',
      id,
      command,
      hosts: hosts.map((h) => h.host),
      pid: process.pid,
    });
  }

  /** Every phase change (and the system a host ran before) is journaled before the deploy
   * goes on: it is what a later `status` or `rollback --last` reads after a crash. Built paths
   * and steps are notes: written in order, not waited for. */
  async setPhase(host: string, phase: HostPhase): Promise<void> {
    this.entry(host).phase = phase;
    await this.journal?.append({ type: 'phase', host, phase });
  }

  async setBefore(host: string, before: PreviousSystem, exo: string): Promise<void> {
    Object.assign(this.entry(host).before, before, { exo });
    await this.journal?.append({ type: 'before', host, before });
  }

  setHealthyBefore(host: string, healthy: boolean): void {
    this.entry(host).before.healthy = healthy;
  }

  /** Journaled before the deploy goes on: after a crash, `status` tells which hosts will put
   * themselves back. */
  async setRevertTimer(
    host: string,
    timer: Omit<RevertTimerRecord, 'state'>,
    state: RevertTimerState,
  ): Promise<void> {
    this.entry(host).revertTimer = { ...timer, state };
    await this.journal?.append({ type: 'revert-timer', host, ...timer, state });
  }

  setBuilt(host: string, systemPath: string): void {
    this.entry(host).built.systemPath = systemPath;
    this.journal?.note({ type: 'built', host, systemPath });
  }

  setBuiltExo(host: string, exo: string): void {
    this.entry(host).built.exo = exo;
  }

  setPlan(plan: { strategy: string; batches: string[][] }): void {
    this.facts.plan = plan;
  }

  setBackup(host: string, backupId: string): void {
    this.entry(host).backupId = backupId;
  }

  setDiff(host: string, diff: string[]): void {
    this.entry(host).diff = diff;
  }

  setRebootReasons(host: string, reasons: string[] | null): void {
    this.entry(host).rebootReasons = reasons;
  }

  setReboots(host: string): void {
    this.entry(host).reboots = true;
  }

  /** A batch's gate: its hosts' results replace any earlier result for the same hosts. */
  addGate(gate: GateResult): void {
    const earlier = this.facts.gate;
    this.facts.gate = earlier
      ? {
          ...gate,
          hosts: [
            ...earlier.hosts.filter((x) => !gate.hosts.some((y) => y.host === x.host)),
            ...gate.hosts,
          ],
        }
      : gate;
    for (const h of gate.hosts) this.addProblems(h.host, h.problems);
  }

  addProblems(host: string, problems: readonly string[]): void {
    this.entry(host).problems.push(...problems);
  }

  setFinalCheck(host: string, check: HostCheck | null): void {
    this.entry(host).finalCheck = check;
  }

  setSwitchRestartedExo(host: string, restarted: boolean | null): void {
    this.entry(host).switchRestartedExo = restarted;
  }

  setError(error: unknown): void {
    this.facts.error = error instanceof Error ? error.message : String(error);
  }

  finish(outcome: DeployOutcome, exitCode: number): void {
    this.facts.outcome = outcome;
    this.facts.exitCode = exitCode;
  }

  /** When it ended, and (once it has an outcome) the journal's last line. */
  async end(): Promise<void> {
    const endedAtMs = this.now();
    this.facts.finishedAt = new Date(endedAtMs).toISOString();
    this.facts.durationMs = endedAtMs - this.startedAtMs;
    const { outcome, exitCode } = this.facts;
    if (outcome !== null)
      await this.journal?.append({ type: 'end', outcome, exitCode: exitCode ?? 1 });
  }

  setReportFiles(files: { markdown: string; json: string }): void {
    this.facts.reportFiles = files;
  }

  /** Runs one step, records its duration, outcome and output, and shows progress on stderr. */
  async step<T>(
    step: string,
    host: string | null,
    fn: () => Promise<T>,
    output: (value: T) => string = () => '',
  ): Promise<T> {
    const started = this.now();
    const startedAt = new Date(started).toISOString();
    this.log.step({ event: 'step-start', step, host });
    try {
      const value = await fn();
      const durationMs = this.now() - started;
      this.facts.steps.push({
        step,
        host,
        startedAt,
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
      const firstLine = message.split('\n')[0];
      this.facts.steps.push({
        step,
        host,
        startedAt,
        durationMs,
        ok: false,
        outputTail: '',
        error: message,
      });
      this.journal?.note({ type: 'step', step, host, ok: false, durationMs, error: firstLine });
      this.log.step({ event: 'step-end', step, host, ok: false, durationMs, error: firstLine });
      throw error;
    }
  }
}

/** Why a host that takes the boot path reboots, for people. */
export const whyReboot = (h: HostRecord) =>
  h.rebootReasons?.length ? h.rebootReasons.join('; ') : 'reboot = "always"';
