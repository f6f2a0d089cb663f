// A host reached as a non-root user with `sudo = true`: everything that needs root on it runs
// as `sudo -n -- …` (the fake host refuses it otherwise, as a NixOS host refuses its deploy
// user), nixos-rebuild gets --use-remote-sudo, and hosts reached as root get no sudo at all.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/context.js';
import { ExitCode } from '../../src/errors.js';
import type { Log } from '../../src/output/log.js';
import type { ParsedOptions } from '../../src/options.js';
import { fakeRunner } from '../sim/run-layer.js';
import { fleetFetch, fleetRule, simFleet, sys, type SimFleet } from '../sim/fleet.js';

type Command = 'deploy' | 'check' | 'rollback' | 'generations' | 'backup';
const modules = {
  deploy: () => import('../../src/commands/deploy.js'),
  check: () => import('../../src/commands/check.js'),
  rollback: () => import('../../src/commands/rollback.js'),
  generations: () => import('../../src/commands/generations.js'),
  backup: () => import('../../src/commands/backup.js'),
};

/** h1 reached as root, h2 as `deploy`; `sudo` is what h2's table says. */
async function setup(configure: (f: SimFleet) => void = () => {}, sudo = true) {
  const fleet = simFleet(['h1', 'h2']);
  fleet.hosts[1]!.user = 'deploy';
  configure(fleet);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-unit-'));
  await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  await writeFile(path.join(dir, 'flake.lock'), '{}\n');
  const config = path.join(dir, 'exo-deploy.toml');
  const [h1, h2] = fleet.hosts;
  await writeFile(
    config,
    `[health]\nsoak = "300ms"\ninterval = "50ms"\nready_timeout = "1s"\ntimeout = "200ms"\n` +
      `[hosts.h1]\ntarget = "root@${h1!.address}"\n[hosts.h2]\ntarget = "deploy@${h2!.address}"\nsudo = ${sudo}\n`,
  );
  const fake = fakeRunner(fleetRule(fleet));
  const log: Log = { info() {}, verbose() {}, step() {}, warn() {} };
  const command = async (
    name: Command,
    options: ParsedOptions = {},
    positionals: string[] = [],
  ): Promise<{ exitCode: number; data: any; text: string }> => {
    const ctx = await createContext({ config, yes: true, ...options }, positionals, {
      runner: fake.runner,
      log,
      signal: new AbortController().signal,
      fetch: fleetFetch(fleet),
    });
    try {
      return await (await modules[name]()).run(ctx);
    } finally {
      await ctx.close();
    }
  };
  return { fleet, dir, command, commands: () => fake.lines() };
}

const running = (f: SimFleet) => f.hosts.map((h) => h.running);
const LIST = 'nix-env -p /nix/var/nix/profiles/system --list-generations';

