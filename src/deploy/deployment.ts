// One deploy, from the first check to the report's facts: preflight → mark the hosts → read what
// they run → build → back up → copy (and what changes) → then, per batch of the strategy: test →
// health gate → [smoke] → switch → final check. Any failure after an activation puts the touched
// hosts (rollback_scope) back on the exact systems they ran before. By default all hosts are one
// batch (lockstep): a cluster moves and is gated as one. Batches one after another (rolling,
// canary) mix old and new systems in one cluster for a while, which exo allows only within one
// era (libp2p or zenoh) and one namespace: then old and new nodes form one mixed-version cluster
// and each batch is gated as part of the whole cluster. Otherwise the batches would split it:
// refused without --force.
import path from 'node:path';
import type { Host } from '../config/host.js';
import { clockAt, windowIsOpen, type RebootPolicy } from '../config/reboot.js';
import { formatDuration } from '../config/duration.js';
import type { Strategy } from '../config/schema.js';
import type { Context } from '../context.js';
import { ExitCode, ExoDeployError, usageError } from '../errors.js';
import {
  AFTER_ACTIVATION_PARTS,
  checkHost,
  judgeMembership,
  readPeer,
  type HostCheck,
} from '../health/check.js';
import type { Executor } from '../run/executor.js';
import { activateBuilt } from '../steps/activate-built.js';
import { backupHost } from '../steps/backup.js';
import { buildOnTarget, buildSystems } from '../steps/build.js';
import { checkHosts, checkOptions } from '../steps/check-hosts.js';
import { closureDiff, copyClosure } from '../steps/copy.js';
import { runHealthGate, waitUntilServing, type GateResult } from '../steps/health-gate.js';
import { restoreHost } from '../steps/restore.js';
import { managedClusterApis, smokeSettings, smokeTest } from '../steps/smoke.js';
import { hostActivationProblems, unswitchableSystems } from '../system/activation-support.js';
import { runningAndProfile } from '../system/activate.js';
import {
  readBootedParts,
  readBootedSystem,
  readBootLinks,
  liveSwitchRefusal,
  rebootHost,
  rebootReasons,
  waitForBoot,
  type BootLinks,
  type BootedSystem,
} from '../system/reboot.js';
import {
  readReleases,
  readSystemState,
  type Release,
  type SystemState,
} from '../system/generations.js';
import { timestampId } from '../time-id.js';
import { HostMarkers } from './host-marker.js';
import { DeployJournal, journalFile } from './journal.js';
import {
  chunks,
  clusterSplits,
  hostsToRollBack,
  mapLimit,
  planBatches,
  type RolloutSystem,
} from './plan.js';
import { onNewSystem, Recorder, type DeployRecord, type HostRecord } from './record.js';
import { RevertTimers } from './revert-timers.js';

/** Health before the deploy is the running process's: a previous, rolled-back one's errors are
 * history. */
const PREFLIGHT_WINDOW_MS = 10 * 60_000;

/** What the deploy command was asked beyond the hosts: read where the command starts. */
export interface DeploySettings {
  strategy: Strategy;
  /** Roll out in batches even when they would not form one exo cluster. */
  force: boolean;
  reboot: RebootPolicy;
}

/** The batches in order, and whether they split one exo cluster (allowed by --force only). */
interface Rollout {
  batches: Host[][];
  splitsCluster: boolean;
}

/** One deploy of the context's hosts. It owns what the deploy learns as it goes (the systems
 * the hosts ran, the releases built, the batch under way), the markers and revert timers it
 * placed, and the recorder: the only writer of the record that the report is made from. */
export class Deployment {
  private readonly rec: Recorder;
  private readonly markers: HostMarkers;
  private readonly timers: RevertTimers;
  /** Where this deploy's builds put their result links. */
  private readonly buildDir: string;
  /** What each host ran when the deploy began. */
  private readonly systems = new Map<string, SystemState>();
  /** The exo release each built system carries, by store path. */
  private builtReleases = new Map<string, Release>();
  /** The parts of the system each host booted (null: not known), and where each built
   * system's kernel, initrd and modules lie: whether a host needs a reboot. */
  private readonly booted = new Map<string, BootedSystem | null>();
  private builtBoot = new Map<string, BootLinks>();
  /** The hosts that take the boot path: boot, reboot, then the gate. */
  private readonly rebooting = new Set<string>();
  /** Hosts that did not come back from a reboot: nothing can reach them to put them back. */
  private readonly lostInReboot = new Set<string>();
  /** The batch being activated: the hosts that rollback_scope "failed" sends back. */
  private activeBatch: readonly string[] = [];

