// A marker on each host while a deploy changes it: /run/exo-deploy/deploy.lock (tmpfs, so a
// reboot clears it). The config repo's lock keeps out deploys from this checkout; the marker
// keeps out a deploy from anywhere else (another checkout, another operator's machine).
import os from 'node:os';
import path from 'node:path';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { ExoDeployError, ExitCode } from '../errors.js';
import { mkdirArgv, removeArgv, writeFileArgv } from '../programs/coreutils.js';
import { processAlive } from './lock.js';

export const MARKER_FILE = '/run/exo-deploy/deploy.lock';

export interface Marker {
  run: string;
  deployer: string;
  user: string;
  pid: number;
  startedAt: string;
}

/** A marker older than this is a leftover (its deploy cannot still be running). */
export const markerMaxAgeMs = (ctx: Context) => ctx.config.timeouts.build + ctx.config.timeouts.activate + 2 * ctx.config.health.ready_timeout + ctx.config.health.soak;

export async function placeMarkers(ctx: Context, hosts: readonly Host[], run: string): Promise<void> {
  const mine: Marker = { run, deployer: os.hostname(), user: os.userInfo().username, pid: process.pid, startedAt: new Date(ctx.now()).toISOString() };
  const found = await Promise.all(hosts.map(async (h) => ({ host: h, marker: await readMarker(ctx, h) })));
  for (const { host, marker } of found) {
    if (!marker || marker.run === run) continue;
    const sameMachineGone = marker.deployer === mine.deployer && !processAlive(marker.pid);
    const tooOld = ctx.now() - Date.parse(marker.startedAt) > markerMaxAgeMs(ctx);
    if (!sameMachineGone && !tooOld) {
      throw new ExoDeployError(`${host.name} is being deployed by ${marker.user}@${marker.deployer} (PID ${marker.pid}, run ${marker.run}, since ${marker.startedAt})`, ExitCode.locked, {
        host: host.name,
        hint: `wait for that deploy; if it is gone, remove ${MARKER_FILE} on ${host.name}`,
      });
    }
    ctx.log.warn(`${host.name}: taking over a leftover deploy marker of run ${marker.run} (${marker.user}@${marker.deployer}, since ${marker.startedAt})`);
  }
  await Promise.all(hosts.map(async (h) => {
    await ctx.executor(h).must(mkdirArgv(path.posix.dirname(MARKER_FILE)), { root: true, mutates: true });
    await ctx.executor(h).must(writeFileArgv(MARKER_FILE), { root: true, mutates: true, input: `${JSON.stringify(mine)}\n` });
  }));
}

/** Best effort: a marker left by a crash is taken over by the next deploy, with a warning. */
export async function removeMarkers(ctx: Context, hosts: readonly Host[]): Promise<void> {
  await Promise.allSettled(hosts.map((h) => ctx.executor(h).run(removeArgv(MARKER_FILE), { root: true, mutates: true })));
}

async function readMarker(ctx: Context, host: Host): Promise<Marker | null> {
  const out = await ctx.executor(host).run(['cat', MARKER_FILE], { root: true });
  if (out.exitCode !== 0) return null;
  try {
    return JSON.parse(out.stdout) as Marker;
  } catch {
    return null;
  }
}
