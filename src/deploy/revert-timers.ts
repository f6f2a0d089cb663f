// The hosts' revert timers during one deploy (a dead man's switch): armed before a host's
// `test`, confirmed over a new ssh connection every third of the host's confirm_timeout while
// the deploy runs, and once more after the gate and after `switch`, then stopped. A host that
// the deployer cannot reach anew (the release stopped sshd, closed port 22, cut the network),
// or whose deployer died, puts itself back on the system it ran before when its timer fires.
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIRMS_PER_TIMEOUT, type Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExitCode, ExoDeployError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import {
  armRevertTimer,
  confirmRevertTimer,
  revertState,
  revertTimerUnit,
  stopRevertTimer,
  type Confirmation,
  type RevertTimer,
} from '../system/revert-timer.js';
import type { PreviousSystem } from '../system/generations.js';
import type { Recorder } from './record.js';

/** Between two tries of a confirmation that failed, and two looks at a revert under way. */
const RETRY_MS = 2000;
/** Beyond the activation timeout: a revert may wait for another activation's lock. */
const REVERT_SLACK_MS = 30_000;

interface Armed {
  host: Host;
  timer: RevertTimer;
  lastConfirmedAt: number;
  /** The next confirmation in the background. */
  next?: NodeJS.Timeout;
  /** No more confirmations: the timer was stopped, or the deployer gave up on the host. */
  done: boolean;
  /** The deployer gave up on the host: it is left to its timer. */
  lost: boolean;
}

export class RevertTimers {
  private readonly armed = new Map<string, Armed>();

  constructor(
    private readonly ctx: Context,
    private readonly rec: Recorder,
  ) {}

  /** Arms the host's timer, to put it back on `before`. A local host has no connection to
   * lose; a host that runs no system yet (its first deploy) nothing to go back to. */
  async arm(host: Host, before: PreviousSystem): Promise<void> {
    if (host.local || this.armed.has(host.name)) return;
    if (!before.running) {
      this.ctx.log.warn(
        `${host.name}: runs no NixOS system yet, so no revert timer: nothing to go back to`,
      );
      return;
    }
    const unit = revertTimerUnit(this.rec.record.id);
    const timer = await armRevertTimer(
      this.ctx.executor(host),
      unit,
      {
        running: before.running,
        profilePath: before.profilePath,
        profileGeneration: before.profileGeneration,
      },
      host.confirmTimeoutMs,
    );
    const entry: Armed = { host, timer, lastConfirmedAt: this.ctx.now(), done: false, lost: false };
    this.armed.set(host.name, entry);
    await this.rec.setRevertTimer(host.name, unit, 'armed');
    this.confirmLater(entry);
  }

  /** The confirmations in the background, every third of the host's confirm_timeout. A miss is
   * tried again at the next; the confirmations after the gate and after switch decide whether
   * the host is lost. */
  private confirmLater(entry: Armed): void {
    const period = entry.host.confirmTimeoutMs / CONFIRMS_PER_TIMEOUT;
    entry.next = setTimeout(async () => {
      if (entry.done || this.ctx.signal.aborted) return;
      const c = await confirmRevertTimer(this.ctx.executor(entry.host), entry.timer, period).catch(
        () => null,
      );
      if (c?.confirmed) entry.lastConfirmedAt = this.ctx.now();
      else if (c) this.ctx.log.verbose(`${entry.host.name}: revert timer not confirmed: ${c.why}`);
      if (!entry.done && !this.ctx.signal.aborted) this.confirmLater(entry);
    }, period);
  }

  private endConfirmations(entry: Armed): void {
    entry.done = true;
    clearTimeout(entry.next);
  }

  /**
   * Confirms over a new connection, tried again until the timer would fire. True: confirmed.
   * False: the host could not be reached anew in time, or its timer fired; it is left to its
   * timer from now on (no more confirmations).
   */
  async confirm(host: Host): Promise<Confirmation> {
    const entry = this.armed.get(host.name);
    if (!entry) return { confirmed: true };
    if (entry.lost)
      return { confirmed: false, fired: false, why: 'it was left to its revert timer' };
    const whys: string[] = [];
    for (;;) {
      const c = await confirmRevertTimer(
        this.ctx.executor(host),
        entry.timer,
        host.confirmTimeoutMs / CONFIRMS_PER_TIMEOUT,
      );
      if (c.confirmed) {
        entry.lastConfirmedAt = this.ctx.now();
        return c;
      }
      if (!whys.includes(c.why)) whys.push(c.why);
      if (c.fired || this.ctx.now() + RETRY_MS >= this.firesBy(entry)) {
        this.giveUp(entry);
        return { ...c, why: whys.join('; then ') };
      }
      await sleep(RETRY_MS, undefined, { signal: this.ctx.signal });
    }
  }

