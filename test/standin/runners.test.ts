// Runners as exo's worker runs them: through the loading states to Ready; a dead runner found
// by the watchdog, reported Failed, re-created with backoff, and its instance deleted after 5
// attempts; a runner whose channel closes under it (exit 0) staying "Ready".
import { afterEach, describe, expect, it } from 'vitest';
import {
  FAST,
  RELEASES,
  freePorts,
  get,
  killAll,
  ready,
  request,
  start,
  until,
  untilSees,
  type Era,
  type StandIn,
} from './harness.js';

afterEach(() => killAll());

type Ev = Record<
  string,
  { runnerId?: string; runnerStatus?: Record<string, unknown>; instanceId?: string }
>;

/** The statuses a runner went through, from the node's /events (RunnerStatusUpdated). */
async function statusesOf(
  s: StandIn,
  rid?: string,
): Promise<{ rid: string; tags: string[]; statuses: Record<string, unknown>[] }> {
  const events = (await get(s.port, '/events')).json as Ev[];
  const updates = events
    .map((e) => e.RunnerStatusUpdated)
    .filter((u) => u && (!rid || u.runnerId === rid));
  const id = rid ?? updates[0]?.runnerId ?? '';
  const mine = updates.filter((u) => u!.runnerId === id).map((u) => u!.runnerStatus!);
  return { rid: id, tags: mine.map((st) => Object.keys(st)[0]!), statuses: mine };
}

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

