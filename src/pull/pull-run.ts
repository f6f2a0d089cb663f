// One pull, on the host itself: fetch the branch, decide whether to move, and if so build this
// host's system from the fetched commit and deploy it here through the same Deployment as a
// push (test, gate, switch, or back to the exact system it ran), with its journal and report.
// What it did and why is kept in the state file, and in a textfile for node-exporter.
import path from 'node:path';
import { loadConfig, localConfig, type Config } from '../config/load.js';
import type { Context } from '../context.js';
import type { Host } from '../config/host.js';
import { Deployment } from '../deploy/deployment.js';
import { HostMarkers } from '../deploy/host-marker.js';
import { lastDeployThatChanged, unresolvedHosts } from '../deploy/journal.js';
import { beforeThisBoot } from '../deploy/lock.js';
import { changedByRun, type DeployOutcome, type DeployRecord } from '../deploy/record.js';
import { undoDeploy } from '../deploy/undo.js';
import { ExitCode, ExoDeployError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { writeDeployReport } from '../report/deploy-report.js';
import { readlinkArgv } from '../programs/coreutils.js';
import { activationsSettled } from '../system/activate.js';
import { parseConfigRevision, readReleases, readRunningRelease } from '../system/generations.js';
import { decide } from './decide.js';
import { pullMetrics } from './metrics.js';
import { ancestry, checkOut, checkSignature, fetchTip, type Mirror } from './mirror.js';
import { emptyState, loadState, mark, revisions, saveState, type PullState } from './state.js';

export interface PullSettings {
  url: string;
  branch: string;
  /** This host's name in the repository's config and flake. */
  hostName: string;
  /** The config file in the repository, from its top. */
  repoConfig: string;
  allowedSigners: string | null;
  /** Where the state, the mirror, the deploy journals and the reports are kept. */
  dir: string;
  textfile: string | null;
}

export const pullPaths = (dir: string) => ({
  state: path.join(dir, 'state.json'),
  mirror: path.join(dir, 'repo'),
  deploys: path.join(dir, 'deploys'),
  reports: path.join(dir, 'reports'),
});

/** Fetching a large repository over a slow link is slow; a hung remote must not hold the timer. */
const FETCH_TIMEOUT_MS = 10 * 60_000;

export interface PullResult {
  host: string;
  url: string;
  branch: string;
  /** The branch's tip, when it could be fetched. */
  tip: string | null;
  /** The commit the host was at before this pull. */
  at: string | null;
  outcome: string;
  exitCode: number;
  reason: string;
  /** The deploy, when one ran. */
  deploy: DeployRecord | null;
  state: PullState | null;
}

/** The outcomes of a pull that ended well: it deployed the tip, or was already there. */
const WELL = new Set(['success', 'no-change', 'current']);

export class PullRun {
  private state: PullState;
  private readonly paths: ReturnType<typeof pullPaths>;

  private constructor(
    private readonly ctx: Context,
    private readonly settings: PullSettings,
    /** This host alone, local, with the toolkit's defaults: for what comes before the
     * repository's own config is known (and after, when it cannot be read). */
    private readonly here: Context,
    state: PullState,
  ) {
    this.paths = pullPaths(settings.dir);
    this.state = state;
    this.mirror = { exec: here.deployer, git: here.config.programs.git, dir: this.paths.mirror };
  }

  private readonly mirror: Mirror;

  /** Run under the deploy lock of `pullPaths(dir).deploys`. */
  static async run(ctx: Context, settings: PullSettings): Promise<PullResult> {
    const paths = pullPaths(settings.dir);
    const here = ctx.withConfig(
      await localConfig({
        hosts: { [settings.hostName]: { target: 'local' } },
        state_dir: paths.deploys,
        reports_dir: paths.reports,
      }),
    );
    try {
      const loaded = await loadState(paths.state);
      if ('unreadable' in loaded) {
        // not a first run: that would forget the commit the host is at
        const result: PullResult = {
          host: settings.hostName,
          url: settings.url,
          branch: settings.branch,
          tip: null,
          at: null,
          outcome: 'state-unreadable',
          exitCode: ExitCode.needsPerson,
          reason: `${loaded.unreadable}: nothing done; move it away to start afresh (the host then moves only to a commit that descends from the one its running system records)`,
          deploy: null,
          state: null,
        };
        await writeTextfile(settings, ctx, null, result);
        return result;
      }
      const run = new PullRun(
        ctx,
        settings,
        here,
        loaded.state ?? emptyState(settings.url, settings.branch),
      );
      return await run.pull();
    } finally {
      await here.close();
    }
  }

  private async pull(): Promise<PullResult> {
    const { ctx, settings } = this;
    // a deploy from elsewhere is changing this host: this run steps aside, before it fetches
    const host = this.here.hosts[0] as Host;
    const held = await new HostMarkers(this.here, 'pull').heldElsewhere(host);
    if (held) return this.busy(held);
    const undone = await this.undoStoppedRun();
    if (undone) return undone;
    const { mirror } = this;
    // the source the last pull followed, when the host's configuration has changed it since: the
    // first pull from the new one is not held to the commit the host is at (another branch need
    // not descend from it); who may change it is who configures the host
    const switchedFrom =
      this.state.url !== settings.url || this.state.branch !== settings.branch
        ? `${this.state.branch} of ${this.state.url}`
        : null;
    const fetched = await fetchTip(mirror, settings.url, settings.branch, FETCH_TIMEOUT_MS);
    const running = await this.atRevision();
    const { at } = running;
    if (running.unreadable)
      return this.finish({
        tip: fetched.fetched ? fetched.tip : null,
        at,
        outcome: 'host-unreadable',
        exitCode: ExitCode.failed,
        reason: `what this host runs cannot be read (${running.unreadable}): nothing done`,
      });
    if (!fetched.fetched)
      return this.finish({
        tip: null,
        at,
        outcome: 'fetch-failed',
        exitCode: ExitCode.failed,
        reason: `${fetched.why}: the host keeps running what it runs`,
      });
    const { tip } = fetched;
    // recorded once a pull from it has fetched: until then the next run is still the first
    this.state = { ...this.state, url: settings.url, branch: settings.branch };
    if (at && switchedFrom)
      ctx.log.warn(
        `${settings.hostName}: this host followed ${switchedFrom} before: the first pull from ${settings.branch} of ${settings.url} is not held to ${at.slice(0, 12)}, the commit it is at`,
      );
    const standing = !at
      ? null
      : at === tip
        ? 'same'
        : switchedFrom
          ? null
          : await ancestry(mirror, at, tip);
    const moving =
      standing === null || standing === 'descends' || (standing === 'same' && !running.runsAt);
    const verdict = decide({
      tip,
      at,
      ancestry: standing,
      runsAt: running.runsAt,
      bad: revisions(this.state.bad),
      held: revisions(this.state.held),
      signature:
        settings.allowedSigners && moving
          ? await checkSignature(mirror, tip, settings.allowedSigners)
          : null,
    });
    if (!verdict.move) {
      if (verdict.outcome === 'current' && this.state.deployed?.revision !== tip && running.system)
        // deployed by someone else (a push): the host runs the tip all the same
        this.state.deployed = {
          revision: tip,
          system: running.system,
          at: this.nowIso(),
          run: null,
        };
      return this.finish({
        tip,
        at,
        outcome: verdict.outcome,
        exitCode: verdict.exitCode,
        reason: verdict.reason,
      });
    }
    ctx.log.info(
      `${settings.hostName}: ${settings.branch} moved to ${tip.slice(0, 12)}${at ? ` from ${at.slice(0, 12)}` : ''}: deploying it here`,
    );
    await checkOut(mirror, tip);
    const config = await this.configAt(tip, at);
    if ('refused' in config) return config.refused;
    return this.deploy(config.config, tip, at);
  }

  /** A pull that was stopped midway (killed) can have left this host on a system it never
   * gated: back to the one it ran first, and the commit is not tried again. Not after a power
   * cut (the host booted its boot default), nor over a deploy since (a push). A host the stopped
   * run had made permanent passed its gate. */
  private async undoStoppedRun(): Promise<PullResult | null> {
    const name = this.settings.hostName;
    const last = await lastDeployThatChanged(this.paths.deploys);
    if (!last || !unresolvedHosts(last).includes(name)) return null;
    const left = last.hosts.get(name);
    if (!left || left.phase === 'permanent' || !left.built) return null;
    // booted since (a power cut): it runs its boot default, which a test activation never
    // changed; the restore's way back from a reboot is not for the machine it runs on
    if (last.startedAt && beforeThisBoot(last.startedAt)) return null;
    const host = this.here.hosts[0] as Host;
    const exec = this.here.executor(host);
    // the stopped run's activation may go on without it: what the host runs once it has ended
    await activationsSettled(exec, this.here.config.timeouts.activate);
    const running = (await exec.must(readlinkArgv([host.currentSystem]))).stdout.trim();
    // the system it gated, or the one before (an activation cut short with the run: the new
    // system's units may run): put back; anything else was deployed since, and is left alone
    if (
      running !== left.built &&
      running !== left.before?.running &&
      left.phase !== 'rollback-failed'
    )
      return null;
    // the commit it was deploying, as the system built from it records it
    const recorded = (await readReleases(exec, [left.built])).get(left.built)?.configRevision;
    const parsed = recorded ? parseConfigRevision(recorded) : null;
    const revision = parsed && !parsed.dirty ? parsed.commit : null;
    const what = revision?.slice(0, 12) ?? 'a commit';
    this.ctx.log.warn(
      `${name}: pull ${last.id} stopped while deploying ${what}, and left this host ${left.phase} on ${left.built}: putting it back first`,
    );
    // exo judged by that commit's own config (its API, its timeouts), where it loads
    let undoCtx = this.here;
    if (revision) {
      const repo = await this.repoConfigAt(revision);
      if ('why' in repo)
        this.ctx.log.warn(`${name}: ${repo.why}: exo is judged by the toolkit's defaults`);
      else undoCtx = this.here.withConfig(repo);
    }
    const undo = await undoDeploy(undoCtx, last).finally(async () => {
      if (undoCtx !== this.here) await undoCtx.close();
    });
    const { at } = await this.atRevision();
    // killed, or its own rollback failed: not tried again; stopped on purpose (Ctrl-C,
    // systemctl stop, a shutdown): nothing is known against it
    if (revision && last.outcome !== 'interrupted')
      this.markBad(revision, `its deploy (${last.id}) was stopped midway`);
    if (undo.exitCode !== ExitCode.ok)
      return this.finish({
        tip: null,
        at,
        outcome: 'restore-failed',
        exitCode: ExitCode.needsPerson,
        reason: `pull ${last.id} stopped midway, and putting this host back failed: ${undo.text}; a person must act (its journal, in ${this.paths.deploys}, says where the host stands)`,
      });
    this.state.rollbacks += 1;
    return this.finish({
      tip: null,
      at,
      outcome: 'restored',
      exitCode: ExitCode.failed,
      reason: `pull ${last.id} stopped midway: this host is back on the system it ran before it; ${last.outcome === 'interrupted' ? `${what} is tried again at the next run` : `${what} is not tried again until the branch moves on`}`,
    });
  }

  /** The commit the host is at: the one its running system records, else the one the last
   * pull moved it to (a system built from a dirty tree records none). */
  private async atRevision(): Promise<{
    at: string | null;
    /** The host runs `at` as built from it. */
    runsAt: boolean;
    system: string | null;
    unreadable?: string;
  }> {
    const host = this.here.hosts[0] as Host;
    let running: Awaited<ReturnType<typeof readRunningRelease>>;
    try {
      running = await readRunningRelease(this.here.executor(host));
    } catch (error) {
      if (!(error instanceof ExoDeployError)) throw error;
      // never taken for a host that runs nothing: that would lift the guard against going back
      return { at: null, runsAt: false, system: null, unreadable: error.message };
    }
    const system = running.running;
    const recorded = running.release?.configRevision;
    const { commit, dirty } = recorded
      ? parseConfigRevision(recorded)
      : { commit: null, dirty: false };
    // a build of a commit with changes ("COMMIT-dirty") is at that commit, not running it
    if (commit) return { at: commit, runsAt: !dirty, system };
    const deployed = this.state.deployed;
    return {
      at: deployed?.revision ?? null,
      runsAt: deployed !== null && deployed.system === system,
      system,
    };
  }

  /** The repository's config at the tip, or a refusal that marks the tip bad. */
  private async configAt(
    tip: string,
    at: string | null,
  ): Promise<{ config: Config } | { refused: PullResult }> {
    const repo = await this.repoConfig(tip);
    if (!('why' in repo)) return { config: repo };
    this.markBad(tip, repo.why);
    return {
      refused: await this.finish({
        tip,
        at,
        outcome: 'bad-config',
        exitCode: ExitCode.usage,
        reason: `${repo.why}: nothing done; ${tip.slice(0, 12)} is not tried again until the branch moves on`,
      }),
    };
  }

  /** The repository's config at `commit`, checked out for it. */
  private async repoConfigAt(commit: string): Promise<Config | { why: string }> {
    try {
      await checkOut(this.mirror, commit);
    } catch (error) {
      if (!(error instanceof ExoDeployError)) throw error;
      return { why: error.message };
    }
    return this.repoConfig(commit);
  }

  /** The repository's config as checked out (at `commit`), made this host's alone: local, its
   * own programs, its own state; and no reboot (a host cannot gate itself across one). */
  private async repoConfig(commit: string): Promise<Config | { why: string }> {
    const { settings } = this;
    const short = commit.slice(0, 12);
    let repo: Config;
    try {
      repo = await loadConfig(path.join(this.paths.mirror, settings.repoConfig));
    } catch (error) {
      if (!(error instanceof ExoDeployError)) throw error;
      return { why: `${short}'s ${settings.repoConfig}: ${error.message}` };
    }
    // the system must be built from the commit checked out, which it then records
    if (!repo.flakeIsPath || path.relative(this.paths.mirror, repo.flake).startsWith('..'))
      return {
        why: `${short}'s ${settings.repoConfig} names the flake ${repo.flake}, outside the repository: a pull builds only the commit it fetched`,
      };
    const host = repo.hosts.find((h) => h.name === settings.hostName);
    if (!host)
      return {
        why: `${short}'s ${settings.repoConfig} has no host "${settings.hostName}" (it has ${repo.hosts.map((h) => h.name).join(', ') || 'none'})`,
      };
    const base = this.here.config;
    return {
      ...repo,
      stateDir: base.stateDir,
      reportsDir: base.reportsDir,
      hosts: [{ ...host, target: 'local', local: true, sudo: false, buildOn: 'deployer' }],
      // the repository names the deployer's programs; this host has its own
      programs: base.programs,
      hooks: { timeout: repo.hooks.timeout },
      rollout: {
        ...repo.rollout,
        strategy: 'lockstep',
        canary: undefined,
        reboot: 'never',
        reboot_window: undefined,
      },
    };
  }

  private async deploy(config: Config, tip: string, at: string | null): Promise<PullResult> {
    const { ctx } = this;
    const deployCtx = ctx.withConfig(config);
    this.state.lastAttempt = {
      at: new Date(ctx.now()).toISOString(),
      revision: tip,
      outcome: 'deploying',
      exitCode: null,
      reason: `deploying ${tip.slice(0, 12)}`,
    };
    await saveState(this.paths.state, this.state);
    const deployment = new Deployment(deployCtx, {
      strategy: 'lockstep',
      force: false,
      reboot: 'never',
    });
    let refusal: ExoDeployError | null = null;
    try {
      await deployment.execute();
    } catch (error) {
      if (!(error instanceof ExoDeployError)) throw error;
      refusal = error;
    } finally {
      await deployCtx.close();
    }
    const record = deployment.record;
    deployment.setReportFiles(await writeDeployReport(record, config.reportsDir));
    const short = tip.slice(0, 12);
    const result = (outcome: string, exitCode: number, reason: string) =>
      this.finish({ tip, at, outcome, exitCode, reason, deploy: record });
    const host = record.hosts[0];
    if (refusal?.exitCode === ExitCode.locked) return this.busy(refusal, tip, at);
    if (refusal) {
      if (host?.rebootReasons?.length) {
        this.state = mark(
          this.state,
          'held',
          tip,
          this.nowIso(),
          `needs a reboot: ${host.rebootReasons.join('; ')}`,
        );
        return result(
          'held',
          refusal.exitCode,
          `${short} needs a reboot here (${host.rebootReasons.join('; ')}), and a pull does not reboot its own host: nothing done; deploy it from another machine (exo-deploy deploy reboots and gates it), or reboot into it yourself. It is not tried again until the branch moves on`,
        );
      }
      // what refuses a deploy before it starts is mostly the host's (its programs, its running
      // system): not held against the commit
      return result(
        'refused',
        refusal.exitCode,
        `${refusal.message}: nothing done; tried again at the next run`,
      );
    }
    const outcome = record.outcome as DeployOutcome;
    const exitCode = record.exitCode ?? ExitCode.failed;
    if (outcome === 'success' || outcome === 'no-change') {
      const system = host?.built.systemPath ?? host?.before.running ?? '';
      this.state.deployed = { revision: tip, system, at: this.nowIso(), run: record.id };
      return result(outcome, exitCode, `runs ${short}: ${system}`);
    }
    if (outcome === 'interrupted')
      return result(
        outcome,
        exitCode,
        `stopped while deploying ${short}; the next pull puts the host back first if it was left on an ungated system`,
      );
    const why = record.error?.split('\n')[0] ?? outcome;
    const report = `report: ${record.reportFiles?.markdown ?? '-'}`;
    if (!record.hosts.some((h) => changedByRun(h.phase)))
      // the host's Nix, the build, a substituter: what failed before anything was activated is
      // not known to be the commit's doing, and it changed nothing: tried again next time
      return result(
        outcome,
        exitCode,
        `${short} could not be deployed here (${why}): nothing was activated; tried again at the next run (${report})`,
      );
    this.markBad(tip, why);
    if (outcome === 'rolled-back' || outcome === 'partly-rolled-back') this.state.rollbacks += 1;
    const where =
      outcome === 'rollback-failed'
        ? `and putting the host back failed (${host?.problems.join('; ') || 'see the report'}): a person must act`
        : 'the host is back on the exact system it ran';
    return result(
      outcome,
      exitCode,
      `${short} failed here (${why}): ${where}; it is not tried again until the branch moves on (${report})`,
    );
  }

  /** Another deploy holds the host: nothing done, and nothing held against the commit. */
  private busy(held: ExoDeployError, tip: string | null = null, at: string | null = null) {
    return this.finish({
      tip,
      at,
      outcome: 'busy',
      exitCode: ExitCode.locked,
      reason: `${held.message}: nothing done; the next run tries again`,
    });
  }

  private markBad(revision: string, reason: string): void {
    this.state = mark(this.state, 'bad', revision, this.nowIso(), reason);
  }

  private nowIso(): string {
    return new Date(this.ctx.now()).toISOString();
  }

  private async finish(
    r: Pick<PullResult, 'tip' | 'at' | 'outcome' | 'exitCode' | 'reason'> & {
      deploy?: DeployRecord;
    },
  ): Promise<PullResult> {
    this.state.lastAttempt = {
      at: this.nowIso(),
      revision: r.tip,
      outcome: r.outcome,
      exitCode: r.exitCode,
      reason: r.reason,
    };
    if (WELL.has(r.outcome)) this.state.lastSuccessAt = this.nowIso();
    await saveState(this.paths.state, this.state);
    const result: PullResult = {
      host: this.settings.hostName,
      url: this.settings.url,
      branch: this.settings.branch,
      ...r,
      deploy: r.deploy ?? null,
      state: this.state,
    };
    await writeTextfile(this.settings, this.ctx, this.state, result);
    return result;
  }
}

async function writeTextfile(
  settings: PullSettings,
  ctx: Context,
  state: PullState | null,
  result: PullResult,
): Promise<void> {
  if (settings.textfile)
    await writeFileAtomic(
      settings.textfile,
      pullMetrics(settings.hostName, state, result, ctx.now()),
    );
}
