// The deploy pipeline's branches and exit codes, against a simulated fleet (fake run layer).
import { mkdtemp, readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run as deploy } from '../../src/commands/deploy.js';
import { createContext } from '../../src/context.js';
import { ExitCode, type ExoDeployError } from '../../src/errors.js';
import type { Log } from '../../src/output/log.js';
import type { ParsedOptions } from '../../src/options.js';
import { fakeRunner } from '../sim/run-layer.js';
import { fleetFetch, fleetRule, release, simFleet, sys, type SimFleet } from '../sim/fleet.js';

interface Setup {
  fleet: SimFleet;
  dir: string;
  warnings: string[];
  commands: () => string[];
  run: (extra?: {
    signal?: AbortSignal;
  }) => Promise<{ exitCode: number; data: any; error?: ExoDeployError }>;
  command: (
    name: 'status' | 'rollback' | 'deploy' | 'check',
    options?: ParsedOptions,
  ) => Promise<{ exitCode: number; data: any; text: string }>;
}

async function setup(
  configure: (f: SimFleet) => void = () => {},
  extraToml = '',
  names = ['h1', 'h2'],
  healthToml = '',
): Promise<Setup> {
  const fleet = simFleet(names);
  configure(fleet);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-unit-'));
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  await writeFile(path.join(dir, 'flake.lock'), '{}\n');
  const config = path.join(dir, 'exo-deploy.toml');
  await writeFile(
    config,
    `${extraToml}[health]\nsoak = "300ms"\ninterval = "50ms"\nready_timeout = "1s"\ntimeout = "200ms"\n${healthToml}${fleet.hosts.map((h) => `[hosts.${h.name}]\ntarget = "root@${h.address}"\n`).join('')}`,
  );
  const fake = fakeRunner(fleetRule(fleet));
  const warnings: string[] = [];
  const log: Log = {
    info() {},
    verbose() {},
    step() {},
    warn: (m) => warnings.push(m),
  };
  const context = (signal: AbortSignal, options: ParsedOptions = {}) =>
    createContext({ config, yes: true, ...options }, [], {
      runner: fake.runner,
      log,
      signal,
      fetch: fleetFetch(fleet),
      ...(fleet.clock ? { now: fleet.clock } : {}),
    });
  return {
    fleet,
    dir,
    warnings,
    commands: () => fake.lines(),
    command: async (name, options = {}) => {
      const ctx = await context(new AbortController().signal, options);
      try {
        const mod = await {
          status: () => import('../../src/commands/status.js'),
          rollback: () => import('../../src/commands/rollback.js'),
          deploy: () => import('../../src/commands/deploy.js'),
          check: () => import('../../src/commands/check.js'),
        }[name]();
        return await mod.run(ctx);
      } finally {
        await ctx.close();
      }
    },
    run: async (extra = {}) => {
      const ctx = await context(extra.signal ?? new AbortController().signal);
      try {
        const outcome = await deploy(ctx);
        return { exitCode: outcome.exitCode, data: outcome.data };
      } catch (error) {
        return {
          exitCode: (error as ExoDeployError).exitCode,
          data: undefined,
          error: error as ExoDeployError,
        };
      } finally {
        await ctx.close();
      }
    },
  };
}

const running = (f: SimFleet) => f.hosts.map((h) => h.running);

/** Ctrl-C (the controller aborted) as soon as the fleet logs a line starting with `line`. */
function abortWhen(f: SimFleet, line: string, controller: AbortController): void {
  const log = f.log;
  f.log = new Proxy(log, {
    get(target, prop, receiver) {
      if (prop === 'push')
        return (l: string) => {
          if (l.startsWith(line)) controller.abort(new Error('SIGINT'));
          return target.push(l);
        };
      return Reflect.get(target, prop, receiver);
    },
  });
}
/** What was built and activated, in order: `build h1 h2` (one Nix process), `test h1 2.0.0`
 * (switch-to-configuration of that version's system), `switch h2 2.0.0 (nixos-rebuild)`. */
const rebuilds = (s: Setup) =>
  s.fleet.log.flatMap((l) => {
    const build = /^deployer: nix build (.*)$/.exec(l);
    if (build) return [`build ${build[1]}`];
    const stc = /^(\S+): switch-to-configuration (\S+) (\S+)/.exec(l);
    if (stc) return [`${stc[2]} ${stc[1]} ${stc[3]}`];
    const rebuild = /^deployer: nixos-rebuild (\S+) --store-path (\S+)/.exec(l);
    return rebuild ? [`${rebuild[1]} ${rebuild[2]} (nixos-rebuild)`] : [];
  });