describe.each(['libp2p', 'zenoh'] as const)('runner lifecycle, %s era', (era: Era) => {
  const ready_ =
    era === 'libp2p' ? { RunnerReady: {} } : { RunnerReady: { prefillServerPort: null } };
  const failed =
    era === 'libp2p'
      ? { RunnerFailed: { errorMessage: 'Terminated (exitcode=1)' } }
      : { RunnerFailed: { errorMessage: 'Terminated (exitcode=1)', diagnostics: [] } };

  it("the starting instance's runner loads over runner_load_seconds: Idle, Loading, Loaded, WarmingUp, Ready", async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'r',
      port: port!,
      release: { ...RELEASES[era], runner_load_seconds: 1 },
    });
    await ready(s);
    // not ready at once
    const first = Object.values(
      (await get(s.port, '/state/runners')).json as Record<string, object>,
    );
    expect(first.map((x) => Object.keys(x)[0])).not.toContain('RunnerReady');
    await until('ready', async () => (await statusesOf(s)).tags.includes('RunnerReady'));
    const { rid, tags, statuses } = await statusesOf(s);
    expect(tags).toEqual([
      'RunnerIdle',
      'RunnerLoading',
      'RunnerLoading',
      'RunnerLoaded',
      'RunnerWarmingUp',
      'RunnerReady',
    ]);
    expect(statuses[1]).toEqual({ RunnerLoading: { layersLoaded: 0, totalLayers: 16 } });
    expect(statuses[5]).toEqual(ready_);
    expect((await get(s.port, `/state/runners/${rid}`)).json).toEqual(ready_);
    const log = s.log();
    for (const line of [
      'Worker plan: CreateRunner',
      'runner created',
      'Worker plan: LoadModel',
      'runner loading',
      'runner loaded',
      'Worker plan: StartWarmup',
      'runner warming up',
      'runner ready',
    ]) {
      expect(log).toMatch(new RegExp(`\\| INFO    \\] ${line}$`, 'm'));
    }
  });

  it("a placed 2-node instance's runners also connect their group first", async () => {
    const ports = await freePorts(2);
    const release = { ...RELEASES[era], runner_load_seconds: 0.5 };
    const a = start({ name: 'a', port: ports[0]!, release, peers: [ports[1]!] });
    const b = start({ name: 'b', port: ports[1]!, release, peers: [ports[0]!] });
    const ids = [await ready(a), await ready(b)];
    await untilSees(a, ids);
    const model = 'mlx-community/Qwen3-0.6B-4bit';
    expect(
      (await request(a.port, 'POST', '/place_instance', { model_id: model, min_nodes: 2 })).status,
    ).toBe(200);
    const inst = await until('instance', async () => {
      const st = (await get(a.port, '/state')).json;
      return Object.values(st.instances)
        .map((i: any) => i.MlxRingInstance)
        .find((i: any) => i.shardAssignments.modelId === model);
    });
    const rb = inst.shardAssignments.nodeToRunner[ids[1]!];
    await until("b's runner ready", async () =>
      (await statusesOf(b, rb)).tags.includes('RunnerReady'),
    );
    expect((await statusesOf(b, rb)).tags).toEqual([
      'RunnerIdle',
      'RunnerConnecting',
      'RunnerConnected',
      'RunnerLoading',
      'RunnerLoading',
      'RunnerLoaded',
      'RunnerWarmingUp',
      'RunnerReady',
    ]);
    // a's state holds b's runner too
    await until(
      "b's runner in a's state",
      async () =>
        Object.keys((await get(a.port, `/state/runners/${rb}`)).json ?? {})[0] === 'RunnerReady',
    );
  });

  /** A node whose runner fault repeats until exo gives up on its starting instance. */
  const untilDeleted = async (name: string, fault: string) => {
    const [port] = await freePorts(1);
    const s = start({
      name,
      port: port!,
      release: { ...RELEASES[era], fault },
      env: { ...FAST, EXO_STANDIN_COLOR: '0' },
    });
    await ready(s);
    const iid = Object.keys((await get(s.port, '/state/instances')).json)[0]!;
    await until(
      'the deletion request',
      () => s.log().includes(`Instance ${iid} exceeded 5 retries, requesting deletion`),
      20_000,
    );
    return { s, iid };
  };

  it('runner-exit: found dead by the watchdog, Failed, re-created with backoff; after 5 attempts the instance is deleted', async () => {
    const { s, iid } = await untilDeleted('f', 'runner-exit:0.4');
    await until(
      'the instance to go',
      async () => Object.keys((await get(s.port, '/state/instances')).json).length === 0,
    );

    const log = s.log();
    expect(log).toMatch(
      new RegExp(`\\| WARNING \\] Instance ${iid} exceeded 5 retries, requesting deletion$`, 'm'),
    );
    // five runner processes, each found dead once by the watchdog path
    expect(count(log, /\| INFO {4}\] Worker plan: CreateRunner$/gm)).toBe(5);
    expect(
      count(
        log,
        /\| INFO {4}\] Checking runner's status\n.*\| INFO {4}\] Runner exited with exit code 1\n.*\| ERROR {3}\] Runner terminated with exitcode=1\nRuntimeError: Runner found to be dead\n/g,
      ),
    ).toBe(5);
    expect(count(log, /Runner found to be dead/g)).toBe(5);
    expect(count(log, /exceeded 5 retries/g)).toBe(1);
    expect(log).toMatch(
      era === 'libp2p'
        ? /\| INFO {4}\] Runner process succesfully terminated$/m
        : /\| INFO {4}\] Runner process successfully terminated: 1$/m,
    );
    expect(log).toMatch(
      /\| WARNING \] Task Shutdown\(.*\) dropped, runner closed communication\.$/m,
    );

    // each attempt went Failed and was re-created (Idle again) until the last
    const { rid, tags, statuses } = await statusesOf(s);
    expect(count(tags.join(' '), /RunnerFailed RunnerIdle/g)).toBe(4);
    expect(tags.at(-1)).toBe('RunnerFailed');
    expect(statuses.at(-1)).toEqual(failed);
    // the last failure stays in the state after the instance is gone (no RunnerShutdown came)
    expect((await get(s.port, '/state/runners')).json).toEqual({ [rid]: failed });
    expect(s.proc.exitCode).toBeNull();
  });

  it('runner-crash: "crashed with critical exception"; main adds "Runner error: …", v1.0.71 lets the runner report itself', async () => {
    const { s } = await untilDeleted('x', 'runner-crash:0.4');
    const log = s.log();
    const msg = "exo stand-in: injected fault 'runner-crash'";
    expect(
      count(
        log,
        new RegExp(
          `\\| WARNING \\] Runner [0-9a-f-]{36} crashed with critical exception ${msg}\\nTraceback \\(most recent call last\\):\\n`,
          'g',
        ),
      ),
    ).toBe(5);
    expect(log).not.toContain('Runner found to be dead');
    const { statuses } = await statusesOf(s);
    if (era === 'zenoh') {
      expect(
        count(
          log,
          /\| ERROR {3}\] Runner terminated with exitcode=1\nRunner error: RuntimeError: exo stand-in: injected fault 'runner-crash'\nTraceback \(most recent call last\):\n/g,
        ),
      ).toBe(5);
      const last = statuses.at(-1) as {
        RunnerFailed: { errorMessage: string; diagnostics: unknown[] };
      };
      expect(last.RunnerFailed.errorMessage).toMatch(
        /^Terminated \(exitcode=1\nRunner error: RuntimeError: exo stand-in: injected fault 'runner-crash'\nTraceback \(most recent call last\):\n[\s\S]*\nRuntimeError: exo stand-in: injected fault 'runner-crash'\n\)$/,
      );
      expect(last.RunnerFailed.diagnostics).toEqual([]);
    } else {
      expect(log).not.toContain('Runner terminated');
      expect(statuses.at(-1)).toEqual({ RunnerFailed: { errorMessage: msg } });
    }
  });

  it('queue-closed: the runner prints exo\'s "Unreachable code path", exits 0, and stays "Ready"', async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'q',
      port: port!,
      release: { ...RELEASES[era], fault: 'queue-closed:0.4' },
      env: { ...FAST, EXO_STANDIN_COLOR: '0' },
    });
    await ready(s);
    await until('the watchdog', () => s.log().includes('Runner exited with exit code 0'));
    const log = s.log();
    if (era === 'libp2p') {
      // the runner shares exo's stdout (mp.Process)
      expect(s.stdout()).toBe('Unreachable code path - let me know!\n');
      expect(log).not.toContain('Runner stdout:');
    } else {
      // main pipes the runner's stdout into the log
      expect(log).toMatch(/\| INFO {4}\] Runner stdout: Unreachable code path - let me know!$/m);
      expect(s.stdout()).toBe('');
    }
    expect(log).toMatch(/\| WARNING \] Runner communication closed unexpectedly$/m);
    expect(log).not.toContain('Runner terminated');
    expect(log).not.toContain('Runner found to be dead');
    expect(count(log, /Worker plan: CreateRunner/g)).toBe(1);
    const runners = Object.values((await get(s.port, '/state/runners')).json);
    expect(runners).toEqual([ready_]);
    expect(s.proc.exitCode).toBeNull();
  });
});