  constructor(
    private readonly ctx: Context,
    private readonly settings: DeploySettings,
  ) {
    const id = timestampId(new Date(ctx.now()));
    const { stateDir } = ctx.config;
    this.rec = new Recorder(
      {
        id,
        command: `deploy ${ctx.hosts.map((h) => h.name).join(',')}`,
        configFile: ctx.config.file ?? null,
        flake: ctx.config.flake,
        hosts: ctx.hosts.map((h) => h.name),
      },
      ctx.log,
      ctx.now,
      ctx.dryRun ? null : new DeployJournal(journalFile(stateDir, id)),
    );
    this.buildDir = path.join(stateDir, 'runs', id);
    this.markers = new HostMarkers(ctx, id);
    this.timers = new RevertTimers(ctx, this.rec);
  }

  get record(): DeployRecord {
    return this.rec.record;
  }

  /** Deploys, or puts back what it touched, and says which in the record. It throws only what
   * must reach the user as an error and changed nothing: a refusal (exit 2) or another deploy's
   * marker on a host (exit 4). */
  async execute(): Promise<DeployRecord> {
    await this.rec.begin();
    let refusal: ExoDeployError | undefined;
    try {
      await this.deploy();
    } catch (error) {
      this.rec.setError(error);
      if (this.ctx.signal.aborted) this.rec.finish('interrupted', ExitCode.interrupted);
      else if (this.record.hosts.some(touched)) await this.rollBack();
      else {
        if (
          error instanceof ExoDeployError &&
          (error.exitCode === ExitCode.usage || error.exitCode === ExitCode.locked)
        )
          refusal = error;
        this.rec.finish('failed', refusal ? refusal.exitCode : ExitCode.failed);
      }
    } finally {
      await this.timers.stopAll();
      if (!this.ctx.signal.aborted) await this.markers.remove();
      await this.rec.end();
    }
    if (refusal) throw refusal;
    return this.record;
  }

  setReportFiles(files: { markdown: string; json: string }): void {
    this.rec.setReportFiles(files);
  }

  /** The phases in order: each throws to stop the deploy. */
  private async deploy(): Promise<void> {
    const { dryRun, hosts } = this.ctx;
    await this.preflight();
    if (!dryRun) await this.rec.step('mark hosts', null, () => this.markers.place(hosts));
    await this.readSystems();
    // Build before backing up: a build that fails has then changed nothing anywhere.
    await this.build();
    await this.readBuilt();
    const changing = await this.changingHosts();
    if (changing.length === 0) return this.rec.finish('no-change', ExitCode.ok);
    const rollout = this.plan(changing);
    // Copied before the reboots are judged: the hosts' own switch-to-configuration tells whether
    // it would switch to the new system live.
    await this.copy(changing);
    await this.judgeReboots(changing);
    if (!dryRun) await this.backUp(changing);
    if (dryRun) return this.rec.finish('success', ExitCode.ok);
    for (const [i, batch] of rollout.batches.entries()) {
      // a long rollout is still at work: other deploys must not take its markers for leftovers
      if (i > 0) await this.markers.renew(hosts);
      // (the first batch too: backing up can take the window's last minutes)
      if (this.windowClosedBefore(batch)) return this.rec.finish('window-closed', ExitCode.failed);
      await this.activate(batch, rollout);
    }
    this.rec.finish('success', ExitCode.ok);
  }

  private async preflight(): Promise<void> {
    const { ctx } = this;
    const checks = await this.rec.step(
      'preflight',
      null,
      () => checkHosts(ctx, ctx.now() - PREFLIGHT_WINDOW_MS, { sinceProcessStart: true }),
      (cs) =>
        cs
          .map(
            (c) => `${c.host}: ${c.healthy ? 'healthy' : `not healthy: ${c.problems.join('; ')}`}`,
          )
          .join('\n'),
    );
    for (const c of checks) {
      this.rec.setHealthyBefore(c.host, c.healthy);
      if (!c.reachable)
        throw new ExoDeployError(`preflight: ${c.problems.join('; ')}`, ExitCode.failed, {
          host: c.host,
        });
      if (!c.compatibility.nix)
        throw new ExoDeployError(`preflight: ${c.host} has no working nix`, ExitCode.failed, {
          host: c.host,
        });
      if (!c.healthy)
        ctx.log.warn(
          `${c.host} is not healthy before the deploy (${c.problems[0]}); deploying anyway: a rollback returns it to this state`,
        );
    }
    refuseUnfit(
      await Promise.all(
        ctx.hosts.map(async (h) => ({
          host: h.name,
          problems: await hostActivationProblems(ctx.executor(h)),
        })),
      ),
    );
  }