describe('deploy', () => {
  it('success: build, copy, test, gate, switch on every host; exit 0; a report in both forms', async () => {
    const s = await setup();
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(r.data.outcome).toBe('success');
    expect(running(s.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '2.0.0')]);
    expect(s.fleet.hosts.map((h) => h.profile)).toEqual([2, 2]);
    // evaluated and built once, in one Nix process; the built systems activated as they are
    expect(rebuilds(s)).toEqual([
      'build h1 h2',
      'test h1 2.0.0',
      'test h2 2.0.0',
      'switch h1 2.0.0',
      'switch h2 2.0.0',
    ]);
    expect(s.commands().filter((c) => c.startsWith('nixos-rebuild'))).toEqual([
      'nixos-rebuild --help',
    ]);
    expect(r.data.hosts.map((h: { built: { systemPath: string } }) => h.built.systemPath)).toEqual([
      sys('h1', '2.0.0'),
      sys('h2', '2.0.0'),
    ]);
    expect(r.data.hosts.map((h: { phase: string; diff: string[] }) => [h.phase, h.diff])).toEqual([
      ['permanent', ['exo: 1.0.0 → 2.0.0, +1.2 KiB']],
      ['permanent', ['exo: 1.0.0 → 2.0.0, +1.2 KiB']],
    ]);
    const md = await readFile(r.data.reportFiles.markdown, 'utf8');
    expect(md).toContain('**SUCCESS');
    expect(JSON.parse(await readFile(r.data.reportFiles.json, 'utf8')).outcome).toBe('success');
    // each host's revert timer ran from before its test until after its switch, and is gone
    for (const h of ['h1', 'h2']) {
      const own = s.fleet.log
        .filter((l) => l.startsWith(`${h}: `))
        .map((l) => l.slice(h.length + 2));
      expect(own.filter((l) => /^(revert timer|switch-to-configuration)/.test(l))).toEqual([
        'revert timer armed',
        'switch-to-configuration test 2.0.0',
        'switch-to-configuration switch 2.0.0',
        'revert timer stopped',
      ]);
    }
    expect(s.fleet.hosts.map((h) => h.revertTimers?.size)).toEqual([0, 0]);
    expect(
      r.data.hosts.map((h: { revertTimer: { state: string } }) => h.revertTimer.state),
    ).toEqual(['stopped', 'stopped']);
    // each host was confirmed over a new connection after test, after the gate and after switch
    expect(
      s.commands().filter((c) => c.includes('ControlPath=none') && c.includes('systemctl restart')),
    ).toHaveLength(6);
  });

  it('a host that cannot activate a store path or go back is refused with exit 2 before anything changes: a system without switch-to-configuration, no systemd-run', async () => {
    const refused = async (configure: (f: SimFleet) => void, why: RegExp) => {
      const s = await setup(configure);
      const r = await s.run();
      expect(r.exitCode).toBe(ExitCode.usage);
      expect(r.error?.message).toMatch(why);
      expect(r.error?.details.hint).toMatch(/system\.switch\.enable = true/);
      expect(rebuilds(s).filter((c) => !c.startsWith('build'))).toEqual([]);
      expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
      expect(s.fleet.hosts.map((h) => h.marker)).toEqual([undefined, undefined]);
      return s;
    };
    // the new system of h2 could only be booted: refused after the build, before backup and copy
    const built = await refused(
      (f) => f.unswitchable.add(sys('h2', '2.0.0')),
      /refusing to deploy: h2: the system built for it \(\/nix\/store\/h2200\S+\) has no bin\/switch-to-configuration/,
    );
    expect(built.commands().some((c) => / copy /.test(c))).toBe(false);
    // what the hosts run could not be gone back to: refused at preflight, before the build
    const running_ = await refused(
      (f) => f.unswitchable.add('/run/current-system'),
      /h1: the system it runs \(\/run\/current-system\) has no bin\/switch-to-configuration/,
    );
    expect(rebuilds(running_)).toEqual([]);
    await refused(
      (f) => f.missingPrograms.add('systemd-run'),
      /h1: it has no systemd-run on the PATH/,
    );
  });

  it('no room for a backup: the deploy stops before anything is activated, and no half-made backup or GC root is left', async () => {
    const s = await setup((f) => (f.hosts[1]!.stateBytes = 200 * 1024 ** 3));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.error).toMatch(
      /h2: no room for a backup in \/var\/backups\/exo: exo's state is up to 200\.00 GiB to archive, 95\.37 GiB free there/,
    );
    expect(rebuilds(s).filter((c) => !c.startsWith('build'))).toEqual([]);
    const removed = s
      .commands()
      .find(
        (c) =>
          / rm -rf -- \/var\/backups\/exo\/\.partial-\S+ \/nix\/var\/nix\/gcroots\/exo-deploy-backups\//.test(
            c,
          ) && c.includes('10.99.0.3'),
      );
    expect(removed).toBeDefined();
  });

  it('a release that stops sshd: the host the deployer cannot reach anew puts itself back with its revert timer; the others are rolled back; nothing is left armed', async () => {
    const s = await setup((f) => f.cutsSsh.add('h2'));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(r.data.error).toMatch(
      /h2: after test, cannot be reached over a new ssh connection \(.*Connection refused/,
    );
    // found before the gate: no host was gated while h2 put itself back
    expect(r.data.steps.map((x: { step: string }) => x.step)).not.toContain('health gate');
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(s.fleet.hosts.map((h) => h.profile)).toEqual([1, 1]);
    // h2 was not activated by the deployer after its test: its own timer put it back
    expect(rebuilds(s).filter((c) => c.endsWith('h2 1.0.0'))).toEqual([]);
    expect(s.fleet.log).toContain('h2: revert timer fired');
    expect(rebuilds(s).filter((c) => c.endsWith('h1 1.0.0'))).toEqual(['test h1 1.0.0']);
    expect(
      r.data.hosts.map((h: { revertTimer: { state: string }; phase: string }) => [
        h.phase,
        h.revertTimer.state,
      ]),
    ).toEqual([
      ['rolled-back', 'stopped'],
      ['rolled-back', 'fired'],
    ]);
    expect(s.fleet.hosts.map((h) => h.revertTimers?.size)).toEqual([0, 0]);
    expect(
      r.data.steps.find(
        (x: { step: string; host: string }) => x.step === 'rollback' && x.host === 'h2',
      ).outputTail,
    ).toMatch(/its revert timer exo-deploy-revert-\S+ put it back/);
    expect(await readFile(r.data.reportFiles.markdown, 'utf8')).toMatch(
      /\| h2 \|.*\| rolled-back \(it put itself back: its revert timer fired\) \|/,
    );
  });

  it('the copy lets each target substitute from its own caches, unless substitute_on_target = false', async () => {
    const copies = (s: Setup) => s.commands().filter((c) => / copy /.test(c));
    const s = await setup();
    expect((await s.run()).exitCode).toBe(ExitCode.ok);
    expect(copies(s)).toHaveLength(2);
    for (const c of copies(s))
      expect(c).toMatch(/copy --substitute-on-destination --to ssh:\/\/root@10\.99\.0\.\d /);
    const off = await setup(() => {}, '[defaults]\nsubstitute_on_target = false\n');
    expect((await off.run()).exitCode).toBe(ExitCode.ok);
    expect(copies(off)).toHaveLength(2);
    for (const c of copies(off)) expect(c).not.toContain('--substitute-on-destination');
  });

  it('build_on = "target": the flake goes to each host, which builds its own system; nothing is copied; the same exact-path activation', async () => {
    // this machine's nixos-rebuild has --store-path, but would copy from its own store, where
    // the hosts' systems are not: they are activated by exo-deploy's own steps on each host
    const s = await setup((f) => (f.storePath = true), '[defaults]\nbuild_on = "target"\n');
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(s.commands().filter((c) => /^nixos-rebuild (test|switch)/.test(c))).toEqual([]);
    expect(s.fleet.log.filter((l) => /nix build|flake archive/.test(l)).sort()).toEqual([
      'deployer: flake archive to h1',
      'deployer: flake archive to h2',
      'h1: nix build h1',
      'h2: nix build h2',
    ]);
    expect(s.commands().filter((c) => / copy /.test(c))).toEqual([]);
    expect(running(s.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '2.0.0')]);
    expect(
      r.data.hosts.map((h: { built: { systemPath: string; exo: string } }) => [
        h.built.systemPath,
        h.built.exo,
      ]),
    ).toEqual([
      [sys('h1', '2.0.0'), '2.0.0'],
      [sys('h2', '2.0.0'), '2.0.0'],
    ]);
    expect(rebuilds(s)).toEqual([
      'test h1 2.0.0',
      'test h2 2.0.0',
      'switch h1 2.0.0',
      'switch h2 2.0.0',
    ]);
  });

  it('no change: hosts already run the built system; nothing is activated; exit 0', async () => {
    const s = await setup((f) => {
      for (const h of f.hosts) f.built.set(h.name, h.running);
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(r.data.outcome).toBe('no-change');
    expect(rebuilds(s)).toEqual(['build h1 h2']);
  });

  it('a failed build changes no host and exits 1', async () => {
    const s = await setup((f) => (f.buildExit = 1));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('failed');
    expect(rebuilds(s).filter((c) => !c.startsWith('build'))).toEqual([]);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
  });

  it('an unreachable host stops the deploy at preflight: nothing built, nothing activated, exit 1', async () => {
    const s = await setup((f) => (f.hosts[1]!.unreachable = true));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.error).toMatch(/h2: cannot reach root@10\.99\.0\.3 over ssh/);
    expect(rebuilds(s)).toEqual([]);
  });

  it('units failing in `test` on one host: every activated host goes back to its recorded system; exit 1', async () => {
    const s = await setup((f) => f.testExit.set('h2', 4));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(s.fleet.log).toEqual(
      expect.arrayContaining([
        'h1: switch-to-configuration test 1.0.0',
        'h2: switch-to-configuration test 1.0.0',
      ]),
    );
    expect(rebuilds(s).filter((c) => c.startsWith('switch'))).toEqual([]);
    expect(r.data.error).toContain(
      `h2: test of ${sys('h2', '2.0.0')} exited 4: units failed to start`,
    );
  });

  it('a host running another system than the one built after `test` fails and is rolled back; nothing is made permanent', async () => {
    const s = await setup((f) => f.runsInstead.set('h2', sys('h2', '9.9.9')));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(r.data.error).toContain(
      `h2: after test, it runs ${sys('h2', '9.9.9')}, not the system built and copied for it (${sys('h2', '2.0.0')})`,
    );
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(rebuilds(s).filter((c) => c.startsWith('switch'))).toEqual([]);
  });

  it('the gate failing on one host (a dead runner) rolls back the whole cluster; exit 1; the report names the evidence', async () => {
    const s = await setup((f) => f.hosts[1]!.behaviour.set(sys('h2', '2.0.0'), 'runner-failed'));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(s.fleet.hosts.map((h) => h.profile)).toEqual([1, 1]);
    const md = await readFile(r.data.reportFiles.markdown, 'utf8');
    expect(md).toContain('**ROLLED BACK');
    expect(md).toContain('Runner found to be dead');
  });

  it('the gate fails closed: a journal it cannot read, or one with more lines than it reads, fails the host', async () => {
    const unreadable = await setup((f) => (f.hosts[1]!.journalUnreadable = true));
    const r = await unreadable.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(
      r.data.gate.hosts.find((h: { host: string }) => h.host === 'h2').problems.join('\n'),
    ).toMatch(/cannot read exo\.service's journal.*insufficient permissions/);
    const noisy = await setup((f) => (f.hosts[1]!.journalNoise = 20_000));
    const n = await noisy.run();
    expect(n.exitCode).toBe(ExitCode.failed);
    expect(
      n.data.gate.hosts.find((h: { host: string }) => h.host === 'h2').problems.join('\n'),
    ).toMatch(/more than 20000 journal lines since .*: the earliest were not read/);
  });

  it('a failing final check after switch points the profile back too', async () => {
    const s = await setup((f) => {
      // healthy through the gate, broken once made permanent: switch restarts into a bad state
      const h2 = f.hosts[1]!;
      const built = sys('h2', '2.0.0');
      let switched = false;
      const log = f.log;
      f.log = new Proxy(log, {
        get(target, prop, receiver) {
          if (prop === 'push') {
            return (line: string) => {
              if (line === 'h2: switch-to-configuration switch 2.0.0') switched = true;
              if (switched) h2.behaviour.set(built, 'down');
              return target.push(line);
            };
          }
          return Reflect.get(target, prop, receiver);
        },
      });
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(s.fleet.hosts.map((h) => h.profile)).toEqual([1, 1]);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(s.fleet.log).toEqual(
      expect.arrayContaining([
        'h1: profile → generation 1',
        'h2: profile → generation 1',
        'h2: switch-to-configuration switch 1.0.0',
      ]),
    );
  });

  it('a rollback that fails on a host exits 3 and says what state that host is in', async () => {
    const s = await setup((f) => {
      f.hosts[1]!.behaviour.set(sys('h2', '2.0.0'), 'runner-failed');
      f.hosts[1]!.activationExit.set(`${sys('h2', '1.0.0')} test`, 1);
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.needsPerson);
    expect(r.data.outcome).toBe('rollback-failed');
    expect(r.data.hosts.map((h: { phase: string }) => h.phase)).toEqual([
      'rolled-back',
      'rollback-failed',
    ]);
    const md = await readFile(r.data.reportFiles.markdown, 'utf8');
    expect(md).toContain('**ROLLBACK FAILED');
    expect(md).toMatch(
      /\*\*h2\*\* could not be brought back to `\/nix\/store\/h2100.*exo-1\.0\.0`/,
    );
  });

  it('Ctrl-C during the gate stops, reports the interruption and exits 130', async () => {
    const controller = new AbortController();
    const s = await setup((f) =>
      abortWhen(f, 'h2: switch-to-configuration test 2.0.0', controller),
    );
    const r = await s.run({ signal: controller.signal });
    expect(r.exitCode).toBe(ExitCode.interrupted);
    expect(r.data.outcome).toBe('interrupted');
    expect(r.data.hosts.map((h: { phase: string }) => h.phase)).toEqual(['activated', 'activated']);
    expect(rebuilds(s).filter((c) => c.startsWith('switch'))).toEqual([]);
    // interrupted on purpose: the revert timers are stopped, the hosts left as they are
    expect(s.fleet.log.filter((l) => l.includes('revert timer'))).toEqual(
      expect.arrayContaining(['h1: revert timer stopped', 'h2: revert timer stopped']),
    );
    expect(s.fleet.hosts.map((h) => h.revertTimers?.size)).toEqual([0, 0]);

    // What the journal on disk says, and what status and rollback --last make of it.
    const status = await s.command('status');
    expect(status.exitCode).toBe(ExitCode.failed);
    expect(
      status.data.hosts.map((h: { testActivation: boolean; lastDeploy: { phase: string } }) => [
        h.testActivation,
        h.lastDeploy.phase,
      ]),
    ).toEqual([
      [true, 'activated'],
      [true, 'activated'],
    ]);
    expect(status.text).toMatch(/last deploy \S+ \(deploy h1,h2\): interrupted/);
    expect(status.text).toContain('hosts it left on a new system: h1 (activated), h2 (activated)');
    // meanwhile h2's marker became another deploy's (a leftover taken over elsewhere): not ours to remove
    const others = `${JSON.stringify({ run: '20261130-000000-000', deployer: 'elsewhere', user: 'ops', pid: 1, startedAt: new Date().toISOString() })}\n`;
    s.fleet.hosts[1]!.marker = others;
    const undo = await s.command('rollback', { last: true });
    expect(undo.exitCode, undo.text).toBe(ExitCode.ok);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(s.fleet.hosts.map((h) => h.marker)).toEqual([undefined, others]);
    s.fleet.hosts[1]!.marker = undefined;
    const again = await s.command('rollback', { last: true });
    expect(again.text).toContain('nothing to roll back');
    const after = await s.command('status');
    expect(after.exitCode).toBe(ExitCode.ok);
  });

  it('after Ctrl-C left test activations: a deploy over them is refused (exit 2) unless --over-unresolved, which gates them and makes them permanent; a run that changed nothing does not hide the interrupted one', async () => {
    const controller = new AbortController();
    const s = await setup((f) =>
      abortWhen(f, 'h2: switch-to-configuration test 2.0.0', controller),
    );
    expect((await s.run({ signal: controller.signal })).exitCode).toBe(ExitCode.interrupted);
    // the interrupted process is gone (here it is this one): its markers are leftovers
    for (const h of s.fleet.hosts)
      h.marker = `${JSON.stringify({ ...JSON.parse(h.marker as string), pid: 2 ** 22 + 12345 })}\n`;
    const deploy = (options: ParsedOptions = {}) =>
      s
        .command('deploy', { json: true, ...options })
        .catch((e: ExoDeployError) => ({ exitCode: e.exitCode, data: null, text: e.message }));
    const refused = await deploy();
    expect(refused.exitCode).toBe(ExitCode.usage);
    expect(refused.text).toMatch(
      /deploy \S+ \(interrupted\) left h1 \(activated\), h2 \(activated\) unresolved/,
    );
    // a run over it that changes no host (its build fails) does not hide it from rollback --last
    s.fleet.buildExit = 1;
    expect((await deploy({ 'over-unresolved': true })).exitCode).toBe(ExitCode.failed);
    s.fleet.buildExit = 0;
    expect((await s.command('status')).text).toContain(
      'hosts it left on a new system: h1 (activated), h2 (activated)',
    );
    // told to: the test activations are gated and made permanent, not taken for "no change"
    const over = await deploy({ 'over-unresolved': true });
    expect(over.exitCode, over.text).toBe(ExitCode.ok);
    expect(over.data.outcome).toBe('success');
    expect(s.fleet.hosts.map((h) => h.generations.get(h.profile))).toEqual([
      sys('h1', '2.0.0'),
      sys('h2', '2.0.0'),
    ]);
    // and a plain re-run now finds nothing to do
    expect((await deploy()).data.outcome).toBe('no-change');
  });

  it('a second deploy while the lock is held exits 4 and names the holder; a stale lock is taken over', async () => {
    const s = await setup();
    const lockDir = path.join(s.dir, '.exo-deploy');
    await mkdir(lockDir, { recursive: true });
    // taken since this machine booted, by a process that runs
    const startedAt = new Date(Date.now() - 60_000).toISOString();
    const holder = {
      pid: process.pid,
      host: os.hostname(),
      user: 'ops',
      startedAt,
      command: 'deploy h1,h2',
    };
    await writeFile(path.join(lockDir, 'deploy.lock'), JSON.stringify(holder));
    const held = await s.run();
    expect(held.exitCode).toBe(ExitCode.locked);
    expect(held.error?.message).toContain(
      `ops@${os.hostname()}, PID ${process.pid}, since ${startedAt}`,
    );
    expect(rebuilds(s)).toEqual([]);

    await writeFile(
      path.join(lockDir, 'deploy.lock'),
      JSON.stringify({ ...holder, pid: 2 ** 22 + 12345 }),
    );
    const taken = await s.run();
    expect(taken.exitCode).toBe(ExitCode.ok);
    expect(s.warnings.join('\n')).toMatch(
      new RegExp(`taking over a stale deploy lock \\(PID \\d+ since ${startedAt} is gone\\)`),
    );
  });
});

describe('deploy strategies', () => {
  const three = ['h1', 'h2', 'h3'];
  /** The activations of the new systems, in order: `test h1`, `switch h1`, … */
  const order = (s: Setup) =>
    rebuilds(s)
      .filter((c) => /^(test|switch) \S+ 2\.0\.0/.test(c))
      .map((c) => c.split(' ').slice(0, 2).join(' '));

  /** Every system of the fleet, old and new, carries this release. */
  const releases = (f: SimFleet, of: (version: string) => object) => {
    for (const h of f.hosts)
      for (const v of ['1.0.0', '2.0.0']) f.releases.set(sys(h.name, v), of(v));
  };

  it("rolling is refused when the new systems change exo's era: exit 2, nothing activated, and says what differs where", async () => {
    const s = await setup(
      (f) => {
        releases(f, (v) => release(v, 'libp2p', 'lab'));
        for (const h of f.hosts)
          f.releases.set(sys(h.name, '2.0.0'), release('2.0.0', 'zenoh', 'lab'));
      },
      '[rollout]\nstrategy = "rolling"\n',
      three,
    );
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.usage);
    expect(r.error?.message).toBe(
      'refusing a rolling deploy: its batches would not form one exo cluster: h1, h2, h3 (now) run a libp2p-era exo but h1, h2, h3 (new system) run a zenoh-era exo, and the two eras never see each other',
    );
    expect(r.error?.details.hint).toMatch(
      /pin services\.exo\.namespace to the same value on every node/,
    );
    expect(order(s)).toEqual([]);
    expect(s.commands().some((c) => /\btar -C /.test(c))).toBe(false); // no backup either
  });

  it('rolling and canary are refused for zenoh-era exo without a pinned namespace, and where the era is unknown', async () => {
    const zenoh = await setup(
      (f) => releases(f, (v) => release(v, 'zenoh')),
      '[rollout]\nstrategy = "canary"\n',
      three,
    );
    const refused = await zenoh.run();
    expect(refused.exitCode).toBe(ExitCode.usage);
    expect(refused.error?.message).toMatch(
      /^refusing a canary deploy: .*run a zenoh-era exo with no pinned namespace/,
    );
    const v1 = await setup(
      (f) => releases(f, (v) => release(v, null)),
      '[rollout]\nstrategy = "rolling"\n',
      three,
    );
    const unknown = await v1.run();
    expect(unknown.exitCode).toBe(ExitCode.usage);
    expect(unknown.error?.message).toMatch(
      /exo's era \(libp2p or zenoh\) is unknown on h1, h2, h3 \(now\) and h1, h2, h3 \(new system\)/,
    );
    expect(order(v1)).toEqual([]);
  });

  it('rolling --force over a split goes one batch at a time, each gated as a cluster of its own', async () => {
    const s = await setup(
      (f) => releases(f, (v) => release(v, 'zenoh')),
      '[rollout]\nstrategy = "rolling"\nbatch_size = 2\n',
      three,
    );
    const ctxRun = await s.command('status'); // warm: nothing deployed yet
    expect(ctxRun.exitCode).toBe(ExitCode.ok);
    const r = await runWith(s, { force: true });
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(order(s)).toEqual([
      'test h1',
      'test h2',
      'switch h1',
      'switch h2',
      'test h3',
      'switch h3',
    ]);
    expect(s.warnings.join('\n')).toContain('each batch is gated as a cluster of its own');
    expect(
      r.data.gate.hosts.map(
        (h: { lastSample: { cluster: { expected: number } } }) => h.lastSample.cluster.expected,
      ),
    ).toEqual([2, 2, 1]);
  });

  it('rolling within one era and namespace: each batch is gated with the rest of the cluster, which must see it', async () => {
    const s = await setup(
      (f) => releases(f, (v) => release(v, 'zenoh', 'lab')),
      '[rollout]\nstrategy = "rolling"\n',
      three,
    );
    const r = await s.run();
    expect(r.exitCode, r.error?.message).toBe(ExitCode.ok);
    expect(order(s)).toEqual([
      'test h1',
      'switch h1',
      'test h2',
      'switch h2',
      'test h3',
      'switch h3',
    ]);
    expect(s.warnings).toEqual([]);
    expect(
      r.data.gate.hosts.map(
        (h: { lastSample: { cluster: { expected: number } } }) => h.lastSample.cluster.expected,
      ),
    ).toEqual([3, 3, 3]);
    // the markers, placed once, were renewed at the second and third batch, then removed
    expect(s.fleet.hosts.map((h) => [h.markerWrites, h.marker])).toEqual([
      [3, undefined],
      [3, undefined],
      [3, undefined],
    ]);
  });

  it('rolling within one namespace fails the batch whose new node the old ones do not see', async () => {
    const s = await setup(
      (f) => {
        releases(f, (v) => release(v, 'libp2p', 'lab'));
        f.hosts[0]!.behaviour.set(sys('h1', '2.0.0'), 'isolated');
      },
      '[rollout]\nstrategy = "rolling"\n',
      three,
    );
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(order(s)).toEqual(['test h1']);
    // h1 sees none of the old nodes; they list only its former id, and are charged to h1 as peers
    expect(r.data.hosts[0].problems).toEqual(
      expect.arrayContaining([
        'h1 does not see h2 (node 0002…0065); it sees 1 id(s), 0 not of a checked host',
        'h1 does not see h3 (node 0003…0066); it sees 1 id(s), 0 not of a checked host',
        expect.stringMatching(
          /^h2 does not see h1 \(node 0001…\w{4}\); it sees 3 id\(s\), 1 not of a checked host$/,
        ),
        expect.stringMatching(/^h3 does not see h1 \(node 0001…\w{4}\)/),
      ]),
    );
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0'), sys('h3', '1.0.0')]);
  });

  it('canary: a failing canary stops the rollout before the other hosts are touched', async () => {
    const s = await setup(
      (f) => f.hosts[1]!.behaviour.set(sys('h2', '2.0.0'), 'runner-failed'),
      '[rollout]\nstrategy = "canary"\ncanary = "h2"\n',
      three,
    );
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(order(s)).toEqual(['test h2']);
    expect(r.data.hosts.map((h: { phase: string }) => h.phase)).toEqual([
      'pending',
      'rolled-back',
      'pending',
    ]);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0'), sys('h3', '1.0.0')]);
  });

  it('rollback_scope "failed" leaves an earlier, permanent batch on the new system', async () => {
    const s = await setup(
      (f) => f.hosts[2]!.behaviour.set(sys('h3', '2.0.0'), 'runner-failed'),
      '[rollout]\nstrategy = "canary"\ncanary = "h1"\nrollback_scope = "failed"\n',
      three,
    );
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('partly-rolled-back');
    expect(running(s.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '1.0.0'), sys('h3', '1.0.0')]);
  });

  it('rollback_scope "all" (the default) takes the permanent canary back too', async () => {
    const s = await setup(
      (f) => f.hosts[2]!.behaviour.set(sys('h3', '2.0.0'), 'runner-failed'),
      '[rollout]\nstrategy = "canary"\ncanary = "h1"\n',
      three,
    );
    const r = await s.run();
    expect(r.data.outcome).toBe('rolled-back');
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0'), sys('h3', '1.0.0')]);
    expect(s.fleet.log).toContain('h1: profile → generation 1');
  });
});

describe('the gate watches what exo really does', () => {
  /** Runs fn at each /state read once h2 runs its new system, with how many reads since then. */
  const afterActivation = (f: SimFleet, fn: (readsSince: number) => void) => {
    let from: number | undefined;
    f.onState = (_host, reads) => {
      if (from === undefined && f.hosts[1]!.running === sys('h2', '2.0.0')) from = reads;
      if (from !== undefined) fn(reads - from);
    };
  };
  const withInstance = (f: SimFleet) => {
    f.instances = {
      i1: { model: 'mlx-community/Llama-3.2-1B-Instruct-4bit', runners: ['r1', 'r2'] },
    };
    f.runners = { r1: 'RunnerReady', r2: 'RunnerReady' };
  };

  it('a node the others do not see fails the gate, though every /state counts enough ids (stale ones)', async () => {
    const s = await setup((f) => f.hosts[1]!.behaviour.set(sys('h2', '2.0.0'), 'isolated'));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    const [h1, h2] = r.data.gate.hosts;
    expect(h1.lastSample.cluster.seen).toBeGreaterThanOrEqual(2);
    expect(h2.lastSample.cluster.seen).toBeGreaterThanOrEqual(2);
    expect(h1.problems).toEqual([
      expect.stringMatching(
        /^h1 does not see h2 \(node 0002…\w{4}\); it sees 2 id\(s\), 1 not of a checked host$/,
      ),
    ]);
    expect(h2.problems).toEqual([expect.stringMatching(/^h2 does not see h1 \(node 0001…\w{4}\)/)]);
    expect(h1.problems.join()).not.toMatch(/of 2 nodes/);
  });

  it('an instance exo deletes during the soak fails the gate, though no sample saw a failed runner', async () => {
    const s = await setup((f) => {
      withInstance(f);
      afterActivation(f, (n) => n > 4 && delete f.instances.i1);
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(r.data.gate.hosts.flatMap((h: { problems: string[] }) => h.problems)).toContain(
      'exo deleted instance i1 of mlx-community/Llama-3.2-1B-Instruct-4bit (its runners failed, or the node it ran on left the cluster)',
    );
  });

  /** h2's node id before the deploy restarts its exo, with an instance on it that peers list. */
  const onFormerId = (f: SimFleet) => {
    const former = f.hosts[1]!.nodeId;
    f.instances.i0 = { model: 'mlx-community/Qwen3-0.6B-4bit', runners: ['r0'], nodes: [former] };
    f.runners.r0 = 'RunnerReady';
    f.lingering = [former];
    return former;
  };

  it("an instance exo removes with a restarted exo's former id, as that id leaves the cluster, is the deploy's restart: no failure, and said", async () => {
    let former = '';
    const s = await setup((f) => {
      former = onFormerId(f);
      afterActivation(f, (n) => {
        if (n > 4 && f.lingering.length) {
          delete f.instances.i0;
          f.lingering = [];
        }
      });
    });
    const r = await s.run();
    expect(
      r.exitCode,
      JSON.stringify(r.data.gate?.hosts.map((h: { problems: string[] }) => h.problems)),
    ).toBe(ExitCode.ok);
    // said once, though every host's /state listed it
    expect(s.warnings.filter((w) => w.includes('exo removed'))).toEqual([
      expect.stringMatching(
        new RegExp(
          `^exo removed instance i0 of mlx-community/Qwen3-0\\.6B-4bit: its node ${former} left the cluster, and no gated host runs under that id now`,
        ),
      ),
    ]);
  });

  it('an instance on a former id that exo deletes while that id is still listed fails the gate (its runners failed)', async () => {
    const s = await setup((f) => {
      onFormerId(f);
      afterActivation(f, (n) => n > 4 && delete f.instances.i0);
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.gate.hosts.flatMap((h: { problems: string[] }) => h.problems)).toContain(
      'exo deleted instance i0 of mlx-community/Qwen3-0.6B-4bit (its runners failed, or the node it ran on left the cluster)',
    );
  });

  it('a runner seen failed in a single sample fails the gate', async () => {
    const s = await setup((f) => {
      withInstance(f);
      afterActivation(f, (n) => (f.runners.r2 = n === 5 ? 'RunnerFailed' : 'RunnerReady'));
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.gate.hosts.flatMap((h: { problems: string[] }) => h.problems)).toContain(
      'runner r2 failed: Terminated (exitcode=1)',
    );
  });

  it('instances that stay, or come and stay during the soak, are no failure', async () => {
    const s = await setup((f) => {
      withInstance(f);
      afterActivation(f, (n) => {
        if (n > 4) f.instances.i2 = { model: 'mlx-community/Qwen3-0.6B-4bit', runners: ['r3'] };
        f.runners.r3 = n > 6 ? 'RunnerReady' : 'RunnerLoading';
      });
    });
    const r = await s.run();
    expect(
      r.exitCode,
      JSON.stringify(r.data.gate?.hosts.map((h: { problems: string[] }) => h.problems)),
    ).toBe(ExitCode.ok);
    expect(
      r.data.gate.hosts[0].lastSample.cluster.instances.map((i: { id: string }) => i.id),
    ).toEqual(['i1', 'i2']);
  });
});

describe('check on a fleet', () => {
  it("requires each host to see the others' current ids: a stale id makes up the count, not the membership", async () => {
    const s = await setup((f) => {
      f.hosts[1]!.behaviour.set(sys('h2', '1.0.0'), 'isolated');
      f.hosts[1]!.formerIds = ['00020000000000000000000000000064'];
    });
    const r = await s.command('check', { json: true });
    expect(r.exitCode).toBe(ExitCode.failed);
    const [h1, h2] = r.data.checks;
    expect(h1.cluster).toMatchObject({ expected: 2, seen: 2, nodeId: s.fleet.hosts[0]!.nodeId });
    expect(h1.problems).toEqual([
      `h1 does not see h2 (node 0002…0065); it sees 2 id(s), 1 not of a checked host`,
    ]);
    expect(h2.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^h2 does not see h1 \(node 0001…0064\)/)]),
    );
    expect(JSON.stringify(r.data)).not.toContain('seenNodes');
  });

  it('with a cluster_size below the hosts in the config (lone nodes, or several clusters) only counts', async () => {
    const s = await setup(
      (f) => f.hosts[1]!.behaviour.set(sys('h2', '1.0.0'), 'isolated'),
      '',
      ['h1', 'h2'],
      'cluster_size = 1\n',
    );
    const r = await s.command('check', { json: true });
    expect(r.data.checks.flatMap((c: { problems: string[] }) => c.problems)).toEqual([]);
    expect(r.exitCode).toBe(ExitCode.ok);
  });
});

describe('rollback --to on a cluster', () => {
  /** Every host runs generation 2 (2.0.0); generation 1 (1.0.0) is the one to go back to. */
  const onSecondGeneration = (f: SimFleet) => {
    for (const h of f.hosts) {
      h.generations.set(2, sys(h.name, '2.0.0'));
      h.profile = 2;
      h.running = sys(h.name, '2.0.0');
    }
  };
  const onOldSystems = (f: SimFleet) => f.hosts.every((h) => h.running === sys(h.name, '1.0.0'));

  it("checks the hosts together once each serves, and again while they have not learnt each other's new ids", async () => {
    let reads = 0;
    const s = await setup((f) => {
      onSecondGeneration(f);
      f.hosts[1]!.behaviour.set(sys('h2', '1.0.0'), 'isolated');
      // each host's wait for exo reads /state twice; the first check together is reads 5 and 6
      f.onState = () => {
        if (onOldSystems(f) && ++reads === 7) f.hosts[1]!.behaviour.delete(sys('h2', '1.0.0'));
      };
    });
    const r = await s.command('rollback', { json: true });
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(reads).toBeGreaterThanOrEqual(8);
    expect(r.data.hosts.map((h: { check: { healthy: boolean } }) => h.check.healthy)).toEqual([
      true,
      true,
    ]);
  });

  it('an activation that fails leaves the profile on the generation the host still runs, and exits 1', async () => {
    const s = await setup((f) => {
      onSecondGeneration(f);
      // the activation script of generation 1 fails on h2 (switch-to-configuration-ng exit 2)
      f.hosts[1]!.activationExit.set(`${sys('h2', '1.0.0')} switch`, 2);
    });
    const r = await s.command('rollback', { json: true });
    expect(r.exitCode).toBe(ExitCode.failed);
    const h2 = s.fleet.hosts[1]!;
    expect(h2.running).toBe(sys('h2', '2.0.0'));
    expect(h2.generations.get(h2.profile)).toBe(h2.running);
    expect(r.data.hosts[1].error).toMatch(/exited 2/);
  });

  it('units of generation N that fail to start: the host runs N (system and profile agree), the command exits 1 and says so', async () => {
    const s = await setup((f) => {
      onSecondGeneration(f);
      f.hosts[1]!.activationExit.set(`${sys('h2', '1.0.0')} switch`, 4);
    });
    const r = await s.command('rollback', { json: true });
    expect(r.exitCode).toBe(ExitCode.failed);
    const h2 = s.fleet.hosts[1]!;
    expect([h2.running, h2.generations.get(h2.profile)]).toEqual([
      sys('h2', '1.0.0'),
      sys('h2', '1.0.0'),
    ]);
    expect(r.data.hosts[1].error).toMatch(/generation 1 is active, but units failed to start/);
    expect(r.data.hosts[0].error).toBeUndefined();
  });

  it('takes the deploy lock (exit 4 while a deploy holds it, nothing changed) and marks the hosts while it runs', async () => {
    const s = await setup(onSecondGeneration);
    const lockDir = path.join(s.dir, '.exo-deploy');
    await mkdir(lockDir, { recursive: true });
    await writeFile(
      path.join(lockDir, 'deploy.lock'),
      JSON.stringify({
        pid: process.pid,
        host: os.hostname(),
        user: 'ops',
        startedAt: new Date(Date.now() - 60_000).toISOString(),
        command: 'deploy h1,h2',
      }),
    );
    const held = await s
      .command('rollback', { json: true })
      .catch((e: ExoDeployError) => ({ exitCode: e.exitCode }));
    expect(held.exitCode).toBe(ExitCode.locked);
    expect(running(s.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '2.0.0')]);
    await rm(path.join(lockDir, 'deploy.lock'));
    const r = await s.command('rollback', { json: true });
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    expect(s.fleet.hosts.map((h) => [h.markerWrites, h.marker])).toEqual([
      [1, undefined],
      [1, undefined],
    ]);
  });

  it('a host the others never see is unhealthy once ready_timeout is over, named with its id', async () => {
    const s = await setup((f) => {
      onSecondGeneration(f);
      f.hosts[1]!.behaviour.set(sys('h2', '1.0.0'), 'isolated');
    });
    const r = await s.command('rollback', { json: true });
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.hosts[0].check.problems).toEqual([
      expect.stringMatching(
        /^h1 does not see h2 \(node 0002…\w{4}\); it sees 2 id\(s\), 1 not of a checked host$/,
      ),
    ]);
  });
});

