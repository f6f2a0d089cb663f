// Releases that need a reboot (another kernel), deployed to sandbox hosts that really reboot:
// the container restarts, its store, profile and /var survive, and it boots its boot default.
// Through the public commands only; what the hosts booted is read over ssh by the test itself.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  explain,
  noFleet,
  useFleet,
  waitFor,
  type Fleet,
  type SandboxHost,
} from './fleet-harness.js';

const booted = (f: Fleet, h: SandboxHost) => f.ssh(h, 'readlink -f /run/booted-system');
const bootedKernel = async (f: Fleet, h: SandboxHost) =>
  /-linux-(\d+\.\d+\.\d+)\/bzImage$/.exec(
    await f.ssh(h, 'readlink -f /run/booted-system/kernel'),
  )?.[1];
/** The host's boots, counted outside it: systemd-nspawn announces each start of the container
 * on its console. */
const boots = async (h: SandboxHost) =>
  (await readFile(h.log, 'utf8'))
    .split('\n')
    .filter((l) => l.startsWith(`Spawning container ${h.name} `)).length;

describe.skipIf(noFleet)('releases that need a reboot', { timeout: 180_000 }, () => {
  const fleet = useFleet(2);
  /** Ships a release whose systems boot the other kernel (6.6.0 or 6.6.1) than the hosts booted. */
  const shipNeedingReboot = async (version: string, fault = 'none', faultOn: string[] = []) => {
    const f = fleet();
    const now = await bootedKernel(f, f.hosts[0]!);
    await f.ship(version, fault, faultOn, { needsReboot: now === '6.6.0' });
  };

  it('reboot = "never" refuses a release that boots another kernel (exit 2), naming each host and why; nothing changes', async () => {
    const f = fleet();
    const before = await Promise.all(f.hosts.map(f.running));
    await shipNeedingReboot('0.2.0');
    const r = await f.cli(['deploy', '--yes', '--reboot', 'never']);
    expect(r.exitCode, explain(r)).toBe(2);
    expect(r.stderr).toMatch(
      /reboot = "never", and the new system needs a reboot to run as built on h1 \(kernel linux-6\.6\.0 → linux-6\.6\.1; .*\), h2 \(kernel/,
    );
    expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
  });

  it('the same release deployed: each host gets it as its boot default, reboots into it, and is gated on the new boot', async () => {
    const f = fleet();
    const bootsBefore = await Promise.all(f.hosts.map(boots));
    const generationsBefore = await Promise.all(f.hosts.map(f.generationCount));
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(r.json.outcome).toBe('success');
    for (const [i, h] of f.hosts.entries()) {
      const built = r.json.hosts[i].built.systemPath;
      expect(r.json.hosts[i].reboots).toBe(true);
      expect(await booted(f, h)).toBe(built);
      expect(await f.running(h)).toBe(built);
      expect(await f.ssh(h, 'readlink -f /nix/var/nix/profiles/system')).toBe(built);
      expect(await bootedKernel(f, h)).toBe('6.6.1');
      expect(await boots(h)).toBe((bootsBefore[i] as number) + 1);
      expect(await f.generationCount(h)).toBe((generationsBefore[i] as number) + 1);
      // its reboot guard was armed at the boot, confirmed, and taken off after the gate
      expect(r.json.hosts[i].revertTimer).toMatchObject({ state: 'stopped', rebootGuard: true });
      expect(await f.ssh(h, 'ls -A /var/lib/exo-deploy/reboot-guard')).toBe('');
      expect(await f.revertUnits(h)).toEqual([]);
    }
    // the gate passed on the new boot: exo serving, the cluster re-formed
    const steps = r.json.steps.map((s: { step: string; host: string | null }) =>
      `${s.step} ${s.host ?? ''}`.trim(),
    );
    expect(steps.indexOf('health gate')).toBeGreaterThan(steps.indexOf('reboot h1'));
    expect(steps.indexOf('health gate')).toBeGreaterThan(steps.indexOf('reboot h2'));
    expect(steps).not.toContain('switch h1');
    expect(r.json.gate.passed).toBe(true);
  });

  it('a release that fails after the reboot: rolled back with a second reboot onto the exact previous system', async () => {
    const f = fleet();
    const before = await Promise.all(f.hosts.map(f.running));
    const bootsBefore = await Promise.all(f.hosts.map(boots));
    await shipNeedingReboot('0.3.0', 'runner-exit:2', ['h2']);
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(1);
    expect(r.json.outcome).toBe('rolled-back');
    for (const [i, h] of f.hosts.entries()) {
      expect(await f.running(h)).toBe(before[i]);
      expect(await booted(f, h)).toBe(before[i]);
      expect(await f.ssh(h, 'readlink -f /nix/var/nix/profiles/system')).toBe(before[i]);
      expect(await bootedKernel(f, h)).toBe('6.6.1');
      // into the new system, and back
      expect(await boots(h)).toBe((bootsBefore[i] as number) + 2);
    }
    const rollback = r.json.steps.find(
      (s: { step: string; host: string }) => s.step === 'rollback' && s.host === 'h2',
    );
    expect(rollback.outputTail).toMatch(/boot\n.*reboot \(back after \d+ s\)/);
  });

  it("a release that cuts ssh once booted (cut-ssh on h2): h2's reboot guard boots it back into the exact previous system, h1 is rolled back by the deployer; nothing left armed", async () => {
    const f = fleet();
    const before = await Promise.all(f.hosts.map(f.running));
    const bootsBefore = await Promise.all(f.hosts.map(boots));
    await shipNeedingReboot('0.3.5', 'cut-ssh', ['h2']);
    const r = await f.cli(['deploy', '--yes', '--json']);
    // exit 1, not 3: h2 came back within the bound the deployer waits
    expect(r.exitCode, explain(r)).toBe(1);
    expect(r.json.outcome).toBe('rolled-back');
    const h2 = r.json.hosts.find((h: { host: string }) => h.host === 'h2');
    expect(h2.revertTimer).toMatchObject({ state: 'fired', rebootGuard: true });
    expect(await readFile(r.json.reportFiles.markdown, 'utf8')).toMatch(
      /\| h2 \|.*\| rolled-back \(it put itself back: its reboot guard fired\) \|/,
    );
    for (const [i, h] of f.hosts.entries()) {
      expect(await f.running(h)).toBe(before[i]);
      expect(await booted(f, h)).toBe(before[i]);
      expect(await f.ssh(h, 'readlink -f /nix/var/nix/profiles/system')).toBe(before[i]);
      // into the new system, and back
      expect(await boots(h)).toBe((bootsBefore[i] as number) + 2);
      // the guard's folder is empty, and no revert timer is loaded
      expect(await f.ssh(h, 'ls -A /var/lib/exo-deploy/reboot-guard')).toBe('');
      expect(await f.revertUnits(h)).toEqual([]);
    }
    // on h2, the guard of the boot into the new system armed the timer, which fired
    expect(
      await f.ssh(f.hosts[1]!, 'journalctl -b -1 -u exo-deploy-reboot-guard.service -o cat'),
    ).toMatch(/exo-deploy rebooted this host into \/nix\/store\/\S+: arming its revert timer/);
  }, 180_000);

  it('Ctrl-C while the hosts reboot: exit 130; status names them; rollback --last reboots them back onto the exact previous system', async () => {
    const f = fleet();
    const before = await Promise.all(f.hosts.map(f.running));
    await shipNeedingReboot('0.4.0');
    const run = f.spawn(['deploy', '--yes', '--json']);
    let events = '';
    run.stderr?.on('data', (chunk: Buffer) => {
      events += chunk.toString();
    });
    // once a host's reboot is asked: before it, the run would end with no host rebooting
    await waitFor('a reboot', () =>
      /"event":"info"[^\n]*rebooting into the new system/.test(events),
    );
    run.kill('SIGINT');
    const r = await run;
    expect(r.exitCode).toBe(130);
    const status = await f.cli(['status', '--json']);
    expect(status.exitCode, explain(status)).toBe(1);
    expect(status.json.lastRun.outcome).toBe('interrupted');
    const text = await f.cli(['status']);
    expect(text.stdout).toMatch(
      /hosts it left on a new system: h1 \(activated\), h2 \(activated\)/,
    );
    // (a host whose reboot was not asked yet had its guard taken off by the deployer)
    expect(text.stdout).toMatch(/reboot guards it left: h[12] \(exo-deploy-revert-\S+\)/);
    const undo = await f.cli(['rollback', '--last']);
    expect(undo.exitCode, explain(undo)).toBe(0);
    for (const [i, h] of f.hosts.entries()) {
      expect(await f.running(h)).toBe(before[i]);
      expect(await f.ssh(h, 'readlink -f /nix/var/nix/profiles/system')).toBe(before[i]);
      // a host that came back on the new kernel went back with a reboot; its kernel is the old one
      expect(await bootedKernel(f, h)).toBe('6.6.1');
      // rollback --last took the guard off before its own reboot
      expect(await f.ssh(h, 'ls -A /var/lib/exo-deploy/reboot-guard')).toBe('');
    }
    const after = await f.cli(['status']);
    expect(after.exitCode, explain(after)).toBe(0);
  });

  it('a release whose pre-switch checks refuse a live switch (a switch inhibitor changed) takes the boot path, though its kernel is the one booted', async () => {
    const f = fleet();
    await f.setNixosSettings({
      system: { switch: { inhibitors: { 'dbus-implementation': 'broker' } } },
    });
    await f.ship('0.5.0', 'none', [], {
      needsReboot: (await bootedKernel(f, f.hosts[0]!)) === '6.6.1',
    });
    const plan = await f.cli(['deploy', '--dry-run', '--json']);
    expect(plan.exitCode, explain(plan)).toBe(0);
    for (const h of plan.json.hosts) {
      expect(h.rebootReasons).toHaveLength(1);
      expect(h.rebootReasons[0]).toMatch(
        /^its pre-switch checks refuse a live switch \(There are changes to critical components of the system: \{\} → \{"dbus-implementation":"broker"\}/,
      );
    }
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    for (const [i, h] of f.hosts.entries()) {
      expect(r.json.hosts[i].reboots).toBe(true);
      expect(await booted(f, h)).toBe(r.json.hosts[i].built.systemPath);
    }
  });
});