  /** What each host runs, and its profile: the exact system a rollback returns it to. */
  private readSystems(): Promise<void> {
    return this.rec.step('record', null, async () => {
      // Together, so that the journal writes the hosts' systems in one fsync, not one each.
      await Promise.all(
        this.ctx.hosts.map(async (h) => {
          const exec = this.ctx.executor(h);
          // issued together: one session to the host
          const [state, booted] = await Promise.all([readSystemState(exec), readBootedParts(exec)]);
          this.systems.set(h.name, state);
          this.booted.set(h.name, booted);
          await this.rec.setBefore(
            h.name,
            {
              running: state.running,
              profileGeneration: state.profileGeneration,
              profilePath: state.generations.find((g) => g.current)?.path ?? null,
              booted: booted?.system ?? null,
            },
            state.runningRelease?.identity ?? 'unknown',
          );
        }),
      );
    });
  }

  /** Hosts that build their own systems do so while this machine builds the others'. */
  private async build(): Promise<void> {
    const { ctx, rec } = this;
    const { build } = ctx.config;
    const builtHere = ctx.hosts.filter((h) => h.buildOn === 'deployer');
    const batches = chunks(builtHere, build.hosts_per_evaluation);
    const label = (hosts: readonly Host[]) =>
      batches.length === 1 && hosts.length === ctx.hosts.length
        ? null
        : hosts.map((h) => h.name).join(',');
    const builds = await Promise.all([
      mapLimit(batches, build.max_evaluations, (hosts, i) =>
        rec.step(
          'build',
          label(hosts),
          async () => {
            const built = await buildSystems(ctx, hosts, this.buildDir, i);
            for (const [name, systemPath] of built.systems) rec.setBuilt(name, systemPath);
            return built.output;
          },
          (out) => out,
        ),
      ),
      mapLimit(this.builtThere(), ctx.config.rollout.max_parallel, (h) =>
        rec.step(
          'build',
          h.name,
          async () => {
            const built = await buildOnTarget(ctx, h);
            rec.setBuilt(h.name, built.systemPath);
            return built.output;
          },
          (out) => out,
        ),
      ),
    ]);
    const failure = builds.flat().find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
  }

  /** Which exo each built system carries, and whether it can be switched to at all. */
  private async readBuilt(): Promise<void> {
    const { ctx } = this;
    // Where the systems are (here, or the hosts that built their own), both reads at once: the
    // executor runs reads issued together as one process.
    const read = (exec: Executor, paths: string[]) =>
      Promise.all([
        unswitchableSystems(exec, paths),
        readReleases(exec, paths),
        readBootLinks(exec, paths),
      ]);
    const reads = await Promise.all([
      read(
        ctx.deployer,
        ctx.hosts.filter((h) => h.buildOn === 'deployer').map((h) => this.builtPath(h)),
      ),
      ...this.builtThere().map((h) => read(ctx.executor(h), [this.builtPath(h)])),
    ]);
    const unswitchable = reads.flatMap(([paths]) => paths);
    refuseUnfit(
      ctx.hosts
        .filter((h) => unswitchable.includes(this.builtPath(h)))
        .map((h) => ({
          host: h.name,
          problems: [
            `the system built for it (${this.builtPath(h)}) has no bin/switch-to-configuration (system.switch.enable = false): it could only be booted`,
          ],
        })),
    );
    this.builtReleases = new Map(reads.flatMap(([, releases]) => [...releases]));
    this.builtBoot = new Map(reads.flatMap(([, , links]) => [...links]));
    for (const h of ctx.hosts)
      this.rec.setBuiltExo(
        h.name,
        this.builtReleases.get(this.builtPath(h))?.identity ?? 'unknown',
      );
  }

  /** The hosts the deploy changes; the others are recorded as unchanged. A host that runs
   * something other than its profile's system (a test activation) is changing too: what it
   * runs was never made permanent. */
  private async changingHosts(): Promise<Host[]> {
    const changing = this.ctx.hosts.filter((h) => {
      const { built, before } = this.rec.host(h.name);
      return (
        built.systemPath !== before.running ||
        (before.profilePath !== null && before.profilePath !== before.running)
      );
    });
    await Promise.all(
      this.ctx.hosts
        .filter((h) => !changing.includes(h))
        .map((h) => this.rec.setPhase(h.name, 'unchanged')),
    );
    return changing;
  }