async function runWith(s: Setup, options: ParsedOptions) {
  const r = await s.command('deploy', options);
  return r;
}

describe('deploy hooks', () => {
  it('a failing pre_deploy stops the deploy before anything changes; post_deploy gets the outcome and report', async () => {
    const failing = await setup(() => {}, '[hooks]\npre_deploy = ["check-window", "--strict"]\n');
    const stopped = await failing.run();
    expect(stopped.exitCode).toBe(ExitCode.failed);
    expect(stopped.error?.message).toMatch(
      /hook pre_deploy exited 127: .*the deploy did not start, nothing changed/,
    );
    expect(rebuilds(failing)).toEqual([]);

    const s = await setup(
      () => {},
      '[hooks]\npre_deploy = ["true"]\npost_deploy = ["notify", "exo"]\n',
    );
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    const [pre, post] = s.fleet.hookEnvs;
    expect(pre).toMatchObject({
      argv: 'true',
      EXO_DEPLOY_HOSTS: 'h1,h2',
      EXO_DEPLOY_OUTCOME: 'pending',
      EXO_DEPLOY_REPORT: '',
    });
    expect(post).toMatchObject({
      argv: 'notify exo',
      EXO_DEPLOY_OUTCOME: 'success',
      EXO_DEPLOY_EXIT_CODE: '0',
      EXO_DEPLOY_REPORT: r.data.reportFiles.markdown,
      EXO_DEPLOY_RUN_ID: r.data.id,
    });
    expect(s.commands().indexOf('true')).toBeLessThan(
      s.commands().findIndex((c) => c.startsWith('nixos-rebuild')),
    );
  });
});

