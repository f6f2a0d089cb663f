import { mkdtemp, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { ExoDeployError, ExitCode } from '../../src/errors.js';

async function withConfig(toml: string, flake = true) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-config-'));
  if (flake) await writeFile(path.join(dir, 'flake.nix'), '{ outputs = _: { }; }\n');
  const file = path.join(dir, 'exo-deploy.toml');
  await writeFile(file, toml);
  return { dir, file };
}

async function configError(toml: string, flake = true): Promise<ExoDeployError> {
  const { file, dir } = await withConfig(toml, flake);
  const before = await readdir(dir);
  const error = await loadConfig(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ExoDeployError);
  expect((error as ExoDeployError).exitCode).toBe(ExitCode.usage);
  expect(await readdir(dir)).toEqual(before); // nothing changed
  return error as ExoDeployError;
}

describe('exo-deploy.toml', () => {
  it('resolves defaults, hosts, paths and the API address', async () => {
    const { file, dir } = await withConfig(`
flake = "."
[defaults]
ssh_options = ["-p", "2222"]
[health]
soak = "45s"
[hosts.gpu1]
target = "deploy@10.0.0.11"
tags = ["gpu"]
sudo = true
[hosts.me]
target = "local"
[hosts.v6]
target = "fd00::5"
api = "http://10.0.0.5:52415"
[programs]
nixos_rebuild = "./bin/nixos-rebuild"
`);
    const c = await loadConfig(file);
    expect(c.flake).toBe(dir);
    expect(c.health.soak).toBe(45_000);
    expect(c.health.ready_timeout).toBe(120_000);
    expect(c.programs.nixos_rebuild).toBe(path.join(dir, 'bin/nixos-rebuild'));
    expect(c.reportsDir).toBe(path.join(dir, 'reports'));
    const [gpu1, me, v6] = c.hosts;
    expect(gpu1).toMatchObject({
      name: 'gpu1',
      local: false,
      api: 'http://10.0.0.11:52415',
      sudo: true,
      sshOptions: ['-p', '2222'],
      tags: ['gpu'],
      systemProfile: '/nix/var/nix/profiles/system',
      currentSystem: '/run/current-system',
    });
    expect(me).toMatchObject({ local: true, api: 'http://127.0.0.1:52415', sudo: false });
    expect(v6).toMatchObject({ target: 'fd00::5', api: 'http://10.0.0.5:52415' });
    expect(c.smoke).toMatchObject({ timeout: 180_000, ready_timeout: 600_000 });
  });

  it('confirm_timeout and build_on: defaults, per host, and values that cannot work', async () => {
    const { file } = await withConfig(
      '[defaults]\nbuild_on = "target"\n[hosts.a]\ntarget = "root@10.0.0.1"\n[hosts.b]\ntarget = "root@10.0.0.2"\nconfirm_timeout = "2m"\nbuild_on = "deployer"\n[hosts.me]\ntarget = "local"\n',
    );
    const [a, b, me] = (await loadConfig(file)).hosts;
    expect([a?.confirmTimeoutMs, a?.buildOn]).toEqual([60_000, 'target']);
    expect([b?.confirmTimeoutMs, b?.buildOn]).toEqual([120_000, 'deployer']);
    expect(me?.buildOn).toBe('deployer'); // this machine is its target
    expect((await configError('[defaults]\nconfirm_timeout = "5s"\n')).message).toMatch(
      /defaults\.confirm_timeout: expected a duration from "10s" to "1h"/,
    );
    const hasty = await configError(
      '[timeouts]\nssh_connect = "20s"\n[hosts.a]\ntarget = "root@10.0.0.1"\nconfirm_timeout = "40s"\n',
    );
    expect(hasty.message).toMatch(
      /hosts\.a: confirm_timeout 40s is less than 3 × timeouts\.ssh_connect \(20s\)/,
    );
    expect(hasty.details.hint).toMatch(/at least 1m0s/);
    expect(
      (await configError('[hosts.a]\ntarget = "root@10.0.0.1"\nbuild_on = "laptop"\n')).message,
    ).toMatch(/hosts\.a\.build_on: .*"deployer".*"target"/);
  });

  it("refuses an IPv6 API address, set or derived from the target: exo's API listens on IPv4 only", async () => {
    const set = await configError(
      '[hosts.a]\ntarget = "root@10.0.0.1"\napi = "http://[fd00::5]:52415"\n',
    );
    expect(set.message).toContain("hosts.a.api: exo's API listens on IPv4 only (0.0.0.0)");
    const derived = await configError('[hosts.b]\ntarget = "root@fd00::6"\n');
    expect(derived.message).toContain(
      "hosts.b.api: not set, so it is the target's address, fd00::6, an IPv6 one; exo's API listens on IPv4 only (0.0.0.0)",
    );
    expect(derived.details.hint).toContain('set api = "http://IPv4:52415"');
  });

  it('reboot policy and window: defaults, a window over midnight in a named zone, and windows that cannot work', async () => {
    const { file } = await withConfig('[hosts.h1]\ntarget = "h1"\n');
    const defaults = await loadConfig(file);
    expect(defaults.rollout.reboot).toBe('auto');
    expect(defaults.rollout.reboot_window).toBeUndefined();
    const { file: set } = await withConfig(
      '[rollout]\nreboot = "never"\nreboot_window = "22:30-04:00 Europe/Berlin"\n[hosts.h1]\ntarget = "h1"\n',
    );
    const c = await loadConfig(set);
    expect(c.rollout.reboot).toBe('never');
    const w = c.rollout.reboot_window;
    expect(w).toMatchObject({ start: 22 * 60 + 30, end: 4 * 60, timeZone: 'Europe/Berlin' });
    // over midnight: open at 23:00 and 03:59 Berlin time, shut at 04:00 and at noon
    const { windowIsOpen } = await import('../../src/config/reboot.js');
    const berlin = (hhmm: string) => new Date(`2026-12-01T${hhmm}:00+01:00`);
    expect(['23:00', '03:59', '04:00', '12:00'].map((t) => windowIsOpen(w!, berlin(t)))).toEqual([
      true,
      true,
      false,
      false,
    ]);

    for (const [window, message] of [
      ['2-5', 'expected "HH:MM-HH:MM"'],
      ['02:00-02:00', 'a window that opens when it closes is empty'],
      ['02:00-05:00 Mars/Olympus', '"Mars/Olympus" is not a time zone'],
    ] as const) {
      const e = await configError(
        `[rollout]\nreboot_window = "${window}"\n[hosts.h1]\ntarget = "h1"\n`,
      );
      expect(e.message).toContain('rollout.reboot_window');
      expect(e.message).toContain(message);
    }
    expect(
      (await configError('[rollout]\nreboot = "sometimes"\n[hosts.h1]\ntarget = "h1"\n')).message,
    ).toContain('rollout.reboot');
  });

  it('reports a TOML syntax error with file, line and column', async () => {
    const e = await configError('flake = "."\n[health]\nsoak = = "1s"\n');
    expect(e.message).toMatch(/exo-deploy\.toml:3:8: TOML syntax error/);
  });

  it('reports schema errors with the key path and what was expected', async () => {
    const e = await configError(
      '[hosts.gpu1]\ntarget = "root@h"\nsudo = "yes"\n[health]\nsoak = "30"\ncluster_size = -1\n',
    );
    expect(e.message).toContain(
      'hosts.gpu1.sudo: Invalid input: expected boolean, received string',
    );
    expect(e.message).toContain('health.soak: expected a duration with a unit');
    expect(e.message).toContain('health.cluster_size:');
  });

  it('refuses unknown keys, naming their path', async () => {
    const e = await configError('[health]\nsaok = "30s"\n[hosts.a]\ntarget = "local"\nport = 1\n');
    expect(e.message).toContain('health.saok: unknown key');
    expect(e.message).toContain('hosts.a.port: unknown key');
  });

  it.each([['-oProxyCommand=touch /tmp/pwned'], ['a;b'], ['$(reboot)'], ['host name'], ['`id`']])(
    'refuses the hostile target %j',
    async (target) => {
      const e = await configError(`[hosts.h1]\ntarget = ${JSON.stringify(target)}\n`);
      expect(e.message).toContain('hosts.h1.target: expected "local" or "[user@]host"');
    },
  );

  it.each([['-oProxyCommand=x'], ['a;b'], ['$(x)']])(
    'refuses the hostile host name %j',
    async (name) => {
      const e = await configError(`[hosts.${JSON.stringify(name)}]\ntarget = "local"\n`);
      expect(e.message).toMatch(/a host name must be letters, digits/);
    },
  );

  it('refuses programs that read as options and relative system paths', async () => {
    const e = await configError(
      '[programs]\nnixos_rebuild = "--help"\n[defaults]\nsystem_profile = "nix/profile"\n',
    );
    expect(e.message).toContain('programs.nixos_rebuild: must not start with "-"');
    expect(e.message).toContain('defaults.system_profile: expected an absolute path');
  });

  it('says so when the file or the flake is missing', async () => {
    const missing = await loadConfig('/nonexistent/exo-deploy.toml').catch(
      (e: ExoDeployError) => e,
    );
    expect(missing).toMatchObject({ exitCode: ExitCode.usage });
    expect((missing as ExoDeployError).message).toContain(
      'cannot read the config file /nonexistent/exo-deploy.toml: ENOENT',
    );
    const e = await configError('flake = "./nope"\n', false);
    expect(e.message).toMatch(/flake: no flake\.nix in .*nope/);
  });

  it('takes a flake reference that is not a path as it is', async () => {
    const { file } = await withConfig('flake = "git+ssh://git@example.invalid/fleet"\n', false);
    const c = await loadConfig(file);
    expect(c).toMatchObject({ flake: 'git+ssh://git@example.invalid/fleet', flakeIsPath: false });
  });
});
