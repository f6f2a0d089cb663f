// The worker's runners: one supervised "runner process" per instance that places a shard on this
// node, going Idle → (Connecting → Connected →) Loading → Loaded → WarmingUp → Ready like
// exo's runner (src/exo/worker/runner/runner.py, llm_inference/runner.py at v1.0.71), planned
// like src/exo/worker/plan.py and src/exo/worker/main.py, and failing like
// src/exo/worker/runner/supervisor.py (runner_supervisor.py at v1.0.71): a dead runner is found
// by the watchdog, reported Failed, shut down, and re-created with backoff until the instance
// has had 5 attempts, when the worker asks for its deletion.

import crypto from 'node:crypto';
import { status, tagOf } from './era.mjs';
import { emit, logger, loguruTraceback, pyTraceback, writeOut } from './log.mjs';

const envSeconds = (name, def) => {
  const v = Number(process.env[name]);
  return process.env[name] !== undefined && process.env[name] !== '' && v >= 0 ? v : def;
};

// exo's constants; the environment scales them for the stand-in's own tests
const WATCHDOG_S = () => envSeconds('EXO_STANDIN_WATCHDOG_INTERVAL', 5); // supervisor._watch_runner sleeps 5 s
const BACKOFF_SCALE = () => envSeconds('EXO_STANDIN_BACKOFF_SCALE', 1); // KeyedBackoff(base=0.5, cap=10.0)
const MAX_INSTANCE_RETRIES = 5; // EXO_MAX_INSTANCE_RETRIES
const SHUTDOWN_WAIT_S = () => 3 * BACKOFF_SCALE(); // the worker's fail_after(3) around a Shutdown task
const PLAN_INTERVAL_MS = 100; // Worker.plan_step sleeps 0.1 s

const W_SUP = 'exo.worker.runner.supervisor';
const W_MAIN = 'exo.worker.main:plan_step';
const W_RUN = 'exo.worker.runner.runner';

/** src/exo/utils/keyed_backoff.py: the n-th retry waits min(cap, base * 2^n) after the last attempt. */
class KeyedBackoff {
  constructor(base, cap) {
    this.base = base;
    this.cap = cap;
    this.attemptsOf = new Map();
    this.last = new Map();
  }
  shouldProceed(key) {
    const delay = Math.min(this.cap, this.base * 2 ** (this.attemptsOf.get(key) ?? 0));
    return performance.now() / 1000 - (this.last.get(key) ?? -Infinity) >= delay;
  }
  record(key) {
    this.last.set(key, performance.now() / 1000);
    this.attemptsOf.set(key, (this.attemptsOf.get(key) ?? 0) + 1);
  }
  attempts(key) {
    return this.attemptsOf.get(key) ?? 0;
  }
  reset(key) {
    this.attemptsOf.delete(key);
    this.last.delete(key);
  }
}

/** Python's str() of exo's Shutdown task, as "Task … dropped" warnings print it. */
const shutdownRepr = (iid, rid) =>
  `Shutdown(task_id='${crypto.randomUUID()}' task_status=<TaskStatus.Pending: 'Pending'> instance_id='${iid}' runner_id='${rid}')`;

class Supervisor {
  constructor(worker, iid, rid, inner) {
    this.worker = worker;
    this.iid = iid;
    this.rid = rid;
    this.inner = inner;
    const sh = Object.values(inner.shardAssignments.runnerToShard[rid])[0];
    this.layers = Math.max(1, sh.endLayer - sh.startLayer);
    this.multi = Object.keys(inner.shardAssignments.runnerToShard).length > 1;
    this.alive = true; // the runner process
    this.exitCode = null;
    this.ended = false; // RunnerSupervisor.run() has returned
    this.status = null; // the supervisor's view of its runner
    this.timers = []; // the runner process's own progress and its fault
    this.watchTimer = null;
    this.tasks = new Set(); // chat tasks in progress on this runner: { fail(message) }
    // how often the instance's other runners had failed when this one started: a failure
    // noticed later shuts this one down even if that runner has been re-created meanwhile
    this.othersFailuresAtStart = worker.node.allRunnerFailures();
  }