describe('deploy --dry-run', () => {
  it('builds and diffs, prints the plan per host, and activates nothing', async () => {
    const s = await setup();
    const r = await s.command('deploy', { 'dry-run': true });
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(rebuilds(s)).toEqual(['build h1 h2']);
    // (whether a system has switch-to-configuration is read, `test -x`; none is run)
    expect(
      s
        .commands()
        .some(
          (c) =>
            /\btar -C /.test(c) ||
            /bin\/switch-to-configuration (switch|boot|test|dry-activate)\b/.test(c),
        ),
    ).toBe(false);
    expect(
      s.commands().filter((c) => c.includes('bin/switch-to-configuration')).length,
    ).toBeGreaterThan(0);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(r.text).toContain(
      'plan (dry run: built and copied, nothing activated): lockstep, [h1, h2]',
    );
    expect(r.text).toMatch(
      /h2: exo 1\.0\.0 → 2\.0\.0\n.*→.*\n {2}exo: 1\.0\.0 → 2\.0\.0, \+1\.2 KiB/,
    );
  });
});

describe('releases that need a reboot', () => {
  const newKernel = (f: SimFleet, host: string) =>
    f.kernels.set(sys(host, '2.0.0'), 'k3rne1bbbbbbbbbbbbbbbbbbbbbbbbbb-linux-6.6.1');

  it('--dry-run names the hosts whose new system boots another kernel, and what changes', async () => {
    const s = await setup((f) => newKernel(f, 'h2'));
    const r = await s.command('deploy', { 'dry-run': true, json: true });
    expect(r.exitCode).toBe(ExitCode.ok);
    const [h1, h2] = r.data.hosts;
    expect(h1.rebootReasons).toEqual([]);
    expect(h2.rebootReasons).toEqual([
      'kernel linux-6.6.0 → linux-6.6.1',
      'initrd initrd-linux-6.6.0 → initrd-linux-6.6.1',
      'kernel modules linux-6.6.0-modules → linux-6.6.1-modules',
    ]);
    const text = (await s.command('deploy', { 'dry-run': true })).text;
    expect(text).toMatch(
      /h2: exo 1\.0\.0 → 2\.0\.0\n(.*\n)* {2}reboots into it: kernel linux-6\.6\.0 → linux-6\.6\.1/,
    );
    expect(text).not.toMatch(/h1: exo[^\n]*\n( {2}.*\n)* {2}reboots into it/);
    expect(text).toContain('nixos-rebuild test (h2: nixos-rebuild boot, then a reboot)');
  });

  it('compares with the system the host booted, not the one it runs: a kernel already switched to live still needs its reboot', async () => {
    const s = await setup((f) => {
      // h1 runs (test-activated) a system of the new kernel, but booted the old one
      const live = sys('h1', '1.5.0');
      f.kernels.set(live, 'k3rne1bbbbbbbbbbbbbbbbbbbbbbbbbb-linux-6.6.1');
      f.hosts[0]!.running = live;
      newKernel(f, 'h1');
    });
    const r = await s.command('deploy', { 'dry-run': true, json: true });
    expect(r.data.hosts[0].rebootReasons[0]).toBe('kernel linux-6.6.0 → linux-6.6.1');
  });

  it("a CUDA system's new GPU driver needs a reboot: its user space would not match the kernel module loaded at boot", async () => {
    const driver = (v: string) => `/nix/store/n1d1aaaaaaaaaaaaaaaaaaaaaaaaaaaa-nvidia-x11-${v}`;
    const s = await setup((f) => {
      f.releases.set(sys('h1', '1.0.0'), { ...release('1.0.0'), gpu: { driver: driver('550.1') } });
      f.releases.set(sys('h1', '2.0.0'), { ...release('2.0.0'), gpu: { driver: driver('570.2') } });
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(r.data.hosts[0].rebootReasons).toEqual([
      'GPU driver nvidia-x11-550.1 → nvidia-x11-570.2 (user space would not match the kernel module loaded at boot)',
    ]);
    expect(r.data.hosts[1].rebootReasons).toEqual([]);
    expect(s.fleet.log.filter((l) => / reboot /.test(l))).toEqual(['h1: reboot → 2.0.0']);
    const report = await readFile(r.data.reportFiles.markdown, 'utf8');
    expect(report).toContain(
      'Takes the boot path (the new system its boot default, then a reboot): GPU driver nvidia-x11-550.1',
    );
  });

  it('status says which host runs what it has not booted (a kernel switched to live), and what', async () => {
    const s = await setup((f) => {
      const live = sys('h1', '1.5.0');
      f.kernels.set(live, 'k3rne1bbbbbbbbbbbbbbbbbbbbbbbbbb-linux-6.6.1');
      f.hosts[0]!.running = live;
      f.hosts[1]!.booted = null;
    });
    const status = await s.command('status', { json: true });
    expect(
      status.data.hosts.map((h: { awaitingReboot: string[] | null }) => h.awaitingReboot?.[0]),
    ).toEqual(['kernel linux-6.6.0 → linux-6.6.1', undefined]);
    // h2's booted system is unknown: not said to need anything
    expect(status.data.hosts[1].awaitingReboot).toBeNull();
    const text = await s.command('status');
    expect(text.text).toMatch(
      /^h1: runs what it has not booted \(kernel linux-6\.6\.0 → linux-6\.6\.1; initrd .*\): the next reboot loads it$/m,
    );
    expect(text.text).not.toMatch(/^h2: runs what/m);
  });

  it('status shows the config revision each running system records, dirty or not', async () => {
    const rev = 'c0ffee'.padEnd(40, '0');
    const s = await setup((f) => {
      f.releases.set(sys('h1', '1.0.0'), { ...release('1.0.0'), configRevision: `${rev}-dirty` });
      f.releases.set(sys('h2', '1.0.0'), { ...release('1.0.0'), configRevision: 'dirty' });
    });
    const status = await s.command('status', { json: true });
    expect(status.data.hosts.map((h: { config: unknown }) => h.config)).toEqual([
      // (the config folder here is no git checkout: where they stand is not known)
      { revision: `${rev}-dirty`, commit: rev, dirty: true, behind: null, ahead: null },
      { revision: 'dirty', commit: null, dirty: true, behind: null, ahead: null },
    ]);
    const text = (await s.command('status')).text;
    expect(text).toMatch(/^h1 +yes +\d+ +\S+ +c0ffee0-dirty /m);
    expect(text).toMatch(/^h2 +yes +\d+ +\S+ +dirty /m);
  });

  it('a host whose booted system is unknown is said to be unknown, not to need a reboot', async () => {
    const s = await setup((f) => {
      f.hosts[1]!.booted = null;
      newKernel(f, 'h2');
    });
    const r = await s.command('deploy', { 'dry-run': true, json: true });
    expect(r.data.hosts.map((h: { rebootReasons: unknown }) => h.rebootReasons)).toEqual([
      [],
      null,
    ]);
  });
});

describe('when a deploy may reboot', () => {
  const newKernel = (f: SimFleet, host: string) =>
    f.kernels.set(sys(host, '2.0.0'), 'k3rne1bbbbbbbbbbbbbbbbbbbbbbbbbb-linux-6.6.1');
  /** "HH:MM-HH:MM UTC", `from` to `to` minutes away from now. */
  const windowFromNow = (from: number, to: number) => {
    const now = new Date();
    const at = (offset: number) => {
      const m = (((now.getUTCHours() * 60 + now.getUTCMinutes() + offset) % 1440) + 1440) % 1440;
      return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    };
    return `${at(from)}-${at(to)} UTC`;
  };

  it('reboot = "never" refuses a release that needs a reboot (exit 2), naming the host and why, before anything changes', async () => {
    const s = await setup((f) => newKernel(f, 'h2'), '[rollout]\nreboot = "never"\n');
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.usage);
    expect(r.error?.message).toBe(
      'refusing the deploy: reboot = "never", and the new system needs a reboot to run as built on h2 (kernel linux-6.6.0 → linux-6.6.1; initrd initrd-linux-6.6.0 → initrd-linux-6.6.1; kernel modules linux-6.6.0-modules → linux-6.6.1-modules)',
    );
    // built (what needs a reboot is known from what is built), nothing backed up or activated
    expect(rebuilds(s)).toEqual(['build h1 h2']);
    expect(s.commands().filter((c) => /(^|\s)tar\s/.test(c))).toEqual([]);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
  });

  it('--reboot never on the command line overrides the config; a release that needs no reboot still deploys under it', async () => {
    const s = await setup((f) => newKernel(f, 'h1'));
    await expect(s.command('deploy', { reboot: 'never' })).rejects.toMatchObject({
      exitCode: ExitCode.usage,
    });
    const plain = await setup();
    expect((await plain.command('deploy', { reboot: 'never' })).exitCode).toBe(ExitCode.ok);
    expect(running(plain.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '2.0.0')]);
  });

  it('outside reboot_window a release that reboots is refused; inside it, or needing no reboot, it goes ahead', async () => {
    const shut = await setup(
      (f) => newKernel(f, 'h1'),
      `[rollout]\nreboot_window = "${windowFromNow(120, 180)}"\n`,
    );
    const refused = await shut.run();
    expect(refused.exitCode).toBe(ExitCode.usage);
    expect(refused.error?.message).toMatch(
      /^refusing the deploy: it reboots h1 \(kernel linux-6\.6\.0 → linux-6\.6\.1; .*\), and reboots are allowed only within \d\d:\d\d-\d\d:\d\d UTC \(now \d\d:\d\d UTC\)$/,
    );
    expect(running(shut.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);

    const open = await setup(
      (f) => newKernel(f, 'h1'),
      `[rollout]\nreboot_window = "${windowFromNow(-60, 60)}"\n`,
    );
    expect((await open.run()).exitCode).toBe(ExitCode.ok);

    const noReboot = await setup(
      () => {},
      `[rollout]\nreboot_window = "${windowFromNow(120, 180)}"\n`,
    );
    expect((await noReboot.run()).exitCode).toBe(ExitCode.ok);
  });

  it('a window that closes during a rolling deploy: it stops before the next batch that reboots (exit 1), the batch done keeps the new system, the rest is not touched', async () => {
    const started = Date.now();
    const s = await setup(
      (f) => {
        newKernel(f, 'h1');
        newKernel(f, 'h2');
        // two hours on, once the first host has rebooted: past the window's end
        f.clock = () => started + (f.log.some((l) => / reboot /.test(l)) ? 2 * 3600_000 : 0);
      },
      `[rollout]\nstrategy = "rolling"\nreboot_window = "${windowFromNow(-60, 60)}"\n`,
    );
    const r = await s.run();
    expect(r.exitCode, r.error?.message).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('window-closed');
    expect(r.data.hosts.map((h: { phase: string }) => h.phase)).toEqual(['permanent', 'pending']);
    expect(running(s.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '1.0.0')]);
    expect(s.fleet.log.filter((l) => / reboot /.test(l))).toEqual(['h1: reboot → 2.0.0']);
    expect(s.warnings.join('\n')).toMatch(
      /stopping before the batch of h2: h2 would reboot, and the reboot window \(\d\d:\d\d-\d\d:\d\d UTC\) has closed \(now \d\d:\d\d UTC\)/,
    );
    const report = await readFile(r.data.reportFiles.markdown, 'utf8');
    expect(report).toContain('STOPPED AT THE REBOOT WINDOW');
    expect(report).toContain(
      'Deploy again within the reboot window to bring h2 onto the new system',
    );
  });
});

