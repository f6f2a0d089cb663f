// The revert timer's script, run by a real sh against a profile of symlinks, a nix-env and
// systems whose switch-to-configuration only write down how they were called.
import { execFile } from 'node:child_process';
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import { programPathArgv } from '../../src/programs/coreutils.js';
import { guardBack } from '../../src/system/reboot-guard.js';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  REBOOT_REVERT_SCRIPT,
  REVERT_SCRIPT,
  rebootGuardTimerArgs,
  revertTimerArgv,
  type RebootRevertTo,
  type RevertTo,
} from '../../src/programs/systemd-run.js';

const run = promisify(execFile);

interface Host {
  dir: string;
  profile: string;
  old: string;
  next: string;
  other: string;
  calls: () => Promise<string[]>;
  /** The script as systemd would run it; resolves to its exit code. */
  revert: (to: Partial<RevertTo>) => Promise<number>;
  /** The reboot guard's script as its timer would run it; resolves to its exit code. */
  rebootRevert: (to: Partial<RebootRevertTo>) => Promise<number>;
  statusFile: string;
}

const made: string[] = [];
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

async function host(): Promise<Host> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-revert-'));
  made.push(dir);
  const log = path.join(dir, 'calls');
  await writeFile(log, '');
  const system = async (name: string) => {
    const p = path.join(dir, name);
    await mkdir(path.join(p, 'bin'), { recursive: true });
    // exits 11 (lock held) while the file "locked" exists, as switch-to-configuration-ng does
    await writeFile(
      path.join(p, 'bin/switch-to-configuration'),
      `#!/bin/sh\nif [ -e "${dir}/locked" ]; then echo "Could not acquire lock" >&2; exit 11; fi\necho "${name} $1 NIXOS_NO_CHECK=$NIXOS_NO_CHECK" >> "${log}"\n`,
    );
    await chmod(path.join(p, 'bin/switch-to-configuration'), 0o755);
    return p;
  };
  const [old, next, other] = [await system('old'), await system('next'), await system('other')];
  const profile = path.join(dir, 'system');
  await symlink(old, `${profile}-1-link`);
  await symlink(next, `${profile}-2-link`);
  await symlink(`${profile}-2-link`, profile);
  const nixEnv = path.join(dir, 'nix-env');
  await writeFile(
    nixEnv,
    `#!/bin/sh\necho "nix-env $*" >> "${log}"\n[ "$3" = --switch-generation ] && ln -sfn "$2-$4-link" "$2"\nexit 0\n`,
  );
  await chmod(nixEnv, 0o755);
  const systemctl = path.join(dir, 'systemctl');
  await writeFile(systemctl, `#!/bin/sh\necho "systemctl $*" >> "${log}"\n`);
  await chmod(systemctl, 0o755);
  const statusFile = path.join(dir, 'revert.status');
  const scriptFile = path.join(dir, 'revert.sh');
  await writeFile(scriptFile, REVERT_SCRIPT);
  const rebootScriptFile = path.join(dir, 'reboot-revert.sh');
  await writeFile(rebootScriptFile, REBOOT_REVERT_SCRIPT);
  const armFile = path.join(dir, 'arm');
  await writeFile(armFile, 'the arguments\0');
  return {
    dir,
    profile,
    old,
    next,
    other,
    statusFile,
    calls: async () => (await readFile(log, 'utf8')).trim().split('\n').filter(Boolean),
    revert: async (to) => {
      // the command line the timer's unit runs
      const argv = revertTimerArgv('u', 60, scriptFile, statusFile, {
        systemProfile: profile,
        running: old,
        profilePath: old,
        profileGeneration: 1,
        sh: '/bin/sh',
        nixEnv,
        ...to,
      });
      const [sh, ...args] = argv.slice(argv.indexOf('--') + 1);
      return run(sh as string, args).then(
        () => 0,
        (e: { code: number }) => e.code,
      );
    },
    rebootRevert: async (to) => {
      // the arguments the host's guard gives systemd-run at boot
      const argv = rebootGuardTimerArgs('u', 60, rebootScriptFile, statusFile, {
        armFile,
        systemProfile: profile,
        bootDefault: old,
        profileGeneration: 1,
        sh: '/bin/sh',
        nixEnv,
        systemctl,
        ...to,
      });
      const [sh, ...args] = argv.slice(argv.indexOf('--') + 1);
      return run(sh as string, args).then(
        () => 0,
        (e: { code: number }) => e.code,
      );
    },
  };
}