  get node() {
    return this.worker.node;
  }

  at(seconds, fn) {
    const t = setTimeout(fn, Math.max(0, seconds) * 1000);
    this.timers.push(t);
    return t;
  }

  cancelTimers() {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  setStatus(s) {
    this.status = s;
    this.worker.report(this.rid, s);
  }

  /** The runner process starts and walks through exo's states over runner_load_seconds. */
  start() {
    const n = this.node;
    const L = n.release.loadSeconds;
    const era = n.era;
    logger.info(
      `Fast synch flag: ${n.args.fast_synch === false ? 0 : 1}`,
      'exo.worker.runner.bootstrap:entrypoint:59',
    );
    if (era === 'libp2p') logger.info('hello from the runner', `${W_RUN}:__init__:93`);
    logger.info('runner created', `${W_RUN}:__init__:125`);
    this.setStatus(status.idle());
    // multi-node instances connect their group first (plan._init_distributed_backend)
    let t = 0;
    if (this.multi) {
      this.at(0, () => {
        logger.info('Worker plan: ConnectToGroup', `${W_MAIN}:225`);
        logger.info('runner connecting', `${W_RUN}:handle_first_task:239`);
        this.setStatus(status.connecting());
      });
      t = 0.1 * L;
      this.at(t, () => {
        this.setStatus(status.connected());
        logger.info('runner connected', `${W_RUN}:handle_first_task:247`);
      });
    }
    const loadEnd = t + (this.multi ? 0.6 : 0.7) * L;
    this.at(t, () => {
      logger.info('Worker plan: LoadModel', `${W_MAIN}:225`);
      logger.info('runner loading', `${W_RUN}:handle_first_task:256`);
      this.setStatus(status.loading(0, this.layers));
    });
    // one progress report half-way, as the loader reports layers
    this.at((t + loadEnd) / 2, () =>
      this.setStatus(status.loading(Math.floor(this.layers / 2), this.layers)),
    );
    this.at(loadEnd, () => {
      this.setStatus(status.loaded());
      logger.info('runner loaded', `${W_RUN}:handle_first_task:275`);
      logger.info('Worker plan: StartWarmup', `${W_MAIN}:225`);
      logger.info('runner warming up', `${W_RUN}:handle_first_task:279`);
      this.setStatus(status.warmingUp());
    });
    this.at(L, () => {
      logger.info(
        `runner initialized in ${(L + 0.0001).toFixed(6)} seconds`,
        `${W_RUN}:handle_first_task:284`,
      );
      this.setStatus(status.ready(era));
      logger.info('runner ready', `${W_RUN}:handle_first_task:295`);
    });

    // the fault of this node strikes every runner process S s after it started
    const f = n.fault;
    if (f.kind === 'runner-exit') this.at(f.seconds, () => this.die(1));
    if (f.kind === 'runner-crash') this.at(f.seconds, () => this.crash());
    if (f.kind === 'queue-closed') this.at(f.seconds, () => this.queueClosed());
    this.watch();
  }

  /** supervisor._watch_runner: every 5 s from the start, is the process still alive? */
  watch() {
    const W = WATCHDOG_S() * 1000;
    const tick = () => {
      if (this.ended) return;
      if (!this.alive) {
        this.checkRunner();
        return;
      }
      this.watchTimer = setTimeout(tick, W);
    };
    this.watchTimer = setTimeout(tick, W);
  }

  stopWatching() {
    clearTimeout(this.watchTimer);
  }

  /** The runner process dies without closing its channel (killed, crashed in native code, …). */
  die(code) {
    if (!this.alive || this.ended) return;
    this.alive = false;
    this.exitCode = code;
    // the dead process sends no more status updates; its last one stays in the state
    this.cancelTimers();
  }

  /**
   * A Python exception in the runner (worker/runner/bootstrap.py). main: the runner sends a
   * RunnerTerminationError and exits 1, and the supervisor reports it at once, with "Runner
   * error: …". v1.0.71: the runner reports itself RunnerFailed with the exception's message
   * and exits 0; the supervisor has nothing to add.
   */
  crash() {
    if (!this.alive || this.ended) return;
    const era = this.node.era;
    const msg = "exo stand-in: injected fault 'runner-crash'";
    const frames = [
      ['exo/worker/runner/bootstrap.py', 'entrypoint', 'runner.main()', era === 'libp2p' ? 52 : 89],
      [
        era === 'libp2p'
          ? 'exo/worker/runner/llm_inference/runner.py'
          : 'exo/worker/runner/runner.py',
        'main',
        'self.handle_first_task(item)',
      ],
      ['exo/worker/engines/mlx/generator/generate.py', 'step', 'raise RuntimeError(msg)'],
    ];
    this.cancelTimers();
    emit(
      'WARNING',
      `Runner ${this.rid} crashed with critical exception ${msg}`,
      `exo.worker.runner.bootstrap:entrypoint:${era === 'libp2p' ? 59 : 93}`,
      loguruTraceback(frames, 'RuntimeError', msg),
    );
    if (era === 'libp2p') {
      this.setStatus(status.failed(era, msg));
      logger.info('bye from the runner', 'exo.worker.runner.bootstrap:entrypoint:75');
      this.alive = false;
      this.exitCode = 0;
      return; // the watchdog will find exit code 0
    }
    logger.info('bye from the runner', 'exo.worker.runner.bootstrap:entrypoint:105');
    this.stopWatching();
    const where = `${W_SUP}:_check_runner`;
    logger.info("Checking runner's status", `${where}:369`);
    logger.info('Runner was found to be alive, stopping process', `${where}:371`);
    this.alive = false;
    this.exitCode = 1;
    logger.info('Runner exited with exit code 1', `${where}:375`);
    // RunnerTerminationError.__str__: "Type: message\n" + the formatted traceback
    const cause = `exitcode=1\nRunner error: RuntimeError: ${msg}\n${pyTraceback(frames, `RuntimeError: ${msg}`)}`;
    emit('ERROR', `Runner terminated with ${cause}`, `${where}:399`);
    for (const task of [...this.tasks])
      task.fail(`Runner shutdown before completing command (${cause})`);
    this.tasks.clear();
    this.setStatus(status.failed(era, `Terminated (${cause})`));
    this.finish();
  }

  /**
   * The runner's event channel is closed under it: exo's MpSender prints (plain print, not
   * loguru) and raises ClosedResourceError, the runner logs it and exits 0; the supervisor
   * then finds exit code 0 and reports nothing: the runner's last status stays in the state.
   */
  queueClosed() {
    if (!this.alive || this.ended) return;
    if (this.node.era === 'libp2p') {
      // v1.0.71 runs the runner with mp.Process: it shares exo's stdout
      writeOut('Unreachable code path - let me know!\n');
    } else {
      // main's AsyncProcess pipes the runner's stdout into the log (RunnerStdioHandler)
      logger.info('Runner stdout: Unreachable code path - let me know!', `${W_SUP}:<lambda>:107`);
    }
    emit(
      'WARNING',
      'Runner communication closed unexpectedly',
      'exo.worker.runner.bootstrap:entrypoint:91',
    );
    logger.info('bye from the runner', 'exo.worker.runner.bootstrap:entrypoint:105');
    this.alive = false;
    this.exitCode = 0;
    this.cancelTimers();
  }

  /** supervisor._check_runner, reached from the watchdog (the "Runner found to be dead" path). */
  checkRunner() {
    const where = `${W_SUP}:_check_runner`;
    logger.info("Checking runner's status", `${where}:369`);
    logger.info(`Runner exited with exit code ${this.exitCode}`, `${where}:375`);
    if (this.exitCode === 0) {
      this.finish();
      return;
    }
    const cause = `exitcode=${this.exitCode}`;
    emit(
      'ERROR',
      `Runner terminated with ${cause}`,
      `${where}:396`,
      loguruTraceback([], 'RuntimeError', 'Runner found to be dead'),
    );
    // in-progress generations get an ErrorChunk
    for (const task of [...this.tasks])
      task.fail(`Runner shutdown before completing command (${cause})`);
    this.tasks.clear();
    this.setStatus(status.failed(this.node.era, `Terminated (${cause})`));
    this.finish();
  }

  /** RunnerSupervisor.run()'s finally: the supervisor is done with its process. */
  finish() {
    this.ended = true;
    this.cancelTimers();
    this.stopWatching();
    logger.info('Runner supervisor shutting down', `${W_SUP}:run:255`);
    if (this.node.era === 'libp2p')
      logger.info('Runner process succesfully terminated', `${W_SUP}:run:164`);
    else
      logger.info(
        `Runner process successfully terminated: ${this.exitCode ?? 0}`,
        `${W_SUP}:run:271`,
      );
  }

  /**
   * The worker's Shutdown task. A live runner shuts down cleanly (RunnerShutdown takes it out
   * of the state); a dead one cannot be told: the task is dropped and its last status stays.
   */
  shutdown() {
    logger.info('Worker plan: Shutdown', `${W_MAIN}:225`);
    if (this.ended) {
      // the supervisor closed its task channel when it finished
      emit(
        'WARNING',
        `Task ${shutdownRepr(this.iid, this.rid)} dropped, runner closed communication.`,
        `${W_SUP}:start_task:297`,
      );
      return;
    }
    if (!this.alive) {
      // a dead process never acknowledges: the worker waits out its 3 s, then shuts the
      // supervisor down (the watchdog may still report meanwhile)
      this.cancelTimers();
      this.worker.blockFor(SHUTDOWN_WAIT_S());
      setTimeout(() => {
        if (!this.ended) this.finish();
      }, SHUTDOWN_WAIT_S() * 1000);
      return;
    }
    this.cancelTimers();
    this.stopWatching();
    for (const task of [...this.tasks]) task.cancelled?.();
    this.tasks.clear();
    logger.info('runner shutting down', `${W_RUN}:shutdown:314`);
    this.setStatus(status.shuttingDown());
    setTimeout(() => {
      this.worker.report(this.rid, null); // RunnerShutdown removes the runner from the state
      logger.info('bye from the runner', 'exo.worker.runner.bootstrap:entrypoint:105');
      this.alive = false;
      this.exitCode = 0;
      this.finish();
    }, 50);
  }
}

export class Worker {
  constructor(node) {
    this.node = node;
    this.supervisors = new Map(); // runner id -> Supervisor
    this.statuses = new Map(); // this node's runners as the cluster state holds them
    this.failures = new Map(); // runner id -> how many times it was reported Failed
    const scale = BACKOFF_SCALE();
    this.backoff = new KeyedBackoff(0.5 * scale, 10 * scale);
    this.deletionAsked = new Set();
    this.blockedUntil = 0;
  }

