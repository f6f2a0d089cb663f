// Fleet rollouts under faults, on a 3-host sandbox through the public commands:
// rolling and canary healthy and failing, the rolling refusal, Ctrl-C during the soak, a
// link cut during activation, two deploys at once, a stale lock, and a support bundle.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import {
  explain,
  noFleet,
  useFleet,
  waitFor,
  type Fleet,
  type SandboxHost,
} from './fleet-harness.js';

const snapshot = async (f: Fleet) =>
  Promise.all(
    f.hosts.map(async (h) => ({
      running: await f.running(h),
      generations: await f.generationCount(h),
      pid: await f.mainPid(h),
    })),
  );
const exoActive = async (f: Fleet, h: SandboxHost) => f.ssh(h, 'systemctl is-active exo.service');

// A rolling deploy of three hosts takes three gated batches: 55 to 75 s, by the machine. What
// it asserts is the order and the outcome; how fast is the benchmarks' to measure.
describe.skipIf(noFleet)('rollouts', { timeout: 240_000 }, () => {
  // the soak outlasts exo's 5 s runner watchdog, which is what reports a dead runner
  const fleet = useFleet(3, { soak: '8s' });
  let release = 0;
  const next = () => {
    release += 1;
    return `0.5.${release}`;
  };

  it('rolling without a pinned namespace is refused, exit 2, and changes nothing', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship(next());
    const r = await f.cli(['deploy', '--yes', '--strategy', 'rolling']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(
      'refusing a rolling deploy: its batches would not form one exo cluster',
    );
    // the sandbox's releases are of the zenoh era, whose default namespace no release.json tells
    expect(r.stderr).toContain('zenoh-era exo with no pinned namespace');
    expect(await snapshot(f)).toEqual(before);
  });

  it('rolling --force, healthy: host by host, every host on the new system, one more generation each', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship(next());
    const r = await f.cli(['deploy', '--yes', '--strategy', 'rolling', '--force', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    const tests = r.json.steps
      .filter((s: { step: string }) => s.step === 'test' || s.step === 'switch')
      .map((s: { step: string; host: string }) => `${s.step} ${s.host}`);
    expect(tests).toEqual(['test h1', 'switch h1', 'test h2', 'switch h2', 'test h3', 'switch h3']);
    const after = await snapshot(f);
    after.forEach((a, i) => {
      expect(a.running).not.toBe(before[i]!.running);
      expect(a.generations).toBe(before[i]!.generations + 1);
    });
    for (const h of f.hosts) expect(await exoActive(f, h)).toBe('active');
  });

  it('rolling --force, fault on h2: h1 (already permanent) and h2 go back, h3 is never touched', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship(next(), 'runner-exit:2', ['h2']);
    const r = await f.cli(['deploy', '--yes', '--strategy', 'rolling', '--force', '--json']);
    expect(r.exitCode).toBe(1);
    expect(r.json.hosts.map((h: { phase: string }) => h.phase)).toEqual([
      'rolled-back',
      'rolled-back',
      'pending',
    ]);
    const after = await snapshot(f);
    expect(after.map((a) => a.running)).toEqual(before.map((b) => b.running));
    expect(after[2]).toEqual(before[2]); // h3: same system, same generations, same exo process
    const gens = await f.cli(['generations', '--hosts', 'h1', '--json']);
    expect(gens.json.hosts[0].generations.find((g: { current: boolean }) => g.current).path).toBe(
      before[0]!.running,
    );
  });

  it('with a namespace pinned on every node, rolling needs no --force and each batch is gated with the whole cluster', async () => {
    const f = fleet();
    // a healthy release (the last one carried a fault) and the pinned namespace, in lockstep
    await f.ship(next());
    await f.pinNamespace('sandbox');
    const pin = await f.cli(['deploy', '--yes']);
    expect(pin.exitCode, pin.stdout + pin.stderr).toBe(0);
    await f.ship(next());
    const r = await f.cli(['deploy', '--yes', '--strategy', 'rolling', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(r.stderr).not.toContain('--force');
    for (const h of f.hosts)
      expect(JSON.parse(await f.ssh(h, 'cat /etc/exo/release.json')).namespace).toBe('sandbox');
  }, 240_000);

  it('canary, fault on the canary: only the canary is touched and rolled back', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship(next(), 'queue-closed:2', ['h1']);
    const r = await f.cli(['deploy', '--yes', '--strategy', 'canary', '--json']);
    expect(r.exitCode).toBe(1);
    expect(r.json.hosts.map((h: { phase: string }) => h.phase)).toEqual([
      'rolled-back',
      'pending',
      'pending',
    ]);
    const after = await snapshot(f);
    expect(after[0]!.running).toBe(before[0]!.running);
    expect(after.slice(1)).toEqual(before.slice(1));
  });

  it('canary, healthy: the canary first, then the rest together', async () => {
    const f = fleet();
    await f.ship(next());
    const r = await f.cli(['deploy', '--yes', '--strategy', 'canary', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    const order = r.json.steps
      .filter((s: { step: string }) => s.step === 'switch')
      .map((s: { host: string }) => s.host);
    expect(order[0]).toBe('h1');
    expect(new Set(order)).toEqual(new Set(['h1', 'h2', 'h3']));
  });

  it('Ctrl-C during the soak: exit 130, status shows the test activations, rollback --last undoes them', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship(next());
    const run = f.spawn(['deploy', '--yes', '--json']);
    let events = '';
    run.stderr?.on('data', (chunk: Buffer) => (events += chunk.toString()));
    await waitFor('the soak', () => events.includes('(soak)'));
    run.kill('SIGINT');
    const r = await run;
    expect(r.exitCode).toBe(130);
    const status = await f.cli(['status', '--json']);
    expect(status.exitCode).toBe(1);
    expect(status.json.hosts.map((h: { testActivation: boolean }) => h.testActivation)).toEqual([
      true,
      true,
      true,
    ]);
    expect(status.json.lastRun.outcome).toBe('interrupted');
    // interrupted on purpose: no host is left to revert by itself
    expect(await Promise.all(f.hosts.map(f.revertUnits))).toEqual([[], [], []]);
    const text = await f.cli(['status']);
    expect(text.stdout).toMatch(/\(test activation\)/);
    // a deploy over the test activations is refused: it would take them for the systems to come back to
    const over = await f.cli(['deploy', '--yes']);
    expect(over.exitCode, explain(over)).toBe(2);
    expect(over.stderr).toMatch(
      /left h1 \(activated\), h2 \(activated\), h3 \(activated\) unresolved/,
    );
    const undo = await f.cli(['rollback', '--last']);
    expect(undo.exitCode, undo.stdout + undo.stderr).toBe(0);
    expect((await snapshot(f)).map((s) => s.running)).toEqual(before.map((b) => b.running));
    const after = await f.cli(['status']);
    expect(after.exitCode, explain(after)).toBe(0);
  });

  it('a link cut for a few seconds during activation: the activation survives and the deploy completes', async () => {
    const f = fleet();
    await f.ship(next());
    const h2 = f.hosts[1]!;
    const run = f.spawn(['deploy', '--yes', '--json']);
    let events = '';
    run.stderr?.on('data', (chunk: Buffer) => (events += chunk.toString()));
    await waitFor('h2 test', () => /"event":"step-start","step":"test","host":"h2"/.test(events));
    await execa('ip', ['link', 'set', h2.veth, 'down']);
    await new Promise((r) => setTimeout(r, 4000));
    await execa('ip', ['link', 'set', h2.veth, 'up']);
    const r = await run;
    const record = JSON.parse(String(r.stdout));
    expect(r.exitCode, String(r.stderr).slice(-2000)).toBe(0);
    expect(record.outcome).toBe('success');
    for (const h of f.hosts)
      expect(await f.running(h)).toBe(
        record.hosts.find((x: { host: string }) => x.host === h.name).built.systemPath,
      );
  });

  it('two deploys at once: the second exits 4 and names the holder; the first completes', async () => {
    const f = fleet();
    await f.ship(next());
    const first = f.spawn(['deploy', '--yes']);
    const lock = path.join(path.dirname(f.config), '.exo-deploy', 'deploy.lock');
    await waitFor('the lock', () => existsSync(lock));
    const second = await f.cli(['deploy', '--yes']);
    expect(second.exitCode).toBe(4);
    expect(second.stderr).toMatch(new RegExp(`another deploy holds the lock .*PID ${first.pid}`));
    expect((await first).exitCode).toBe(0);
  });

  it('a stale lock (its process is gone) is taken over with a warning', async () => {
    const f = fleet();
    const lock = path.join(path.dirname(f.config), '.exo-deploy', 'deploy.lock');
    await writeFile(
      lock,
      JSON.stringify({
        pid: 2 ** 22 + 4321,
        host: os.hostname(),
        user: 'root',
        startedAt: '2026-11-27T23:00:00Z',
        command: 'deploy h1',
      }),
    );
    await f.ship(next());
    const r = await f.cli(['deploy', '--yes']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(r.stderr).toMatch(
      /taking over a stale deploy lock \(PID \d+ since 2026-11-27T23:00:00Z is gone\)/,
    );
  });

  it('bundle: a folder per host with what support needs, and a planted secret nowhere in it', async () => {
    const f = fleet();
    const h1 = f.hosts[0]!;
    const secret = 'hf_PlantedSecretToken1234567890';
    // The secret in exo's environment, in a command line that systemctl status shows, and in
    // exo's journal (what a start script that echoes its settings leaves there).
    const dropIn = '/run/systemd/system/exo.service.d/plant.conf';
    await f.ssh(
      h1,
      `mkdir -p /run/systemd/system/exo.service.d && printf '[Service]\\nEnvironment=HF_TOKEN=${secret}\\nExecStartPre=/bin/echo loading token ${secret} from HF_TOKEN=${secret}\\n' > ${dropIn} && systemctl daemon-reload && systemctl restart exo.service`,
    );
    expect(
      Number(await f.ssh(h1, `journalctl -u exo.service --no-pager | grep -c ${secret}`)),
    ).toBeGreaterThan(0);
    const out = path.join(
      await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-bundle-test-')),
      'support.tar.gz',
    );
    const r = await f.cli(['bundle', '--since', '1h', '--out', out, '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    const unpacked = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-bundle-x-'));
    await execa('tar', ['-xzf', out, '-C', unpacked]);
    const [top] = await readdir(unpacked);
    const root = path.join(unpacked, top as string);
    expect((await readdir(root)).sort()).toEqual([
      'README.txt',
      'deploy-journal.jsonl',
      'h1',
      'h2',
      'h3',
    ]);
    expect((await readdir(path.join(root, 'h1'))).sort()).toEqual([
      'check.json',
      'generations.json',
      'journal.txt',
      'state.json',
      'systemctl-status.txt',
    ]);
    const journal = await readFile(path.join(root, 'h1', 'journal.txt'), 'utf8');
    expect(journal).toContain('loading token <redacted> from HF_TOKEN=<redacted>');
    const status = await readFile(path.join(root, 'h1', 'systemctl-status.txt'), 'utf8');
    expect(status).toContain(
      'ExecStartPre=/bin/echo loading token <redacted> from HF_TOKEN=<redacted>',
    );
    const everything = (await execa('grep', ['-r', '-l', secret, root], { reject: false })).stdout;
    expect(everything).toBe('');
    await f.ssh(h1, `rm -f ${dropIn} && systemctl daemon-reload && systemctl restart exo.service`);
  });
});