describe("the revert timer's script", () => {
  it('after switch: points the profile back to the recorded generation, then switches to the system the host ran', async () => {
    const h = await host();
    expect(await h.revert({})).toBe(0);
    expect(await h.calls()).toEqual([
      `nix-env -p ${h.profile} --switch-generation 1`,
      'old switch NIXOS_NO_CHECK=1',
    ]);
    expect(await readlink(h.profile)).toBe(`${h.profile}-1-link`);
    expect((await readFile(h.statusFile, 'utf8')).trim()).toBe('0');
  });

  it('after test only: the profile is where it was, so no nix-env; the system it ran is activated again', async () => {
    const h = await host();
    await run('ln', ['-sfn', `${h.profile}-1-link`, h.profile]);
    expect(await h.revert({})).toBe(0);
    expect(await h.calls()).toEqual(['old switch NIXOS_NO_CHECK=1']);
  });

  it("a host that ran something other than its profile: the profile's system is the boot default again, the one it ran is activated with test", async () => {
    const h = await host();
    expect(await h.revert({ running: h.other })).toBe(0);
    expect(await h.calls()).toEqual([
      `nix-env -p ${h.profile} --switch-generation 1`,
      'old boot NIXOS_NO_CHECK=1',
      'other test NIXOS_NO_CHECK=1',
    ]);
  });

  it('while another activation holds the lock: exits 11 and writes no status (systemd starts it again); the next start finishes the job', async () => {
    const h = await host();
    await writeFile(path.join(h.dir, 'locked'), '');
    expect(await h.revert({})).toBe(11);
    await expect(readFile(h.statusFile, 'utf8')).rejects.toThrow(/ENOENT/);
    await run('rm', [path.join(h.dir, 'locked')]);
    expect(await h.revert({})).toBe(0);
    // the profile went back on the first start; the second finds it there and only switches
    expect(await h.calls()).toEqual([
      `nix-env -p ${h.profile} --switch-generation 1`,
      'old switch NIXOS_NO_CHECK=1',
    ]);
    expect((await readFile(h.statusFile, 'utf8')).trim()).toBe('0');
  });

  it('without a recorded profile (the host had none): only the system it ran is activated, with test', async () => {
    const h = await host();
    expect(await h.revert({ profilePath: null, profileGeneration: null })).toBe(0);
    expect(await h.calls()).toEqual(['old test NIXOS_NO_CHECK=1']);
  });

  it("a failing activation: its exit status is the revert's, in the status file", async () => {
    const h = await host();
    await writeFile(path.join(h.old, 'bin/switch-to-configuration'), '#!/bin/sh\nexit 4\n');
    expect(await h.revert({})).toBe(4);
    expect((await readFile(h.statusFile, 'utf8')).trim()).toBe('4');
  });
});