  /** The plan loop awaits its current task (the worker's plan_step is sequential). */
  blockFor(seconds) {
    this.blockedUntil = performance.now() + seconds * 1000;
  }

  start() {
    logger.info('Starting Worker', 'exo.worker.main:run:103');
    this.timer = setInterval(() => this.planStep(), PLAN_INTERVAL_MS);
  }

  stop() {
    clearInterval(this.timer);
    logger.info('Stopping Worker', 'exo.worker.main:run:121');
    for (const s of this.supervisors.values()) {
      s.cancelTimers();
      s.stopWatching();
      if (!s.ended) {
        s.ended = true;
        logger.info('Runner supervisor shutting down', `${W_SUP}:run:255`);
      }
    }
  }

  /** A status update of one of this node's runners (null: RunnerShutdown, out of the state). */
  report(rid, s) {
    if (tagOf(s) === 'RunnerFailed') this.failures.set(rid, (this.failures.get(rid) ?? 0) + 1);
    if (s) this.statuses.set(rid, s);
    else this.statuses.delete(rid);
    this.node.record('RunnerStatusUpdated', {
      runnerId: rid,
      runnerStatus: s ?? { RunnerShutdown: {} },
    });
  }

  /** What peers need to know about this node's runner processes (for chat across nodes). */
  processes() {
    const out = {};
    for (const [rid, s] of this.supervisors) out[rid] = { alive: s.alive && !s.ended };
    return out;
  }

