// The sandbox fleet itself, below exo-deploy: real systemd hosts (systemd-nspawn), real
// Nix, real SSH, and the stand-in nixos-rebuild + switch-to-configuration.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { noSandbox as skip } from '../sandbox-requirements.js';

type Host = { name: string; address: string; netns: string; veth: string; pid: number };
type Out = { exitCode: number | null; stdout: string; stderr: string };

describe.skipIf(skip)('sandbox fleet (systemd-nspawn hosts, stand-in nixos-rebuild)', () => {
  let fleet: typeof import('../../sandbox/fleet.mjs');
  let dir: string;
  let state: { bridge: string; hosts: Host[] };
  let h1: Host;
  let h2: Host;
  const log = () => {};

  const ssh = async (h: Host, cmd: string) => {
    const r: Out = await fleet.sshHost(dir, h.address, cmd);
    if (r.exitCode !== 0) throw new Error(`ssh ${h.name} ${cmd}: exit ${r.exitCode}\n${r.stderr}`);
    return r.stdout.trim();
  };
  const mainPid = async (h: Host) => Number(await ssh(h, 'systemctl show -p MainPID --value exo'));
  const generations = async (h: Host) =>
    (await ssh(h, 'nix-env -p /nix/var/nix/profiles/system --list-generations'))
      .split('\n')
      .filter(Boolean);
  const currentSystem = (h: Host) => ssh(h, 'readlink /run/current-system');
  const profilePath = (h: Host) => ssh(h, 'readlink -f /nix/var/nix/profiles/system');
  const toplevel = (h: Host) =>
    execFileSync(
      'nix',
      [
        'eval',
        '--raw',
        `${dir}/config#nixosConfigurations.${h.name}.config.system.build.toplevel.outPath`,
      ],
      { env: fleet.nixEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    ).trim();
  const rebuild = async (action: string, h: Host, extra: string[] = []) => {
    const r: Out = await fleet.nixosRebuild(dir, action as 'switch', h, extra);
    return r;
  };
  const mustRebuild = async (action: string, h: Host, extra: string[] = []) => {
    const r = await rebuild(action, h, extra);
    if (r.exitCode !== 0)
      throw new Error(`nixos-rebuild ${action} ${h.name}: exit ${r.exitCode}\n${r.stderr}`);
    return r;
  };
  const get = async (h: Host, route: string) => {
    const res = await fetch(`http://${h.address}:52415${route}`, {
      signal: AbortSignal.timeout(2000),
    });
    return res.json() as Promise<unknown>;
  };
  const until = async <T>(
    what: string,
    fn: () => Promise<T>,
    ok: (v: T) => boolean,
    ms = 20_000,
  ) => {
    const deadline = Date.now() + ms;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const v = await fn();
        if (ok(v)) return v;
        last = v;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `${what}: not within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`,
    );
  };
  const newRelease = async (version: string, fault = 'none', faultOn: string[] = []) => {
    await fleet.release({ dir, version, fault, faultOn, log });
    await fleet.lockExo(dir);
  };

  beforeAll(async () => {
    fleet = await import('../../sandbox/fleet.mjs');
    dir = mkdtempSync(path.join(tmpdir(), 'exo-sandbox-test-'));
    const t0 = Date.now();
    state = await fleet.up({ dir, hosts: 2, deploy: false, log });
    console.log(`sandbox up (2 hosts, no deploy): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    [h1, h2] = state.hosts as [Host, Host];
  });

  afterAll(async () => {
    if (!fleet || !dir) return;
    await fleet.down({ dir, log });
    rmSync(dir, { recursive: true, force: true });
  });

  it("gives units NixOS's bare PATH: systemd's own programs, no coreutils", async () => {
    const r = await fleet.sshHost(
      dir,
      h1.address,
      'systemd-run --wait --pipe --quiet --collect -- sh -c "systemctl --version >/dev/null && mkdir /tmp/x"',
    );
    expect(r.exitCode).toBe(127);
    expect(String(r.stderr)).toMatch(/mkdir: not found/);
  });

  it('boots every host with sshd and systemd running', async () => {
    for (const h of [h1, h2]) {
      expect(await ssh(h, 'hostname')).toBe(h.name);
      expect(['running', 'degraded']).toContain(
        (await fleet.sshHost(dir, h.address, 'systemctl is-system-running')).stdout.trim(),
      );
    }
  });

  it('switch: generation 1, exo answers, /run/current-system is the toplevel, peers see each other', async () => {
    await Promise.all([mustRebuild('switch', h1), mustRebuild('switch', h2)]);
    for (const h of [h1, h2]) {
      const gens = await generations(h);
      expect(gens).toHaveLength(1);
      expect(gens[0]).toMatch(/^\s*1\s.*\(current\)/);
      expect(await currentSystem(h)).toBe(toplevel(h));
      expect(
        typeof (await until(
          `${h.name} /node_id`,
          () => get(h, '/node_id'),
          (v) => typeof v === 'string',
        )),
      ).toBe('string');
      const release = JSON.parse(await ssh(h, 'cat /etc/exo/release.json'));
      expect(release).toMatchObject({
        schemaVersion: 2,
        exo: { version: '0.1.0', identity: '0.1.0', era: 'zenoh' },
        ports: { api: 52415, zenoh: 52414 },
        namespace: null,
      });
      expect(release.exo.package).toMatch(/^\/nix\/store\/[a-z0-9]{32}-exo-0\.1\.0$/);
    }
    for (const h of [h1, h2]) {
      await until(
        `${h.name} /state lists both nodes`,
        () => get(h, '/state') as Promise<{ topology: { nodes: unknown[] } }>,
        (s) => s.topology.nodes.length === 2,
      );
    }
  });

  it('switch with the same configuration does not restart exo', async () => {
    const before = await mainPid(h1);
    expect(before).toBeGreaterThan(0);
    const r = await mustRebuild('switch', h1);
    expect(r.stderr).not.toMatch(/restarting the following units/);
    expect(await mainPid(h1)).toBe(before);
    expect(await generations(h1)).toHaveLength(1);
  });

  it('switch to a changed release restarts exo and adds a generation', async () => {
    await newRelease('0.2.0');
    const before = await mainPid(h1);
    const r = await mustRebuild('switch', h1);
    expect(r.stderr).toMatch(/restarting the following units: exo\.service/);
    expect(await mainPid(h1)).not.toBe(before);
    expect(await generations(h1)).toHaveLength(2);
    expect(await currentSystem(h1)).toBe(toplevel(h1));
    expect(JSON.parse(await ssh(h1, 'cat /etc/exo/release.json')).exo.version).toBe('0.2.0');
  });

  it('test activates without touching the profile; --rollback goes back', async () => {
    const profileBefore = await profilePath(h1);
    await newRelease('0.3.0');
    const pid = await mainPid(h1);
    await mustRebuild('test', h1);
    expect(await currentSystem(h1)).toBe(toplevel(h1));
    expect(await profilePath(h1)).toBe(profileBefore);
    expect(await generations(h1)).toHaveLength(2);
    expect(await mainPid(h1)).not.toBe(pid);
    // switch of the same toplevel after test: profile moves, exo is not restarted again
    const pidAfterTest = await mainPid(h1);
    await mustRebuild('switch', h1);
    expect(await generations(h1)).toHaveLength(3);
    expect(await mainPid(h1)).toBe(pidAfterTest);
    // test --rollback: the generation below the current one, profile untouched
    await mustRebuild('test', h1, ['--rollback']);
    expect(await currentSystem(h1)).toBe(profileBefore);
    expect((await generations(h1)).find((g) => g.includes('(current)'))).toMatch(/^\s*3\s/);
    // switch --rollback: the profile goes back too
    await mustRebuild('switch', h1, ['--rollback']);
    expect((await generations(h1)).find((g) => g.includes('(current)'))).toMatch(/^\s*2\s/);
    expect(await currentSystem(h1)).toBe(profileBefore);
  });

  it("switch-to-configuration takes its lock without waiting, as NixOS's does: exit 11", async () => {
    // another activation holds the lock (wait until it really does: the unit starts on its own;
    // its PATH has no sleep, as on NixOS)
    await fleet.sshHost(
      dir,
      h1.address,
      'systemd-run --unit=hold-stc-lock --collect flock /run/nixos/switch-to-configuration.lock /bin/sleep 5',
    );
    await until(
      'the lock to be held',
      async () =>
        (
          await fleet.sshHost(
            dir,
            h1.address,
            'flock -n /run/nixos/switch-to-configuration.lock true',
          )
        ).exitCode,
      (code) => code !== 0,
    );
    const r = await fleet.sshHost(
      dir,
      h1.address,
      '"$(readlink -f /run/current-system)"/bin/switch-to-configuration test',
    );
    expect(r.exitCode).toBe(11);
    expect(String(r.stderr)).toContain('Could not acquire lock');
    await until(
      'the lock to be free',
      async () =>
        (
          await fleet.sshHost(
            dir,
            h1.address,
            'flock -n /run/nixos/switch-to-configuration.lock true',
          )
        ).exitCode,
      (code) => code === 0,
    );
  });

  it('exo failing to start: switch-to-configuration exits 4, nixos-rebuild reports it as ng does and exits 4', async () => {
    await newRelease('0.4.0', 'crash-on-start', ['h2']);
    const r = await rebuild('test', h2);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toMatch(/warning: the following units failed: exo\.service/);
    expect(r.stderr).toMatch(
      /Command '.*systemd-run .*\/bin\/switch-to-configuration test' returned non-zero exit status 4\./,
    );
    const stc = await fleet.sshHost(
      dir,
      h2.address,
      `${toplevel(h2)}/bin/switch-to-configuration test`,
    );
    expect(stc.exitCode).toBe(4);
    // the fault is for h2 only
    await mustRebuild('test', h1);
    await until(
      'h1 /node_id',
      () => get(h1, '/node_id'),
      (v) => typeof v === 'string',
    );
  });

  it('pre-switch checks: a failing one stops any action before it changes anything, unless NIXOS_NO_CHECK=1', async () => {
    await fleet.setNixosSettings({
      dir,
      settings: { system: { preSwitchChecks: { refuse: 'echo "refusing $2 of $1"; false' } } },
    });
    const running = await currentSystem(h1);
    const pid = await mainPid(h1);
    const r = await rebuild('test', h1);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/refusing test of \/nix\/store\/\S+-nixos-system-h1-/);
    expect(r.stderr).toMatch(/Pre-switch check 'refuse' failed\nPre-switch checks failed/);
    expect(await currentSystem(h1)).toBe(running);
    expect(await mainPid(h1)).toBe(pid);
    // only NIXOS_NO_CHECK=1 passes it, as switch-to-configuration-ng reads it
    const refused = toplevel(h1);
    expect(
      (
        await fleet.sshHost(
          dir,
          h1.address,
          `NIXOS_NO_CHECK=yes ${refused}/bin/switch-to-configuration dry-activate`,
        )
      ).exitCode,
    ).toBe(1);
    expect(
      (
        await fleet.sshHost(
          dir,
          h1.address,
          `NIXOS_NO_CHECK=1 ${refused}/bin/switch-to-configuration dry-activate`,
        )
      ).exitCode,
    ).toBe(0);
    await fleet.setNixosSettings({ dir, settings: {} });
    await mustRebuild('test', h1);
  });

  it('a reboot starts the boot default, not what `test` activated; the store, the profile, /var and the machine id survive it', async () => {
    // h1 runs a test activation now (the test above); its boot default is its profile's system
    const running = await currentSystem(h1);
    const bootDefault = await ssh(h1, 'readlink /boot/default-system');
    expect(bootDefault).toBe(await profilePath(h1));
    expect(bootDefault).not.toBe(running);
    const gens = await generations(h1);
    const machineId = await ssh(h1, 'cat /etc/machine-id');
    await ssh(h1, 'echo kept > /var/lib/kept-over-reboot && touch /run/gone-after-reboot');
    await fleet.sshHost(dir, h1.address, 'systemctl reboot');
    await until(
      'h1 booted again',
      () => ssh(h1, 'test ! -e /run/gone-after-reboot && systemctl is-system-running || true'),
      (v) => v === 'running' || v === 'degraded',
      90_000,
    );
    expect(await ssh(h1, 'readlink /run/booted-system')).toBe(bootDefault);
    expect(await currentSystem(h1)).toBe(bootDefault);
    expect(await generations(h1)).toEqual(gens);
    expect(await ssh(h1, 'cat /var/lib/kept-over-reboot')).toBe('kept');
    expect(await ssh(h1, 'cat /etc/machine-id')).toBe(machineId);
    // the booted system's exo runs: the stage-2 stand-in activated it
    expect(await mainPid(h1)).toBeGreaterThan(0);
    await until(
      'h1 /node_id after the reboot',
      () => get(h1, '/node_id'),
      (v) => typeof v === 'string',
    );
    expect(JSON.parse(await ssh(h1, 'cat /etc/exo/release.json')).exo.package).toBe(
      JSON.parse(await ssh(h1, `cat ${bootDefault}/etc/exo/release.json`)).exo.package,
    );
  });

  it('down removes every host, namespace and link, and is safe twice', async () => {
    const pids = state.hosts.map((h) => h.pid);
    await fleet.down({ dir, log });
    await fleet.down({ dir, log });
    const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    for (const h of state.hosts) {
      expect(netns).not.toContain(h.netns);
      expect(() =>
        execFileSync('ip', ['link', 'show', 'dev', h.veth], { stdio: 'ignore' }),
      ).toThrow();
    }
    expect(() =>
      execFileSync('ip', ['link', 'show', 'dev', state.bridge], { stdio: 'ignore' }),
    ).toThrow();
    for (const pid of pids) {
      const cmdline = (() => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          return '';
        }
      })();
      expect(cmdline).not.toContain('nspawn'); // the loop that boots a host again, and its nspawn
    }
    expect(existsSync(path.join(dir, 'sandbox.json'))).toBe(false);
    expect(existsSync(path.join(dir, 'hosts'))).toBe(false); // the hosts' disks
    expect(fleet.orphanedContainers()).toEqual([]); // no container outlived its systemd-nspawn
  });
});