describe("the reboot guard's script", () => {
  it('points the profile back to the recorded generation, makes its system the boot default, then reboots', async () => {
    const h = await host();
    expect(await h.rebootRevert({})).toBe(0);
    expect(await h.calls()).toEqual([
      `nix-env -p ${h.profile} --switch-generation 1`,
      'old boot NIXOS_NO_CHECK=1',
      'systemctl reboot',
    ]);
    expect(await readlink(h.profile)).toBe(`${h.profile}-1-link`);
    // written before the reboot: the deployer reads it from the next boot
    expect((await readFile(h.statusFile, 'utf8')).trim()).toBe('0');
    // fired once: its arguments are gone, so no later boot arms it again
    expect(await readFile(path.join(h.dir, 'arm'), 'utf8')).toBe('');
  });

  it('a profile already back: no nix-env, only the boot default and the reboot', async () => {
    const h = await host();
    await run('ln', ['-sfn', `${h.profile}-1-link`, h.profile]);
    expect(await h.rebootRevert({})).toBe(0);
    expect(await h.calls()).toEqual(['old boot NIXOS_NO_CHECK=1', 'systemctl reboot']);
  });

  it('without a recorded generation: the profile is set to the boot default', async () => {
    const h = await host();
    expect(await h.rebootRevert({ profileGeneration: null })).toBe(0);
    expect((await h.calls())[0]).toBe(`nix-env -p ${h.profile} --set ${h.old}`);
  });

  it('while another activation holds the lock: exits 11, no status, no reboot', async () => {
    const h = await host();
    await writeFile(path.join(h.dir, 'locked'), '');
    expect(await h.rebootRevert({})).toBe(11);
    await expect(readFile(h.statusFile, 'utf8')).rejects.toThrow(/ENOENT/);
    expect(await h.calls()).not.toContain('systemctl reboot');
    // systemd starts it again: the guard is still whole
    expect(await readFile(path.join(h.dir, 'arm'), 'utf8')).toBe('the arguments\0');
  });

  it('a boot default that cannot be installed: its exit status in the status file, and no reboot into the new system again', async () => {
    const h = await host();
    await writeFile(path.join(h.old, 'bin/switch-to-configuration'), '#!/bin/sh\nexit 1\n');
    expect(await h.rebootRevert({})).toBe(1);
    expect((await readFile(h.statusFile, 'utf8')).trim()).toBe('1');
    expect(await h.calls()).not.toContain('systemctl reboot');
  });
});

describe('the programs a revert runs, found on the host', () => {
  it('nix-env through store paths under its own name: a link to nix keeps the name it acts on', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-program-path-'));
    made.push(dir);
    // nix's package: bin/nix, and bin/nix-env a link to it, as nixpkgs' nix has them
    const nix = path.join(dir, 'store/n1x-nix-2.24.0/bin');
    await mkdir(nix, { recursive: true });
    await writeFile(path.join(nix, 'nix'), '#!/bin/sh\necho "run as $(basename "$0")"\n');
    await chmod(path.join(nix, 'nix'), 0o755);
    await symlink('nix', path.join(nix, 'nix-env'));
    // the system's profile of programs links to it, and /run/current-system/sw to that
    const sw = path.join(dir, 'store/5w-system-path/bin');
    await mkdir(sw, { recursive: true });
    await symlink(path.join(nix, 'nix-env'), path.join(sw, 'nix-env'));
    await symlink(path.join(dir, 'store/5w-system-path'), path.join(dir, 'current-sw'));
    const [sh, ...args] = programPathArgv('nix-env');
    const found = (
      await run(sh as string, args, {
        env: { PATH: `${path.join(dir, 'current-sw/bin')}:/usr/bin:/bin` },
      })
    ).stdout.trim();
    expect(found).toBe(path.join(nix, 'nix-env'));
    expect((await run(found, [])).stdout.trim()).toBe('run as nix-env');
  });

  it('a program that is not there: exit 1, no path', async () => {
    const [sh, ...args] = programPathArgv('no-such-program-here');
    await expect(run(sh as string, args)).rejects.toMatchObject({ code: 1, stdout: '' });
  });
});

describe('what a reboot guard boots back into', () => {
  const recorded = (profilePath: string | null, running: string | null) => ({
    running,
    profilePath,
    profileGeneration: profilePath ? 7 : null,
    booted: running,
  });
  it("the profile's system before the deploy, by its generation", () => {
    expect(guardBack(recorded('/nix/store/r', '/nix/store/r'), '/nix/store/x')).toEqual({
      bootDefault: '/nix/store/r',
      profileGeneration: 7,
    });
  });
  it('never the guarded system itself (a profile an interrupted run left on it): the system the host ran, else nothing', () => {
    expect(guardBack(recorded('/nix/store/x', '/nix/store/r'), '/nix/store/x')).toEqual({
      bootDefault: '/nix/store/r',
      profileGeneration: null,
    });
    expect(guardBack(recorded('/nix/store/x', '/nix/store/x'), '/nix/store/x')).toBeNull();
  });
});