  /** Confirms, or fails the host: after the gate and after switch. */
  async mustConfirm(host: Host, after: string): Promise<void> {
    const c = await this.confirm(host);
    if (c.confirmed) return;
    const next = c.fired
      ? 'it is putting itself back on the system it ran before'
      : 'it puts itself back on the system it ran before when its revert timer fires';
    throw new ExoDeployError(
      `${host.name}: after ${after}, cannot be reached over a new ssh connection (${c.why}); ${next}`,
      ExitCode.failed,
      {
        host: host.name,
        hint: 'the release may stop sshd, close port 22 in the firewall, or break the network',
      },
    );
  }

  /** Whether the deployer gave up on the host: its own timer puts it back. */
  isLost(host: Host): boolean {
    return this.armed.get(host.name)?.lost ?? false;
  }

  /** Stops the host's timer: done with it (after switch, or after putting it back itself). */
  async stop(host: Host): Promise<void> {
    const entry = this.armed.get(host.name);
    if (!entry || entry.lost) return;
    this.endConfirmations(entry);
    this.armed.delete(host.name);
    const stopped = await stopRevertTimer(this.ctx.executor(host), entry.timer);
    await this.rec.setRevertTimer(host.name, entry.timer.unit, stopped ? 'stopped' : 'fired');
  }

  /**
   * Stops every timer the deployer still holds, also after Ctrl-C: a host is left armed only
   * when it was given up (cut off), since its timer is then the only way back.
   */
  async stopAll(): Promise<void> {
    await Promise.allSettled(
      [...this.armed.values()]
        .filter((e) => !e.lost)
        .map((e) =>
          this.stop(e.host).catch((error: unknown) =>
            this.ctx.log.warn(
              `${e.host.name}: ${error instanceof Error ? error.message : String(error)}: stop it with \`systemctl stop ${e.timer.unit}.timer\` on the host, or it puts the host back when it fires`,
            ),
          ),
        ),
    );
    for (const e of this.armed.values()) this.endConfirmations(e);
  }

  /**
   * For a host given up on: waits until its timer has fired and its revert is done, bounded by
   * when the timer fires plus an activation. Returns what the revert did.
   */
  async awaitRevert(host: Host): Promise<string> {
    const entry = this.armed.get(host.name);
    if (!entry?.lost) throw new Error(`${host.name}: not left to its revert timer`);
    const deadline = this.firesBy(entry) + this.ctx.config.timeouts.activate + REVERT_SLACK_MS;
    const exec = this.ctx.executor(host);
    let last = 'not reached yet';
    for (;;) {
      try {
        const state = await revertState(exec, entry.timer);
        if (state.done) {
          await stopRevertTimer(exec, entry.timer).catch(() => false); // its files
          await this.rec.setRevertTimer(host.name, entry.timer.unit, 'fired');
          if (state.exitCode === 0 || state.exitCode === 4)
            return `its revert timer ${entry.timer.unit} put it back (switch-to-configuration exit ${state.exitCode})`;
          throw new ExoDeployError(
            `${host.name}: its revert timer ${entry.timer.unit} fired, and the revert failed (exit ${state.exitCode})`,
            ExitCode.needsPerson,
            {
              host: host.name,
              hint: `see \`journalctl -u ${entry.timer.unit}.service\` on ${host.name}`,
            },
          );
        }
        last = state.running ? 'its revert is running' : 'its timer has not fired yet';
      } catch (error) {
        if (!(error instanceof ExoDeployError) || error.exitCode === ExitCode.needsPerson)
          throw error;
        last = error.message;
      }
      if (this.ctx.now() > deadline) {
        throw new ExoDeployError(
          `${host.name}: did not put itself back by ${new Date(deadline).toISOString()} (${last})`,
          ExitCode.needsPerson,
          {
            host: host.name,
            hint: `reach ${host.name} at its console: \`journalctl -u ${entry.timer.unit}.service\`, and \`systemctl list-timers\` for the timer`,
          },
        );
      }
      await sleep(RETRY_MS, undefined, { signal: this.ctx.signal });
    }
  }

  /** When the host's timer fires, unless confirmed before. */
  private firesBy(entry: Armed): number {
    return entry.lastConfirmedAt + entry.host.confirmTimeoutMs;
  }

  private giveUp(entry: Armed): void {
    entry.lost = true;
    this.endConfirmations(entry);
    this.ctx.log.warn(
      `${entry.host.name}: cannot be reached anew: left to its revert timer, which fires by ${new Date(this.firesBy(entry)).toISOString()} (${formatDuration(entry.host.confirmTimeoutMs)} after the last confirmation)`,
    );
  }
}