  instanceDeleted(iid) {
    this.backoff.reset(iid);
    this.deletionAsked.delete(iid);
  }

  /** Instances deleted by another node's master: exo's worker resets their backoff too. */
  forgetGone(instances) {
    for (const iid of [...this.backoff.attemptsOf.keys()])
      if (!instances.has(iid)) this.instanceDeleted(iid);
  }

  /** One step of exo's plan loop: at most one task per step, in plan()'s order. */
  planStep() {
    if (performance.now() < this.blockedUntil) return;
    const node = this.node;
    const instances = node.allInstances();
    this.forgetGone(instances);
    const all = node.allRunnerStatuses();
    const failures = node.allRunnerFailures();
    const failed = (rid) => tagOf(all[rid]) === 'RunnerFailed';
    // peers are polled, so a short-lived Failed status may be seen only as a failure count
    const failedSince = (s, rid) =>
      failed(rid) || (failures[rid] ?? 0) > (s.othersFailuresAtStart[rid] ?? 0);

    // _kill_runner
    for (const s of this.supervisors.values()) {
      const inst = instances.get(s.iid);
      const others = inst
        ? Object.values(Object.values(inst)[0].shardAssignments.nodeToRunner).filter(
            (r) => r !== s.rid,
          )
        : [];
      if (!inst || tagOf(s.status) === 'RunnerFailed' || others.some((r) => failedSince(s, r))) {
        this.supervisors.delete(s.rid);
        s.shutdown();
        return;
      }
    }

    // _create_runner
    for (const [iid, wrapped] of instances) {
      const sa = Object.values(wrapped)[0].shardAssignments;
      const rid = sa.nodeToRunner[node.nodeId];
      if (!rid || this.supervisors.has(rid)) continue;
      const othersFailed = Object.values(sa.nodeToRunner).some((r) => r !== rid && failed(r));
      if (othersFailed && !failed(rid)) continue;
      if (!this.backoff.shouldProceed(iid)) continue;
      if (this.backoff.attempts(iid) >= MAX_INSTANCE_RETRIES) {
        if (!this.deletionAsked.has(iid)) {
          this.deletionAsked.add(iid);
          emit(
            'WARNING',
            `Instance ${iid} exceeded ${MAX_INSTANCE_RETRIES} retries, requesting deletion`,
            `${W_MAIN}:214`,
          );
          node.requestDeleteInstance(iid);
        }
        continue;
      }
      logger.info('Worker plan: CreateRunner', `${W_MAIN}:225`);
      const s = new Supervisor(this, iid, rid, Object.values(wrapped)[0]);
      this.supervisors.set(rid, s);
      this.backoff.record(iid);
      s.start();
      return;
    }
  }