  /** Which changing hosts take the boot path (boot, reboot, gate) and why, recorded; refused
   * (exit 2, nothing changed yet) when the reboot policy or window does not allow the reboots
   * this release takes, or a host to reboot is the machine exo-deploy runs on. */
  private async judgeReboots(changing: readonly Host[]): Promise<void> {
    const { ctx } = this;
    const needing: { host: Host; why: string }[] = [];
    const unknown: string[] = [];
    const refusals = await this.rec.step('reboot check', null, () =>
      mapLimit(changing, ctx.config.rollout.max_parallel, (h) =>
        liveSwitchRefusal(ctx.executor(h), this.builtPath(h)),
      ),
    );
    for (const [i, h] of changing.entries()) {
      const path = this.builtPath(h);
      const links = this.builtBoot.get(path);
      const booted = links
        ? rebootReasons(this.booted.get(h.name) ?? null, {
            ...links,
            gpuDriver: this.builtReleases.get(path)?.gpuDriver ?? null,
          })
        : null;
      const refusal = refusals[i];
      const refused = refusal?.status === 'fulfilled' ? refusal.value : null;
      const reasons = refused ? [...(booted ?? []), refused] : booted;
      this.rec.setRebootReasons(h.name, reasons);
      if (reasons === null) unknown.push(h.name);
      else if (reasons.length) needing.push({ host: h, why: reasons.join('; ') });
    }
    const { reboot } = this.settings;
    const named = (list: readonly { host: Host; why: string }[]) =>
      list.map((n) => `${n.host.name} (${n.why})`).join(', ');
    if (unknown.length)
      ctx.log.warn(
        `${unknown.join(', ')}: the system booted is not known (no /run/booted-system), so whether the new one needs a reboot cannot be told`,
      );
    if (reboot === 'never' && needing.length)
      throw usageError(
        `refusing the deploy: reboot = "never", and the new system needs a reboot to run as built on ${named(needing)}`,
        'deploy a release that needs no reboot (the same kernel, GPU driver and switch inhibitors), or allow the reboots: --reboot auto (or [rollout] reboot = "auto")',
      );
    const rebooting =
      reboot === 'always' ? changing.map((host) => ({ host, why: 'reboot = "always"' })) : needing;
    if (!rebooting.length) return;
    const here = rebooting.filter((n) => n.host.local);
    if (here.length)
      throw usageError(
        `refusing the deploy: it would reboot ${here.map((n) => n.host.name).join(', ')}, the machine exo-deploy runs on, and could not carry on to gate it`,
        'deploy this host from another machine, or with --reboot never and reboot it yourself',
      );
    const window = ctx.config.rollout.reboot_window;
    const now = new Date(ctx.now());
    if (window && !windowIsOpen(window, now))
      throw usageError(
        `refusing the deploy: it reboots ${named(rebooting)}, and reboots are allowed only within ${window.text} (now ${clockAt(window, now)})`,
        'deploy again within the window, change [rollout] reboot_window, or pass --reboot never to see which hosts need a reboot',
      );
    for (const n of rebooting) {
      this.rebooting.add(n.host.name);
      this.rec.setReboots(n.host.name);
    }
    ctx.log.info(
      `reboots: ${named(rebooting)}: each gets the new system as its boot default, reboots, and is gated on the new boot`,
    );
  }

  /** Whether the reboot window has closed since the deploy began, before a batch that reboots:
   * the rollout stops there, and the hosts that would reboot outside it are not touched. */
  private windowClosedBefore(batch: readonly Host[]): boolean {
    const window = this.ctx.config.rollout.reboot_window;
    const rebooting = batch.filter((h) => this.rebooting.has(h.name)).map((h) => h.name);
    const now = new Date(this.ctx.now());
    if (!window || rebooting.length === 0 || windowIsOpen(window, now)) return false;
    this.ctx.log.warn(
      `stopping before the batch of ${batch.map((h) => h.name).join(', ')}: ${rebooting.join(', ')} would reboot, and the reboot window (${window.text}) has closed (now ${clockAt(window, now)}); deploy again within the window to finish`,
    );
    return true;
  }

