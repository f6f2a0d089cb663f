// Each fault class of the exo stand-in, on one host of three: the gate catches it, every host
// goes back to the system it ran before, exo is healthy again, exit 1, and the report names
// the evidence. A slow but healthy start within ready_timeout is not rolled back.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { explain, noFleet, useFleet } from './fleet-harness.js';

const FAULTS: [fault: string, evidence: RegExp][] = [
  ['crash-on-start', /units failed to start|crash|restarted/],
  // Which crash signal depends on when exo exits: while `test` still runs (activation sees
  // the unit fail), or after it: exo's own last line in the journal, or, by when the gate's
  // first sample lands, a restart, the unit's state between restarts, or a crash loop.
  [
    'exit-after:3',
    /units failed to start|EXO terminated due to unhandled exception|restarted \d+ time\(s\): exo crashed|exo.service is (activating|failed)|exo.service is crash-looping/,
  ],
  // exo's watchdog finds a dead runner at its next 5 s tick; the failure is transient in exo
  // (re-created with backoff), so any of its traces counts
  [
    'runner-exit:2',
    /Runner found to be dead|Runner terminated with exitcode=1|runner \S+ failed: Terminated|exo deleted instance/,
  ],
  ['queue-closed:2', /Unreachable code path - let me know!/],
  ['closed-resource:2', /anyio\.ClosedResourceError/],
  // the module's readiness wait holds `test` until the unit's start timeout (20 s on the
  // sandbox hosts), which then fails the unit
  ['hang', /units failed to start|did not answer http:\/\/\S+\/models within 20000 ms/],
  // the readiness wait takes only a 2xx from /models: `test` fails at the start timeout too
  ['http-500', /units failed to start|\/models: HTTP 500 \(2 samples in a row\)/],
  ['isolated', /exo sees 1 of 3 nodes/],
];

describe.skipIf(noFleet)('faults caught by the health gate', { timeout: 150_000 }, () => {
  const fleet = useFleet(3);
  let release = 0;

  it.each(FAULTS)(
    '%s on h2: caught, every host rolled back, healthy again',
    async (fault, evidence) => {
      const f = fleet();
      const before = await Promise.all(f.hosts.map(f.running));
      release += 1;
      await f.ship(`0.3.${release}`, fault, ['h2']);
      const r = await f.cli(['deploy', '--yes', '--json']);
      expect(r.exitCode, explain(r)).toBe(1);
      expect(r.json.outcome).toBe('rolled-back');
      expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
      // the hosts were rolled back by the deployer, and their revert timers stopped
      expect(await Promise.all(f.hosts.map(f.revertUnits))).toEqual([[], [], []]);
      const report = await readFile(r.json.reportFiles.markdown, 'utf8');
      expect(report).toContain('**ROLLED BACK');
      expect(report).toMatch(evidence);
      const check = await f.cli(['check', '--since', '1s']);
      expect(check.exitCode, explain(check)).toBe(0);
    },
    150_000,
  );

  it('cut-ssh on h2 (the release stops sshd): h2 puts itself back with its revert timer, the others are rolled back, each onto its exact previous system; nothing left armed', async () => {
    const f = fleet();
    const before = await Promise.all(f.hosts.map(f.running));
    const profiles = await Promise.all(
      f.hosts.map((h) => f.ssh(h, 'readlink -f /nix/var/nix/profiles/system')),
    );
    await f.ship('0.3.90', 'cut-ssh', ['h2']);
    const r = await f.cli(['deploy', '--yes', '--json']);
    // exit 1, not 3: h2 was back within the bound the deployer waits (its timer, then an
    // activation); found before the gate, so no host was gated while h2 put itself back
    expect(r.exitCode, explain(r)).toBe(1);
    expect(r.json.outcome).toBe('rolled-back');
    expect(r.json.error, explain(r)).toMatch(
      /h2: after test, cannot be reached over a new ssh connection \(.*Connection refused/,
    );
    expect(r.json.steps.map((s: { step: string }) => s.step)).not.toContain('health gate');
    const h2 = r.json.hosts.find((h: { host: string }) => h.host === 'h2');
    expect(h2.revertTimer.state).toBe('fired');
    expect(await readFile(r.json.reportFiles.markdown, 'utf8')).toMatch(
      /\| h2 \|.*\| rolled-back \(it put itself back: its revert timer fired\) \|/,
    );
    expect(
      r.json.steps.find(
        (s: { step: string; host: string }) => s.step === 'rollback' && s.host === 'h2',
      ).outputTail,
    ).toMatch(/its revert timer exo-deploy-revert-\S+ put it back/);
    // h1 and h3 were put back by the deployer, and their timers stopped
    expect(
      r.json.hosts
        .filter((h: { host: string }) => h.host !== 'h2')
        .map((h: { revertTimer: { state: string } }) => h.revertTimer.state),
    ).toEqual(['stopped', 'stopped']);
    expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
    expect(
      await Promise.all(f.hosts.map((h) => f.ssh(h, 'readlink -f /nix/var/nix/profiles/system'))),
    ).toEqual(profiles);
    expect(await Promise.all(f.hosts.map(f.revertUnits))).toEqual([[], [], []]);
    const check = await f.cli(['check', '--since', '1s']);
    expect(check.exitCode, explain(check)).toBe(0);
  }, 150_000);

  it('slow-start within ready_timeout is healthy: deployed, not rolled back', async () => {
    const f = fleet();
    // 15 s: longer than activation takes, shorter than the unit's start timeout (20 s), within
    // which the module's readiness wait holds `test` until exo answers
    await f.ship('0.4.0', 'slow-start:15', ['h2']);
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(r.json.outcome).toBe('success');
    const h2 = r.json.gate.hosts.find((h: { host: string }) => h.host === 'h2');
    expect(h2.problems).toEqual([]);
    // exo started once on h2 (no restart while it was slow): the wait was the unit's own
    expect(h2.lastSample.unit.restarts).toBe(0);
  });
});