describe('the boot path: boot, reboot, gate', () => {
  const newKernel = (f: SimFleet, host: string) =>
    f.kernels.set(sys(host, '2.0.0'), 'k3rne1bbbbbbbbbbbbbbbbbbbbbbbbbb-linux-6.6.1');
  /** What each host's boot loader, boot and system did, in order. */
  const bootLog = (s: Setup, host: string) =>
    s.fleet.log.filter(
      (l) =>
        l.startsWith(`${host}: reboot`) ||
        l.startsWith(`${host}: switch-to-configuration`) ||
        l.startsWith(`${host}: profile`),
    );

  it('a host whose new system boots another kernel gets it as its boot default, reboots into it and is gated there; the others are activated live', async () => {
    const s = await setup((f) => newKernel(f, 'h2'));
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(bootLog(s, 'h2')).toEqual([
      'h2: switch-to-configuration boot 2.0.0',
      'h2: reboot → 2.0.0',
    ]);
    expect(bootLog(s, 'h1')).toEqual([
      'h1: switch-to-configuration test 2.0.0',
      'h1: switch-to-configuration switch 2.0.0',
    ]);
    const [h1, h2] = s.fleet.hosts;
    expect([h2!.running, h2!.booted, h2!.bootDefault]).toEqual([
      sys('h2', '2.0.0'),
      sys('h2', '2.0.0'),
      sys('h2', '2.0.0'),
    ]);
    expect(h2!.generations.get(h2!.profile)).toBe(sys('h2', '2.0.0'));
    expect(h1!.booted).toBe(sys('h1', '1.0.0')); // not rebooted
    // the reboot emptied /run: h2's deploy marker was placed again, and removed at the end
    expect(s.fleet.hosts.map((h) => h.markerWrites)).toEqual([1, 2]);
    expect(s.fleet.hosts.map((h) => h.marker)).toEqual([undefined, undefined]);
    expect(
      r.data.hosts.map((h: { reboots: boolean; phase: string }) => [h.reboots, h.phase]),
    ).toEqual([
      [false, 'permanent'],
      [true, 'permanent'],
    ]);
    // the gate judged the new boot: its steps come after the reboot
    const steps = r.data.steps.map((st: { step: string; host: string | null }) =>
      `${st.step} ${st.host ?? ''}`.trim(),
    );
    expect(steps.indexOf('reboot h2')).toBeGreaterThan(steps.indexOf('boot h2'));
    expect(steps.indexOf('health gate')).toBeGreaterThan(steps.indexOf('reboot h2'));
    const report = await readFile(r.data.reportFiles.markdown, 'utf8');
    expect(report).toContain(
      'Takes the boot path (the new system its boot default, then a reboot): kernel linux-6.6.0 → linux-6.6.1',
    );
  });

  it('a release that fails its gate after the reboot: back to the boot default it had, a second reboot, exactly the previous system', async () => {
    const s = await setup((f) => {
      newKernel(f, 'h2');
      f.hosts[1]!.behaviour.set(sys('h2', '2.0.0'), 'down');
    });
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(bootLog(s, 'h2')).toEqual([
      'h2: switch-to-configuration boot 2.0.0',
      'h2: reboot → 2.0.0',
      'h2: profile → generation 1',
      'h2: switch-to-configuration boot 1.0.0',
      'h2: reboot → 1.0.0',
    ]);
    const h2 = s.fleet.hosts[1]!;
    expect([h2.running, h2.booted, h2.bootDefault, h2.generations.get(h2.profile)]).toEqual([
      sys('h2', '1.0.0'),
      sys('h2', '1.0.0'),
      sys('h2', '1.0.0'),
      sys('h2', '1.0.0'),
    ]);
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
  });

  it('a host that does not come back from its reboot needs a person: exit 3, the report says so; the others go back', async () => {
    const s = await setup((f) => {
      newKernel(f, 'h2');
      f.hosts[1]!.staysDownAfterReboot = true;
    }, '[timeouts]\nreboot = "1s"\n');
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.needsPerson);
    expect(r.data.outcome).toBe('rollback-failed');
    const [h1, h2] = r.data.hosts;
    expect(h1.phase).toBe('rolled-back');
    expect(h2.phase).toBe('rollback-failed');
    expect(h2.problems.join('\n')).toMatch(
      /did not come back from its reboot .* it needs a person/,
    );
    expect(r.data.error).toMatch(/h2: did not come back within 1\.0s of its reboot/);
    expect(running(s.fleet)[0]).toBe(sys('h1', '1.0.0'));
  });

  it('a system whose pre-switch checks refuse a live switch takes the boot path (the checks let boot through); under reboot = "never" it is refused', async () => {
    const s = await setup((f) => f.inhibited.add(sys('h1', '2.0.0')));
    const plan = await s.command('deploy', { 'dry-run': true, json: true });
    expect(plan.data.hosts[0].rebootReasons).toEqual([
      'its pre-switch checks refuse a live switch (There are changes to critical components of the system: dbus-implementation: dbus → broker)',
    ]);
    expect(plan.data.hosts[1].rebootReasons).toEqual([]);
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(bootLog(s, 'h1').filter((l) => !l.includes('refused'))).toEqual([
      'h1: switch-to-configuration boot 2.0.0',
      'h1: reboot → 2.0.0',
    ]);
    expect(s.fleet.hosts[0]!.running).toBe(sys('h1', '2.0.0'));

    const never = await setup(
      (f) => f.inhibited.add(sys('h2', '2.0.0')),
      '[rollout]\nreboot = "never"\n',
    );
    const refused = await never.run();
    expect(refused.exitCode).toBe(ExitCode.usage);
    expect(refused.error?.message).toContain('on h2 (its pre-switch checks refuse a live switch');
    expect(running(never.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
  });

  it('reboot = "always" reboots every host that changes, though none needs it', async () => {
    const s = await setup(() => {}, '[rollout]\nreboot = "always"\n');
    const r = await s.run();
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(s.fleet.log.filter((l) => / reboot /.test(l))).toEqual([
      'h1: reboot → 2.0.0',
      'h2: reboot → 2.0.0',
    ]);
    expect(s.fleet.hosts.map((h) => h.booted)).toEqual([sys('h1', '2.0.0'), sys('h2', '2.0.0')]);
  });

  it('Ctrl-C while a host reboots: exit 130; status names it; rollback --last reboots it back onto the exact previous system', async () => {
    const controller = new AbortController();
    const s = await setup((f) => {
      newKernel(f, 'h2');
      abortWhen(f, 'h2: reboot', controller);
    });
    const r = await s.run({ signal: controller.signal });
    expect(r.exitCode).toBe(ExitCode.interrupted);
    const h2 = s.fleet.hosts[1]!;
    expect(h2.booted).toBe(sys('h2', '2.0.0')); // it came back on the new system meanwhile
    const status = await s.command('status');
    expect(status.text).toMatch(/hosts it left on a new system: [^\n]*h2 \(activated\)/);
    const undo = await s.command('rollback', { last: true });
    expect(undo.exitCode, undo.text).toBe(ExitCode.ok);
    expect(bootLog(s, 'h2').slice(-3)).toEqual([
      'h2: profile → generation 1',
      'h2: switch-to-configuration boot 1.0.0',
      'h2: reboot → 1.0.0',
    ]);
    expect([h2.running, h2.booted, h2.generations.get(h2.profile)]).toEqual([
      sys('h2', '1.0.0'),
      sys('h2', '1.0.0'),
      sys('h2', '1.0.0'),
    ]);
  });
});

describe('deploy markers on the hosts', () => {
  it('a host marked by a deploy from elsewhere is refused with exit 4; the marker of our own run is gone after it', async () => {
    const s = await setup((f) => {
      f.hosts[1]!.marker = JSON.stringify({
        run: '20261128-010000-000',
        deployer: 'laptop-of-ana',
        user: 'ana',
        pid: 777,
        startedAt: new Date().toISOString(),
      });
    });
    const held = await s.run();
    expect(held.exitCode).toBe(ExitCode.locked);
    expect(held.error?.message).toContain(
      'h2 is being deployed by ana@laptop-of-ana (PID 777, run 20261128-010000-000',
    );
    expect(rebuilds(s)).toEqual([]);
    expect(s.fleet.hosts[0]!.marker).toBeUndefined(); // nothing placed on h1 either
    expect(s.fleet.hosts[1]!.marker).toContain('laptop-of-ana'); // and the other deploy's marker stays

    s.fleet.hosts[1]!.marker = JSON.stringify({
      run: 'old',
      deployer: 'laptop-of-ana',
      user: 'ana',
      pid: 777,
      startedAt: '2026-01-01T00:00:00Z',
    });
    const writesBefore = s.fleet.hosts.map((h) => h.markerWrites ?? 0);
    const ok = await s.run();
    expect(ok.exitCode).toBe(ExitCode.ok);
    expect(s.warnings.join('\n')).toContain('h2: taking over a leftover deploy marker of run old');
    expect(s.fleet.hosts.map((h) => h.marker)).toEqual([undefined, undefined]);
    // placed once on each host during the run, removed at its end
    expect(s.fleet.hosts.map((h, i) => (h.markerWrites ?? 0) - (writesBefore[i] ?? 0))).toEqual([
      1, 1,
    ]);
  });
});
