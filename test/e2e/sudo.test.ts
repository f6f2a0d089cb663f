// A host reached as a non-root user with `sudo = true`: h2 is reached as `deploy` (passwordless
// sudo, in Nix's trusted-users, as a NixOS deploy user is), h1 and h3 as root. check, a
// healthy deploy, a faulty one rolled back, and rollback --to N all work through sudo, with
// the hosts' state read over ssh (as root) by the test itself.
import { describe, expect, it } from 'vitest';
import { explain, noFleet, useFleet, type Fleet } from './fleet-harness.js';

const snapshot = async (f: Fleet) =>
  Promise.all(
    f.hosts.map(async (h) => ({
      running: await f.running(h),
      generations: await f.generationCount(h),
    })),
  );

describe.skipIf(noFleet)('a host reached as a sudo user', { timeout: 180_000 }, () => {
  const fleet = useFleet(3);

  it('check: healthy, with h2 reached as deploy with sudo', async () => {
    const f = fleet();
    const h2 = f.hosts[1]!;
    await f.useSudoUser(h2);
    // the user really is not root there, and the sandbox gives it what a NixOS deploy user has
    expect(await f.ssh(h2, 'su -s /bin/sh deploy -c "id -u"')).not.toBe('0');
    const r = await f.cli(['check', '--since', '1s', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    // every read worked through sudo: no journal or disk read failed on h2
    const h2Check = r.json.checks.find((c: { host: string }) => c.host === 'h2');
    expect(h2Check.problems).toEqual([]);
    expect(h2Check.warnings.filter((w: string) => /journalctl|denied|df/i.test(w))).toEqual([]);
    const gens = await f.cli(['generations', '--hosts', 'h2', '--json']);
    expect(gens.exitCode, explain(gens)).toBe(0);
    const running = gens.json.hosts[0].generations.find((g: { running: boolean }) => g.running);
    expect(running.path).toBe(await f.running(h2));
    // h2 saw exo-deploy log in as deploy, and run the profile's listing as root through sudo
    expect(
      await f.ssh(h2, "journalctl -o cat _COMM=sshd | grep -c 'Accepted publickey for deploy'"),
    ).not.toBe('0');
    expect(await f.ssh(h2, 'journalctl -o cat _COMM=sudo')).toMatch(
      /deploy : .*USER=root ; COMMAND=\S*nix-env -p \/nix\/var\/nix\/profiles\/system --list-generations/,
    );
  });

  it('a healthy deploy moves every host, h2 gets one more generation', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship('0.2.0');
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(r.json.outcome).toBe('success');
    const after = await snapshot(f);
    after.forEach((a, i) => {
      expect(a.running).not.toBe(before[i]!.running);
      expect(a.generations).toBe(before[i]!.generations + 1);
    });
    // the system the profile's newest generation names is the one running on h2
    const h2 = f.hosts[1]!;
    expect(await f.ssh(h2, 'readlink -f /nix/var/nix/profiles/system')).toBe(after[1]!.running);
    expect(await f.ssh(h2, 'systemctl is-active exo.service')).toBe('active');
  });

  it('a faulty release on h2 is rolled back on every host to the exact previous system', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship('0.3.0', 'crash-on-start', ['h2']);
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(1);
    expect(r.json.outcome).toBe('rolled-back');
    const after = await snapshot(f);
    expect(after.map((a) => a.running)).toEqual(before.map((b) => b.running));
    expect(await f.ssh(f.hosts[1]!, 'readlink -f /nix/var/nix/profiles/system')).toBe(
      before[1]!.running,
    );
    const check = await f.cli(['check', '--since', '1s']);
    expect(check.exitCode, explain(check)).toBe(0);
  });

  it("backup create and restore on h2: the backup is written as root through sudo, with exo's state, and put back into it", async () => {
    const f = fleet();
    const h2 = f.hosts[1]!;
    await f.ssh(h2, "mkdir -p /var/lib/exo && printf 'sudo-e2e\\n' > /var/lib/exo/marker.txt");
    const r = await f.cli(['backup', 'create', '--hosts', 'h2', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    const id = r.json.backups[0].id;
    const files = (await f.ssh(h2, `ls /var/backups/exo/${id}`)).split('\n');
    expect(files).toContain('state.tar.gz');
    expect(await f.ssh(h2, `stat -c %U /var/backups/exo/${id}/state.tar.gz`)).toBe('root');
    expect(await f.ssh(h2, `tar -xzOf /var/backups/exo/${id}/state.tar.gz ./marker.txt`)).toBe(
      'sudo-e2e',
    );

    // restore through sudo: into exo's real (0700) folder, the state it replaces kept aside
    await f.ssh(h2, "printf 'changed\\n' > /var/lib/exo/marker.txt");
    const restored = await f.cli(['backup', 'restore', id, '--hosts', 'h2', '--json']);
    expect(restored.exitCode, explain(restored)).toBe(0);
    expect(await f.ssh(h2, 'cat /var/lib/exo/marker.txt')).toBe('sudo-e2e');
    expect(restored.json.movedAside).toMatch(/^\/var\/lib\/private\/exo\.before-restore-/);
    expect(await f.ssh(h2, `cat ${restored.json.movedAside}/marker.txt`)).toBe('changed');
    expect(await f.ssh(h2, 'systemctl is-active exo.service')).toBe('active');
  });

  it('rollback --to N on h2 runs the system of generation N', async () => {
    const f = fleet();
    const h2 = f.hosts[1]!;
    const before = await f.running(h2);
    // the oldest generation, read from the host's profile itself (as root)
    const oldest = Number(
      (await f.ssh(h2, 'nix-env -p /nix/var/nix/profiles/system --list-generations'))
        .trim()
        .split('\n')[0]!
        .trim()
        .split(/\s+/)[0],
    );
    const target = await f.ssh(h2, `readlink -f /nix/var/nix/profiles/system-${oldest}-link`);
    expect(target).not.toBe(before);
    const r = await f.cli(['rollback', '--to', String(oldest), '--hosts', 'h2', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(await f.running(h2)).toBe(target);
    expect(await f.ssh(h2, 'readlink -f /nix/var/nix/profiles/system')).toBe(target);
    expect(await f.ssh(h2, 'systemctl is-active exo.service')).toBe('active');
  });
});