  /** The strategy's batches; refused when they would split one exo cluster, unless --force. */
  private plan(changing: readonly Host[]): Rollout {
    const { ctx } = this;
    const { strategy, force } = this.settings;
    const batches = planBatches(changing, strategy, ctx.config.rollout);
    // cluster_size 1: lone nodes, which no rollout can split.
    const splits =
      batches.length > 1 && ctx.config.health.cluster_size !== 1
        ? clusterSplits(this.rolloutSystems(changing))
        : [];
    if (splits.length) {
      const why = `its batches would not form one exo cluster: ${splits.join('; ')}`;
      if (!force)
        throw usageError(
          `refusing a ${strategy} deploy: ${why}`,
          'pin services.exo.namespace to the same value on every node (old and new systems) within one era, use the default lockstep strategy, or pass --force',
        );
      ctx.log.warn(`${strategy} --force: ${why}; each batch is gated as a cluster of its own`);
    }
    const names = batches.map((b) => b.map((h) => h.name));
    this.rec.setPlan({ strategy, batches: names });
    ctx.log.info(`plan: ${strategy}, ${names.map((b) => `[${b.join(', ')}]`).join(' then ')}`);
    return { batches, splitsCluster: splits.length > 0 };
  }

  /** Every system in the cluster while the rollout runs: what each host runs now, and the new
   * system of each host that changes. */
  private rolloutSystems(changing: readonly Host[]): RolloutSystem[] {
    return [
      ...this.ctx.hosts.map((h) => ({
        host: h.name,
        system: 'now' as const,
        release: this.systems.get(h.name)?.runningRelease ?? null,
      })),
      ...changing.map((h) => ({
        host: h.name,
        system: 'new' as const,
        release: this.builtReleases.get(this.builtPath(h)) ?? null,
      })),
    ];
  }

  private backUp(changing: readonly Host[]): Promise<void> {
    return this.onEveryHost(changing, (h) =>
      this.rec.step('backup', h.name, async () => {
        const backup = await backupHost(this.ctx, h, `before deploy ${this.record.id}`, {
          healthy: this.rec.host(h.name).before.healthy ?? false,
          knownSystem: this.systems.get(h.name),
        });
        this.rec.setBackup(h.name, backup.id);
      }),
    );
  }

  /** The new systems onto the hosts (those built here), and what changes in each closure. */
  private copy(changing: readonly Host[]): Promise<void> {
    return this.onEveryHost(changing, (h) =>
      this.rec.step(
        'copy',
        h.name,
        async () => {
          const systemPath = this.builtPath(h);
          const out =
            h.buildOn === 'target'
              ? 'built on the host: nothing to copy'
              : await copyClosure(this.ctx, h, systemPath);
          const diff = await closureDiff(
            this.ctx,
            h,
            this.rec.host(h.name).before.running,
            systemPath,
          );
          this.rec.setDiff(h.name, diff);
          return `${out}\n${diff.join('\n')}`;
        },
        (out) => out,
      ),
    );
  }

  /** test (or boot and reboot) → confirm → gate → [smoke] → confirm → switch → final check, for the
   * hosts of one batch together; each live host's revert timer runs from before its test until
   * after its switch. The hosts that reboot do so together, so that a cluster re-forms on the
   * new systems. */
  private async activate(batch: readonly Host[], rollout: Rollout): Promise<void> {
    this.activeBatch = batch.map((h) => h.name);
    const activatedAtMs = this.ctx.now();
    const cluster = this.clusterAround(batch, rollout);
    const rebooting = batch.filter((h) => this.rebooting.has(h.name));
    const live = batch.filter((h) => !this.rebooting.has(h.name));
    throwFirstFailure(await Promise.allSettled([this.test(live), this.bootInto(rebooting)]));
    // A host that cannot be reached anew now may put itself back while the others are gated:
    // it is not gated on a system it no longer runs.
    await this.confirm(batch, 'test');
    const gate = await this.gate(batch, activatedAtMs, cluster);
    if (this.ctx.config.smoke.gate) await this.smoke(batch);
    await this.confirm(batch, 'the gate');
    await this.switch(live);
    await this.onEveryHost(rebooting, async (h) => {
      // booted from its boot default, which is the new system: permanent already
      await this.rec.setPhase(h.name, 'permanent');
      await this.timers.stop(h);
    });
    await this.finalCheck(batch, activatedAtMs, cluster, gate);
  }

  /** How a batch is judged as a cluster: the nodes each host must see, and (when the batches
   * form one cluster throughout) the hosts around it, already moved, not yet moved or
   * unchanged, as peers whose node ids each must see. */
  private clusterAround(
    batch: readonly Host[],
    rollout: Rollout,
  ): { expectedNodes: number | null; peers: readonly Host[] | null } {
    if (rollout.splitsCluster) return { expectedNodes: batch.length, peers: null };
    return {
      expectedNodes: this.ctx.cluster.expectedNodes,
      peers: this.ctx.cluster.one ? this.ctx.hosts.filter((h) => !batch.includes(h)) : null,
    };
  }

