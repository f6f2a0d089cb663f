// The hosts' revert timers during one deploy (a dead man's switch): armed before a host's
// `test`, confirmed over a new ssh connection every third of the host's confirm_timeout while
// the deploy runs, and once more after the gate and after `switch`, then stopped. A host that
// the deployer cannot reach anew (the release stopped sshd, closed port 22, cut the network),
// or whose deployer died, puts itself back on the system it ran before when its timer fires.
// A host that reboots into the new system gets a reboot guard instead: left before the reboot,
// armed by the host when it boots the new system, confirmed from then on in the same way; when
// it fires, the host boots the system it ran before again.
import { setTimeout as sleep } from 'node:timers/promises';
import { CONFIRMS_PER_TIMEOUT, type Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExitCode, ExoDeployError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import {
  armRevertTimer,
  confirmRevertTimer,
  disarm,
  revertStatus,
  revertState,
  revertTimerUnit,
  stopRevertTimer,
  type Confirmation,
  type RevertTimer,
} from '../system/revert-timer.js';
import { bootIdArgv } from '../programs/coreutils.js';
import type { PreviousSystem } from '../system/generations.js';
import { guardBack, leaveRebootGuard, whenGuardArmed } from '../system/reboot-guard.js';
import type { Recorder, RevertTimerState } from './record.js';

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
  /** Why the background confirmations have failed since the last one that worked, first
   * reason first: the timer may fire before the next confirmation that decides. */
  failing: string[];
  /** A reboot guard: armed by the host when it boots the new system. bootId: that boot's, once
   * the deployer has seen it (null: the host has not come back yet). */
  guard?: { rebootAsked: boolean; bootId: string | null };
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
    const entry: Armed = {
      host,
      timer,
      lastConfirmedAt: this.ctx.now(),
      done: false,
      lost: false,
      failing: [],
    };
    this.armed.set(host.name, entry);
    await this.rec.setRevertTimer(host.name, this.recordOf(entry), 'armed');
    this.confirmLater(entry);
  }

  /** Leaves the host's reboot guard, for its boot into `system`, where the new system has one
   * (release.json names its folder). Without one, a host cut off after its reboot needs a person. */
  async leaveRebootGuard(
    host: Host,
    before: PreviousSystem,
    system: string,
    guardDir: string | null,
  ): Promise<void> {
    if (host.local || this.armed.has(host.name) || !before.running) return;
    const back = guardBack(before, system);
    if (!guardDir || !back) {
      this.ctx.log.warn(
        `${host.name}: ${guardDir ? 'it ran and boots nothing but the new system already, so a reboot guard has nothing to go back to' : 'its new system has no reboot guard (services.exo.rebootGuard)'}: should the release cut it off from the deployer after its reboot, it cannot put itself back, and needs a person`,
      );
      return;
    }
    const timer = await leaveRebootGuard(
      this.ctx.executor(host),
      guardDir,
      revertTimerUnit(this.rec.record.id),
      system,
      back,
      host.confirmTimeoutMs,
    );
    // no confirmations until the host has booted and armed it
    const entry: Armed = {
      host,
      timer,
      lastConfirmedAt: this.ctx.now(),
      done: true,
      lost: false,
      failing: [],
      guard: { rebootAsked: false, bootId: null },
    };
    this.armed.set(host.name, entry);
    await this.rec.setRevertTimer(host.name, this.recordOf(entry), 'armed');
  }

  /** The host's reboot is asked for: until it is back, it cannot be reached to stop its guard. */
  rebootAsked(host: Host): void {
    const guard = this.armed.get(host.name)?.guard;
    if (guard) guard.rebootAsked = true;
  }

  /** How long the deployer waits for the host to come back from its reboot: with a guard, also
   * for the guard to boot it back (its timer, the revert, a second reboot). */
  rebootWaitMs(host: Host): number {
    const { reboot, activate } = this.ctx.config.timeouts;
    return this.armed.get(host.name)?.guard
      ? 2 * reboot + host.confirmTimeoutMs + activate + REVERT_SLACK_MS
      : reboot;
  }

  /**
   * The host answers from a new boot (bootId), which is the guarded system: its guard arms the
   * timer early in the boot, and the timer counts from then. So it is confirmed as soon as it is
   * armed, and from then on, while the rest of the boot settles. A guard that did not arm is
   * taken off, with a warning.
   */
  async armedAtBoot(host: Host, bootId: string): Promise<void> {
    const entry = this.armed.get(host.name);
    if (!entry?.guard) return;
    entry.guard.bootId = bootId;
    const exec = this.ctx.executor(host);
    const state = await whenGuardArmed(exec, this.ctx.config.timeouts.activate, this.ctx.signal);
    if (!state.armed) {
      this.ctx.log.warn(
        `${host.name}: its reboot guard did not arm (${state.why}): should the release cut it off from the deployer from now on, it cannot put itself back`,
      );
      await this.stop(host);
      return;
    }
    // it fires no sooner than confirm_timeout from now
    confirmed(entry, this.ctx.now());
    entry.done = false;
    await this.mustConfirm(host, 'its reboot');
    this.confirmLater(entry);
  }

  /** For a host that came back from its reboot on another system than the new one: whether its
   * guard booted it back (the revert's exit code; null: it did not run). The guard is done. */
  async afterRebootElsewhere(host: Host): Promise<number | null> {
    const entry = this.armed.get(host.name);
    if (!entry?.guard) return null;
    const status = await revertStatus(this.ctx.executor(host), entry.timer);
    await this.retire(entry, status === null ? 'stopped' : 'fired');
    return status;
  }

  /** Whether the host's timer is a reboot guard: putting it back takes a reboot of its own. */
  guardsReboot(host: Host): boolean {
    return this.armed.get(host.name)?.guard !== undefined;
  }

  private recordOf(entry: Armed) {
    return { ...entry.timer, rebootGuard: entry.guard !== undefined };
  }

  /** Done with a timer that fired, or that its host no longer runs: its unit stopped where it is
   * still loaded, its files removed, and how it ended recorded. */
  private async retire(entry: Armed, state: RevertTimerState): Promise<void> {
    this.endConfirmations(entry);
    this.armed.delete(entry.host.name);
    await stopRevertTimer(this.ctx.executor(entry.host), entry.timer).catch(() => false);
    await this.rec.setRevertTimer(entry.host.name, this.recordOf(entry), state);
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
      if (c?.confirmed) confirmed(entry, this.ctx.now());
      else if (c) {
        this.ctx.log.verbose(`${entry.host.name}: revert timer not confirmed: ${c.why}`);
        if (!entry.failing.includes(c.why)) entry.failing.push(c.why);
      }
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
    // no timer yet: a guard the host has not armed (it has not booted the guarded system)
    if (!entry || (entry.guard?.bootId === null && !entry.lost)) return { confirmed: true };
    if (entry.lost)
      return { confirmed: false, fired: false, why: 'it was left to its revert timer' };
    const whys = [...entry.failing];
    for (;;) {
      const c = await confirmRevertTimer(
        this.ctx.executor(host),
        entry.timer,
        host.confirmTimeoutMs / CONFIRMS_PER_TIMEOUT,
      );
      if (c.confirmed) {
        confirmed(entry, this.ctx.now());
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
    const state = await disarm(this.ctx.executor(host), this.recordOf(entry));
    await this.rec.setRevertTimer(host.name, this.recordOf(entry), state);
  }

  /**
   * Stops every timer the deployer still holds, also after Ctrl-C: a host is left armed only
   * when it was given up (cut off), since its timer is then the only way back.
   */
  async stopAll(): Promise<void> {
    const rebooting = [...this.armed.values()].filter(
      (e) => e.guard?.rebootAsked && e.guard.bootId === null,
    );
    for (const e of rebooting) {
      e.lost = true;
      this.ctx.log.warn(
        `${e.host.name}: was rebooting into the new system: once it has booted it, its reboot guard boots it back into the system it ran before ${formatDuration(e.host.confirmTimeoutMs)} later, unless \`exo-deploy rollback --last\` reaches it first`,
      );
    }
    await Promise.allSettled(
      [...this.armed.values()]
        .filter((e) => !e.lost)
        .map((e) =>
          this.stop(e.host).catch((error: unknown) =>
            this.ctx.log.warn(
              `${e.host.name}: ${error instanceof Error ? error.message : String(error)}: stop it with \`systemctl stop ${e.timer.unit}.timer\`${e.guard ? ` and \`rm ${e.timer.files[0]}\`` : ''} on the host, or it puts the host back when it fires`,
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
    if (entry.guard) return this.awaitGuardRevert(entry, entry.guard);
    const { timer } = entry;
    const exec = this.ctx.executor(host);
    return this.pollRevert(
      host,
      this.firesBy(entry) + this.ctx.config.timeouts.activate + REVERT_SLACK_MS,
      async () => {
        const state = await revertState(exec, timer);
        if (!state.done)
          return { seen: state.running ? 'its revert is running' : 'its timer has not fired yet' };
        await this.retire(entry, 'fired');
        if (state.exitCode === 0 || state.exitCode === 4)
          return {
            did: `its revert timer ${timer.unit} put it back (switch-to-configuration exit ${state.exitCode})`,
          };
        throw new ExoDeployError(
          `${host.name}: its revert timer ${timer.unit} fired, and the revert failed (exit ${state.exitCode})`,
          ExitCode.needsPerson,
          { host: host.name, hint: `see \`journalctl -u ${timer.unit}.service\` on ${host.name}` },
        );
      },
      {
        what: 'did not put itself back',
        hint: `reach ${host.name} at its console: \`journalctl -u ${timer.unit}.service\`, and \`systemctl list-timers\` for the timer`,
      },
    );
  }

  /** A reboot guard's revert ends with a reboot: the host answers from another boot than the
   * one that armed it, and its status says how the revert went. */
  private async awaitGuardRevert(
    entry: Armed,
    guard: NonNullable<Armed['guard']>,
  ): Promise<string> {
    const { host, timer } = entry;
    // given up on only once it had armed the guard, in a boot the deployer saw
    if (guard.bootId === null) throw new Error(`${host.name}: its reboot guard was never armed`);
    const { activate, reboot } = this.ctx.config.timeouts;
    const exec = this.ctx.executor(host);
    return this.pollRevert(
      host,
      this.firesBy(entry) + activate + REVERT_SLACK_MS + reboot,
      async () => {
        const r = await exec.run(bootIdArgv(), { fresh: true });
        const bootId = r.stdout.trim();
        const status = r.exitCode === 0 ? await revertStatus(exec, timer) : null;
        // a revert that failed reboots nothing: no use waiting for another boot
        const failed = status !== null && status !== 0;
        if (r.exitCode !== 0 || !bootId || (bootId === guard.bootId && !failed))
          return {
            seen:
              status === 0
                ? 'its reboot guard has fired, and it is rebooting'
                : 'it answers from the boot that armed its guard',
          };
        await this.retire(entry, status === null ? 'stopped' : 'fired');
        if (status === 0)
          return {
            did: `its reboot guard ${timer.unit} booted it back into the system it ran before`,
          };
        throw new ExoDeployError(
          status === null
            ? `${host.name}: rebooted, but not by its reboot guard`
            : `${host.name}: its reboot guard fired, and its revert failed (exit ${status})`,
          ExitCode.needsPerson,
          {
            host: host.name,
            hint: `see \`journalctl -b -1 -u ${timer.unit}.service\` on ${host.name}`,
          },
        );
      },
      {
        what: 'did not boot itself back',
        hint: `reach ${host.name} at its console: \`journalctl -u ${timer.unit}.service\`; the system it ran before is the generation below its newest`,
      },
    );
  }

  /** Asks `probe` every few seconds until it says what the revert did, or throws that the host
   * needs a person; past the deadline, the host needs a person, told the last thing seen. */
  private async pollRevert(
    host: Host,
    deadline: number,
    probe: () => Promise<{ did: string } | { seen: string }>,
    late: { what: string; hint: string },
  ): Promise<string> {
    let last = 'not reached yet';
    for (;;) {
      try {
        const r = await probe();
        if ('did' in r) return r.did;
        last = r.seen;
      } catch (error) {
        if (!(error instanceof ExoDeployError) || error.exitCode === ExitCode.needsPerson)
          throw error;
        last = error.message;
      }
      if (this.ctx.now() > deadline)
        throw new ExoDeployError(
          `${host.name}: ${late.what} by ${new Date(deadline).toISOString()} (${last})`,
          ExitCode.needsPerson,
          { host: host.name, hint: late.hint },
        );
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

/** A confirmation went through at `at`: the timer counts from then, and earlier failures are past. */
function confirmed(entry: Armed, at: number): void {
  entry.lastConfirmedAt = at;
  entry.failing = [];
}