describe('a host reached as a sudo user', () => {
  it('without sudo = true the deploy user cannot even list the system generations (the fake host is strict)', async () => {
    const s = await setup(() => {}, false);
    const r = await s.command('check', { json: true }).catch((e: Error) => e);
    expect(String(r instanceof Error ? r.message : JSON.stringify(r))).toMatch(/Permission denied/);
  });

  it('check: healthy; the journal and the disks are read through sudo on h2 only', async () => {
    const s = await setup();
    const r = await s.command('check', { json: true });
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    const [h1, h2] = s.fleet.hosts;
    expect(h1!.sudoCommands).toBeUndefined();
    expect(h2!.sudoCommands).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^journalctl /),
        expect.stringMatching(/^df .*\/var\/lib\/exo/),
      ]),
    );
    expect(r.data.checks.map((c: { problems: string[] }) => c.problems)).toEqual([[], []]);
  });

  it('generations: h2 lists its generations through sudo', async () => {
    const s = await setup();
    const r = await s.command('generations', { json: true });
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    expect(s.fleet.hosts[1]!.sudoCommands).toContain(LIST);
    expect(r.data.hosts[1].generations[0]).toMatchObject({
      number: 1,
      running: true,
      path: sys('h2', '1.0.0'),
    });
  });

  it('deploy: success, h2 on the new system in a new generation, its profile and activation through sudo; the marker too', async () => {
    const s = await setup();
    const r = await s.command('deploy', { json: true });
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    expect(running(s.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '2.0.0')]);
    expect(s.fleet.hosts.map((h) => h.profile)).toEqual([2, 2]);
    const h2 = s.fleet.hosts[1]!;
    expect(h2.sudoCommands).toEqual(
      expect.arrayContaining([
        LIST,
        'mkdir -p -- /run/exo-deploy',
        `nix-env -p /nix/var/nix/profiles/system --set ${sys('h2', '2.0.0')}`,
        expect.stringMatching(
          new RegExp(`^systemd-run .* ${sys('h2', '2.0.0')}/bin/switch-to-configuration test$`),
        ),
        expect.stringMatching(
          new RegExp(`^systemd-run .* ${sys('h2', '2.0.0')}/bin/switch-to-configuration switch$`),
        ),
        // the marker: placed where there is none, removed while it is this run's
        expect.stringMatching(/^sh -c mkdir -p .* sh \/run\/exo-deploy\/deploy\.lock /),
        expect.stringMatching(/^sh -c if \[ .*then rm -f .* sh \/run\/exo-deploy\/deploy\.lock /),
      ]),
    );
    expect(s.fleet.hosts[0]!.sudoCommands).toBeUndefined();
  });

  it('deploy with a nixos-rebuild that has --store-path: it activates the built systems, with --sudo for h2 only', async () => {
    const s = await setup((f) => (f.storePath = true));
    const r = await s.command('deploy', { json: true });
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    expect(running(s.fleet)).toEqual([sys('h1', '2.0.0'), sys('h2', '2.0.0')]);
    const rebuilds = s.commands().filter((c) => /^nixos-rebuild (test|switch)/.test(c));
    expect(rebuilds.filter((c) => c.includes('deploy@'))).toEqual([
      `nixos-rebuild test --store-path ${sys('h2', '2.0.0')} --target-host deploy@10.99.0.3 --sudo`,
      `nixos-rebuild switch --store-path ${sys('h2', '2.0.0')} --target-host deploy@10.99.0.3 --sudo`,
    ]);
    expect(rebuilds.filter((c) => c.includes('root@')).some((c) => c.includes('sudo'))).toBe(false);
  });

  it("deploy: a failing gate on h2 rolls both hosts back, h2's activation and profile through sudo", async () => {
    const s = await setup((f) => f.hosts[1]!.behaviour.set(sys('h2', '2.0.0'), 'runner-failed'));
    const r = await s.command('deploy', { json: true });
    expect(r.exitCode).toBe(ExitCode.failed);
    expect(r.data.outcome).toBe('rolled-back');
    expect(running(s.fleet)).toEqual([sys('h1', '1.0.0'), sys('h2', '1.0.0')]);
    expect(s.fleet.hosts.map((h) => h.profile)).toEqual([1, 1]);
  });

  it("backup create on h2: exo's state folder (perhaps under the 0700 /var/lib/private) is resolved and looked for as root", async () => {
    const s = await setup();
    const r = await s.command('backup', { json: true, hosts: ['h2'] } as ParsedOptions, ['create']);
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    expect(s.fleet.hosts[1]!.sudoCommands).toEqual(
      expect.arrayContaining(['readlink -m -- /var/lib/exo', 'test -e /var/lib/exo', LIST]),
    );
  });

  it('rollback --to 1 on h2: the profile and the activation through sudo', async () => {
    const s = await setup((f) => {
      for (const h of f.hosts) {
        h.generations.set(2, sys(h.name, '2.0.0'));
        h.profile = 2;
        h.running = sys(h.name, '2.0.0');
      }
    });
    const r = await s.command('rollback', { json: true, to: 1, hosts: ['h2'] } as ParsedOptions);
    expect(r.exitCode, r.text).toBe(ExitCode.ok);
    const h2 = s.fleet.hosts[1]!;
    expect(h2.running).toBe(sys('h2', '1.0.0'));
    expect(h2.profile).toBe(1);
    expect(h2.sudoCommands).toEqual(
      expect.arrayContaining([
        LIST,
        expect.stringMatching(
          /^nix-env -p \/nix\/var\/nix\/profiles\/system --(switch-generation 1|set )/,
        ),
        expect.stringMatching(/^systemd-run /),
      ]),
    );
    expect(s.fleet.hosts[0]!.running).toBe(sys('h1', '2.0.0'));
  });
});