  private test(batch: readonly Host[]): Promise<void> {
    return this.onEveryHost(batch, async (h) => {
      await this.rec.setPhase(h.name, 'activated'); // from here on the host may run the new system
      return this.rec.step(
        'test',
        h.name,
        async () => {
          await this.timers.arm(h, this.rec.host(h.name).before);
          return activateBuilt(this.ctx, h, this.builtPath(h), 'test');
        },
        (out) => out,
      );
    });
  }

  /** The new system the boot default, then a reboot into it: the kernel, its modules and the
   * GPU driver of the new system are loaded; then the host must run exactly that system. */
  private bootInto(hosts: readonly Host[]): Promise<void> {
    const { ctx } = this;
    return this.onEveryHost(hosts, async (h) => {
      const path = this.builtPath(h);
      const { before } = this.rec.host(h.name);
      await this.rec.setPhase(h.name, 'activated'); // from here on the host may run the new system
      await this.rec.step(
        'boot',
        h.name,
        async () => {
          await this.timers.leaveRebootGuard(
            h,
            before,
            path,
            this.builtReleases.get(path)?.rebootGuard ?? null,
          );
          return activateBuilt(ctx, h, path, 'boot');
        },
        (out) => out,
      );
      await this.rec.step(
        'reboot',
        h.name,
        async () => {
          const exec = ctx.executor(h);
          const { downMs, bootId } = await rebootHost(
            exec,
            this.timers.rebootWaitMs(h),
            ctx.signal,
            () => {
              this.timers.rebootAsked(h);
              ctx.log.info(`${h.name}: rebooting into the new system`);
            },
          ).catch((error: unknown) => {
            if (error instanceof ExoDeployError && error.exitCode === ExitCode.needsPerson)
              this.lostInReboot.add(h.name);
            throw error;
          });
          // the guard's timer counts from early in the boot: confirmed before the boot settles,
          // where the boot has linked what it booted by now (else once it has settled)
          const early = (await readBootedSystem(exec)) === path;
          if (early) await this.timers.armedAtBoot(h, bootId);
          await waitForBoot(exec, ctx.config.timeouts.activate);
          // the marker lived under /run, which the reboot emptied
          await this.markers.place([h]);
          // issued together: one session to the host
          const [{ running }, booted] = await Promise.all([
            runningAndProfile(exec),
            readBootedSystem(exec),
          ]);
          if (booted === path && running === path) {
            if (!early) await this.timers.armedAtBoot(h, bootId);
            return `back after ${Math.round(downMs / 1000)} s, booted ${path}`;
          }
          const guardExit = await this.timers.afterRebootElsewhere(h);
          throw new ExoDeployError(
            guardExit === 0
              ? `${h.name}: booted the new system, but could not be reached over a new ssh connection within its confirm_timeout (${formatDuration(h.confirmTimeoutMs)}), so its reboot guard booted it back into ${booted}`
              : `${h.name}: after its reboot it booted ${booted ?? 'no NixOS system'} and runs ${running}, not the new system (${path})`,
            ExitCode.failed,
            {
              host: h.name,
              hint:
                guardExit === 0
                  ? 'the release may stop sshd, close port 22 in the firewall, or break the network; `journalctl -b -1` on the host shows the boot into it'
                  : "its boot loader did not start its default entry: look at the boot loader's configuration and at the console",
            },
          );
        },
        (out) => out,
      );
    });
  }

  private async gate(
    batch: readonly Host[],
    activatedAtMs: number,
    cluster: ReturnType<Deployment['clusterAround']>,
  ): Promise<GateResult> {
    const { ctx } = this;
    const gate = await this.rec.step(
      'health gate',
      batch.length === ctx.hosts.length ? null : batch.map((h) => h.name).join(','),
      () =>
        runHealthGate(
          batch.map((h) => ctx.executor(h)),
          {
            check: checkOptions(ctx, {
              sinceMs: activatedAtMs,
              sinceProcessStart: true,
              expectedNodes: cluster.expectedNodes,
            }),
            cluster: cluster.peers
              ? { peers: cluster.peers.map((h) => ctx.executor(h)) }
              : undefined,
            activatedAtMs,
            signal: ctx.signal,
            log: ctx.log,
          },
        ),
      (g) =>
        g.hosts
          .map(
            (h) =>
              `${h.host}: ${h.passed ? `passed (ready after ${h.readyAfterMs} ms)` : h.problems.join('; ')}`,
          )
          .join('\n'),
    );
    this.rec.addGate(gate);
    if (!gate.passed)
      throw new ExoDeployError(
        `the health gate failed: ${gate.hosts
          .flatMap((h) => h.problems.map((p) => `${h.host}: ${p}`))
          .slice(0, 3)
          .join('; ')}`,
        ExitCode.failed,
      );
    return gate;
  }