  /**
   * Runs a generation on this node's runner of an instance, as exo's runner does: Running while
   * it generates, Ready after. Resolves 'done'; rejects with the ErrorChunk message when the
   * runner is found dead meanwhile. A dead (not yet found) runner never finishes.
   */
  generate(rid, seconds) {
    const s = this.supervisors.get(rid);
    return new Promise((resolve, reject) => {
      if (!s) {
        reject(new Error('no runner'));
        return;
      }
      let timer = null;
      const task = {
        fail: (m) => {
          clearTimeout(timer);
          reject(new Error(m));
        },
        cancelled: () => {
          clearTimeout(timer);
          reject(Object.assign(new Error('instance deleted'), { closed: true }));
        },
      };
      s.tasks.add(task);
      if (s.ended) {
        // the supervisor's task channel is closed: the task is dropped and never answered
        emit(
          'WARNING',
          `Task TextGeneration(command_id='${crypto.randomUUID()}' instance_id='${s.iid}') dropped, runner closed communication.`,
          `${W_SUP}:start_task:297`,
        );
        return;
      }
      if (!s.alive) return; // sent to a dead process: only the watchdog ends it
      s.setStatus(status.running());
      timer = setTimeout(() => {
        // a runner that died meanwhile never answers; the watchdog fails the task
        if (!s.alive || s.ended) return;
        s.tasks.delete(task);
        s.setStatus(status.ready(this.node.era));
        resolve('done');
      }, seconds * 1000);
    });
  }
}
