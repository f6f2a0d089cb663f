// A marker on each host while a deploy changes it: /run/exo-deploy/deploy.lock (tmpfs, so a
// reboot clears it). The config repo's lock keeps out deploys from this checkout; the marker
// keeps out a deploy from anywhere else (another checkout, another operator's machine).
// Each write is exclusive on the host (written whole under a name of its own, then linked in
// place only where no marker is), and only the run that placed a marker renews or removes it.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import {
  createExclusiveArgv,
  FILE_TAKEN_EXIT,
  removeIfArgv,
  replaceIfArgv,
} from '../programs/coreutils.js';
import { processAlive } from './lock.js';

export const MARKER_FILE = '/run/exo-deploy/deploy.lock';

export interface Marker {
  run: string;
  deployer: string;
  user: string;
  pid: number;
  startedAt: string;
  /** When the run last said it is still at work (each batch): what a marker's age counts from. */
  renewedAt?: string;
}

/** A marker not renewed for this long is a leftover (its deploy cannot still be running): one
 * batch's build, activation, waits and soak. */
const markerMaxAgeMs = (ctx: Context) =>
  ctx.config.timeouts.build +
  ctx.config.timeouts.activate +
  2 * ctx.config.health.ready_timeout +
  ctx.config.health.soak;

const temp = () => `${MARKER_FILE}.${randomUUID()}`;

/** The markers of one run. */
export class HostMarkers {
  /** What each marked host's marker holds (without its line break). */
  private readonly placed = new Map<string, string>();
  private readonly mine: Marker;

  constructor(
    private readonly ctx: Context,
    readonly run: string,
  ) {
    this.mine = {
      run,
      deployer: os.hostname(),
      user: os.userInfo().username,
      pid: process.pid,
      startedAt: new Date(ctx.now()).toISOString(),
    };
  }

  get hosts(): string[] {
    return [...this.placed.keys()];
  }

  /** Marks every host, or fails (exit 4) naming a host another deploy holds. A leftover
   * marker (its deploy's process gone, or too old) is taken over with a warning. */
  async place(hosts: readonly Host[]): Promise<void> {
    const text = JSON.stringify(this.mine);
    const refusals = await Promise.all(
      hosts.map(async (h) => {
        const exec = this.ctx.executor(h);
        const r = await exec.run(createExclusiveArgv(MARKER_FILE, temp()), {
          root: true,
          mutates: true,
          input: `${text}\n`,
        });
        if (r.exitCode === 0) return this.mark(h, text);
        if (r.exitCode !== FILE_TAKEN_EXIT)
          throw new ExoDeployError(
            `${h.name}: cannot write the deploy marker ${MARKER_FILE}: ${r.stderr.trim() || `exit ${r.exitCode}`}`,
            ExitCode.failed,
            { host: h.name },
          );
        const found = r.stdout.trim();
        const holder = parseMarker(found);
        if (holder?.run === this.run) return this.mark(h, found);
        if (!holder || !this.leftover(holder)) return refusal(h, holder);
        this.ctx.log.warn(
          `${h.name}: taking over a leftover deploy marker of run ${holder.run} (${holder.user}@${holder.deployer}, since ${holder.startedAt})`,
        );
        const taken = await exec.run(
          replaceIfArgv(MARKER_FILE, found, temp(), `${MARKER_FILE}.aside.${randomUUID()}`),
          { root: true, mutates: true, input: `${text}\n` },
        );
        return taken.exitCode === 0 ? this.mark(h, text) : refusal(h, null);
      }),
    );
    const refused = refusals.find((x): x is ExoDeployError => x instanceof ExoDeployError);
    if (refused) throw refused;
  }

  /** Tells other deploys this run is still at work on these hosts (a long rollout). */
  async renew(hosts: readonly Host[]): Promise<void> {
    await Promise.all(
      hosts
        .filter((h) => this.placed.has(h.name))
        .map(async (h) => {
          const text = JSON.stringify({
            ...this.mine,
            renewedAt: new Date(this.ctx.now()).toISOString(),
          });
          const r = await this.ctx
            .executor(h)
            .run(
              replaceIfArgv(
                MARKER_FILE,
                this.placed.get(h.name) as string,
                temp(),
                `${MARKER_FILE}.aside.${randomUUID()}`,
              ),
              { root: true, mutates: true, input: `${text}\n` },
            );
          if (r.exitCode === 0) this.placed.set(h.name, text);
          else
            this.ctx.log.warn(
              `${h.name}: its deploy marker is no longer this run's: another deploy may have taken it over`,
            );
        }),
    );
  }

  /** Why the host is not this run's to change now (another deploy's live marker is on it), or
   * null: read only, nothing placed. */
  async heldElsewhere(h: Host): Promise<ExoDeployError | null> {
    const found = (await this.ctx.executor(h).run(['cat', MARKER_FILE], { root: true })).stdout;
    const holder = parseMarker(found.trim());
    return holder && holder.run !== this.run && !this.leftover(holder) ? refusal(h, holder) : null;
  }

  /** Removes this run's markers (best effort: a marker left by a crash is taken over later). */
  async remove(): Promise<void> {
    await Promise.allSettled(
      this.ctx.hosts
        .filter((h) => this.placed.has(h.name))
        .map(async (h) => {
          await this.ctx
            .executor(h)
            .run(removeIfArgv(MARKER_FILE, this.placed.get(h.name) as string), {
              root: true,
              mutates: true,
              afterInterrupt: true,
            });
          this.placed.delete(h.name);
        }),
    );
  }

  private mark(h: Host, text: string): null {
    this.placed.set(h.name, text);
    return null;
  }

  private leftover(marker: Marker): boolean {
    const sameMachineGone = marker.deployer === this.mine.deployer && !processAlive(marker.pid);
    const age = this.ctx.now() - Date.parse(marker.renewedAt ?? marker.startedAt);
    return sameMachineGone || age > markerMaxAgeMs(this.ctx);
  }
}

/** Removes the markers a run left (`rollback --last` of an interrupted run): only those that are
 * still that run's. */
export async function removeMarkersOf(
  ctx: Context,
  hosts: readonly Host[],
  run: string,
): Promise<void> {
  await Promise.allSettled(
    hosts.map(async (h) => {
      const exec = ctx.executor(h);
      const found = (await exec.run(['cat', MARKER_FILE], { root: true })).stdout.trim();
      if (parseMarker(found)?.run === run)
        await exec.run(removeIfArgv(MARKER_FILE, found), { root: true, mutates: true });
    }),
  );
}

function refusal(host: Host, holder: Marker | null): ExoDeployError {
  const who = holder
    ? `${holder.user}@${holder.deployer} (PID ${holder.pid}, run ${holder.run}, since ${holder.startedAt})`
    : 'another deploy';
  return new ExoDeployError(`${host.name} is being deployed by ${who}`, ExitCode.locked, {
    host: host.name,
    hint: `wait for that deploy; if it is gone, remove ${MARKER_FILE} on ${host.name}`,
  });
}

function parseMarker(text: string): Marker | null {
  try {
    const m = JSON.parse(text) as Marker;
    return typeof m?.run === 'string' && typeof m.pid === 'number' ? m : null;
  } catch {
    return null;
  }
}