  private async smoke(batch: readonly Host[]): Promise<void> {
    const { ctx } = this;
    const smoke = await this.rec.step(
      'smoke',
      null,
      () =>
        smokeTest(
          batch[0]!.api,
          smokeSettings(ctx.config, batch.length),
          ctx.fetch,
          ctx.signal,
          managedClusterApis(ctx),
        ),
      (r) => JSON.stringify(r),
    );
    if (!smoke.ok)
      throw new ExoDeployError(
        `the smoke test failed: ${smoke.problems.join('; ')}`,
        ExitCode.failed,
      );
  }

  /** The hosts were read over connections opened before the test: each must take a new one. */
  private confirm(batch: readonly Host[], after: string): Promise<void> {
    return this.onEveryHost(
      batch.filter((h) => !h.local),
      (h) => this.rec.step('confirm', h.name, () => this.timers.mustConfirm(h, after)),
    );
  }

  private switch(batch: readonly Host[]): Promise<void> {
    return this.onEveryHost(batch, (h) =>
      this.rec.step(
        'switch',
        h.name,
        async () => {
          const out = await activateBuilt(this.ctx, h, this.builtPath(h), 'switch');
          await this.rec.setPhase(h.name, 'permanent');
          await this.timers.mustConfirm(h, 'switch');
          await this.timers.stop(h);
          return out;
        },
        (out) => out,
      ),
    );
  }

  /** Each host healthy after the switch, still on the exo process the gate passed. */
  private async finalCheck(
    batch: readonly Host[],
    activatedAtMs: number,
    cluster: ReturnType<Deployment['clusterAround']>,
    gate: GateResult,
  ): Promise<void> {
    const { ctx } = this;
    const finals = await this.rec.step(
      'final check',
      null,
      async () => {
        const options = checkOptions(ctx, {
          sinceMs: activatedAtMs,
          sinceProcessStart: true,
          expectedNodes: cluster.expectedNodes,
          keepSeenNodes: cluster.peers !== null,
        });
        const [checks, peerChecks] = await Promise.all([
          Promise.all(
            batch.map((h) => checkHost(ctx.executor(h), options, AFTER_ACTIVATION_PARTS)),
          ),
          Promise.all((cluster.peers ?? []).map((h) => readPeer(ctx.executor(h), options))),
        ]);
        if (cluster.peers) judgeMembership(checks, peerChecks);
        return checks;
      },
      (cs) =>
        cs.map((c) => `${c.host}: ${c.healthy ? 'healthy' : c.problems.join('; ')}`).join('\n'),
    );
    const pidAtGate = new Map(gate.hosts.map((h) => [h.host, h.lastSample?.unit?.mainPid ?? 0]));
    for (const c of finals) {
      this.rec.setFinalCheck(c.host, c);
      const restarted = c.unit ? c.unit.mainPid !== pidAtGate.get(c.host) : null;
      this.rec.setSwitchRestartedExo(c.host, restarted);
      if (restarted)
        ctx.log.warn(
          `${c.host}: switch restarted exo after the gate (PID ${pidAtGate.get(c.host)} → ${c.unit?.mainPid})`,
        );
    }
    const sick = finals.filter((c) => !c.healthy);
    if (sick.length)
      throw new ExoDeployError(
        `the final check failed: ${sick.map((c) => `${c.host}: ${c.problems[0]}`).join('; ')}`,
        ExitCode.failed,
      );
  }

  /** After a failure: the touched hosts of the scope back on the systems they ran, each checked
   * again, and the outcome that says where they are. */
  private async rollBack(): Promise<void> {
    const { ctx } = this;
    const names = hostsToRollBack(
      new Map(this.record.hosts.map((h) => [h.host, h.phase])),
      ctx.config.rollout.rollback_scope,
      this.activeBatch,
    );
    const hosts = ctx.hosts.filter((h) => names.includes(h.name));
    ctx.log.info(
      `rolling back ${hosts.map((h) => h.name).join(', ')} to the systems they ran before`,
    );
    await Promise.allSettled(hosts.map((h) => this.rollBackHost(h)));
    await this.checkRolledBack();
    const phases = this.record.hosts.map((h) => h.phase);
    if (phases.includes('rollback-failed'))
      this.rec.finish('rollback-failed', ExitCode.needsPerson);
    else if (phases.some(onNewSystem)) this.rec.finish('partly-rolled-back', ExitCode.failed);
    else this.rec.finish('rolled-back', ExitCode.failed);
  }

  /** Back on the exact system it ran (put there by the deployer, or by its own revert timer when
   * the deployer cannot reach it anew), then exo serving again. */
  private rollBackHost(h: Host): Promise<string> {
    const { ctx, rec, timers } = this;
    return rec.step(
      'rollback',
      h.name,
      async () => {
        const before = rec.host(h.name).before;
        if (this.lostInReboot.has(h.name)) {
          await rec.setPhase(h.name, 'rollback-failed');
          rec.addProblems(h.name, [
            'it did not come back from its reboot into the new system, which is its boot default: it needs a person at its console (the system it ran before is the generation below)',
          ]);
          return 'not reachable since its reboot';
        }
        try {
          // A host the deployer cannot reach anew is left to put itself back.
          const cutOff = timers.isLost(h) || !(await timers.confirm(h)).confirmed;
          // going back from a reboot is a reboot: the guard's own would race it
          if (!cutOff && timers.guardsReboot(h)) await timers.stop(h);
          const started = ctx.now();
          const activations = await restoreHost(
            ctx,
            h,
            before,
            cutOff ? { revertedBy: () => timers.awaitRevert(h) } : {},
          );
          await timers.stop(h);
          const serving = await waitUntilServing(ctx, ctx.executor(h), started);
          const problems = serving.passed ? [] : (serving.hosts[0]?.problems ?? []);
          // Back on the old system but exo unhealthy: only a failure when it was healthy before.
          if (problems.length && before.healthy) {
            await rec.setPhase(h.name, 'rollback-failed');
            rec.addProblems(
              h.name,
              problems.map((p) => `after rollback: ${p}`),
            );
          } else await rec.setPhase(h.name, 'rolled-back');
          return activations.join('\n');
        } catch (error) {
          await rec.setPhase(h.name, 'rollback-failed');
          rec.addProblems(h.name, [
            `rollback: ${error instanceof Error ? error.message : String(error)}`,
          ]);
          throw error;
        }
      },
      (out) => out,
    );
  }

  /** What each host that went back (or failed to) looks like now, for the report. */
  private async checkRolledBack(): Promise<void> {
    const { ctx } = this;
    const wentBack = ctx.hosts.filter((h) => {
      const { phase } = this.rec.host(h.name);
      return phase === 'rolled-back' || phase === 'rollback-failed';
    });
    const options = checkOptions(ctx, { sinceMs: ctx.now() });
    await Promise.all(
      wentBack.map(async (h) => {
        const check: HostCheck | null = await checkHost(
          ctx.executor(h),
          options,
          AFTER_ACTIVATION_PARTS,
        ).catch(() => null);
        this.rec.setFinalCheck(h.name, check);
      }),
    );
  }

  private builtPath(h: Host): string {
    return this.rec.host(h.name).built.systemPath as string;
  }

  private builtThere(): Host[] {
    return this.ctx.hosts.filter((h) => h.buildOn === 'target');
  }

  /** Runs fn for every host, at most max_parallel at once, and waits for all of them before
   * throwing the first failure: a host's step is never abandoned halfway because another failed. */
  private async onEveryHost(
    hosts: readonly Host[],
    fn: (h: Host) => Promise<unknown>,
  ): Promise<void> {
    throwFirstFailure(await mapLimit(hosts, this.ctx.config.rollout.max_parallel, fn));
  }
}

const touched = (h: HostRecord) => onNewSystem(h.phase);

/** After every task has settled (none is left running unobserved): the first failure, thrown. */
function throwFirstFailure(results: readonly PromiseSettledResult<unknown>[]): void {
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

/** Hosts that cannot activate a system or go back are refused before anything changes. */
function refuseUnfit(found: readonly { host: string; problems: string[] }[]): void {
  const unfit = found.filter((f) => f.problems.length);
  if (!unfit.length) return;
  throw usageError(
    `refusing to deploy: ${unfit.map((f) => `${f.host}: ${f.problems.join('; ')}`).join('\n  ')}`,
    "exo-deploy activates a system with its bin/switch-to-configuration, in a transient unit (systemd-run), and sets the profile with nix-env, as nixos-rebuild does: keep system.switch.enable = true (the default) and nix.enable = true in each host's configuration (a host that runs a system without switch-to-configuration needs one with it booted first: nixos-rebuild boot, then a reboot)",
  );
}
