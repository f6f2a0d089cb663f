// exo's two eras on a 3-host sandbox, through the public commands: a cluster on a
// libp2p-era release moved to a zenoh-era release (a rolling attempt refused, lockstep done),
// a mixed-version rolling upgrade within one era, a release whose flags exo rejects caught as
// a crash loop and rolled back, a node that comes back under a new id and cannot rejoin (its
// stale id still in the others' topology), and smoke against runners that take a while to load.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { explain, noFleet, useFleet, type Fleet, type SandboxHost } from './fleet-harness.js';

const snapshot = async (f: Fleet) =>
  Promise.all(
    f.hosts.map(async (h) => ({
      running: await f.running(h),
      generations: await f.generationCount(h),
    })),
  );
const execStart = (f: Fleet, h: SandboxHost) =>
  f.ssh(h, 'systemctl show -p ExecStart --value exo.service');
const release = async (f: Fleet, h: SandboxHost) =>
  JSON.parse(await f.ssh(h, 'cat /etc/exo/release.json')) as {
    exo: { era: string; identity: string };
  };

describe.skipIf(noFleet)('exo eras', { timeout: 180_000 }, () => {
  const fleet = useFleet(3, { soak: '6s' });

  it('a zenoh-era cluster moving to a libp2p-era release: rolling refused (exit 2, nothing changed), lockstep moves all', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship('1.0.70');
    const refused = await f.cli(['deploy', '--yes', '--strategy', 'rolling']);
    expect(refused.exitCode, explain(refused)).toBe(2);
    expect(refused.stderr).toMatch(/zenoh.*libp2p|libp2p.*zenoh/);
    expect(await snapshot(f)).toEqual(before);

    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    for (const h of f.hosts) {
      const cmd = await execStart(f, h);
      expect(cmd).toContain('--libp2p-port');
      expect(cmd).not.toContain('--zenoh-port');
      expect((await release(f, h)).exo).toMatchObject({ era: 'libp2p', identity: '1.0.70' });
    }
    const check = await f.cli(['check', '--json']);
    expect(check.exitCode, explain(check)).toBe(0);
  });

  it('within the libp2p era and its one default namespace, rolling is allowed and the mixed-version cluster holds', async () => {
    const f = fleet();
    const before = await snapshot(f);
    await f.ship('1.0.71');
    const r = await f.cli(['deploy', '--yes', '--strategy', 'rolling', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    const steps = r.json.steps
      .filter((s: { step: string }) => s.step === 'test' || s.step === 'switch')
      .map((s: { step: string; host: string }) => `${s.step} ${s.host}`);
    expect(steps).toEqual(['test h1', 'switch h1', 'test h2', 'switch h2', 'test h3', 'switch h3']);
    const after = await snapshot(f);
    for (const [i, a] of after.entries()) expect(a.running).not.toBe(before[i]!.running);
    const gens = await f.cli(['generations', '--hosts', 'h1']);
    expect(gens.exitCode).toBe(0);
    expect(gens.stdout).toContain('1.0.70');
    expect(gens.stdout).toContain('1.0.71');
  });

  it('back to the zenoh era: rolling refused, lockstep moves all', async () => {
    const f = fleet();
    await f.ship('0.6.0', 'none', [], { era: 'zenoh' });
    const refused = await f.cli(['deploy', '--yes', '--strategy', 'canary']);
    expect(refused.exitCode, explain(refused)).toBe(2);
    const r = await f.cli(['deploy', '--yes']);
    expect(r.exitCode, explain(r)).toBe(0);
    for (const h of f.hosts) expect(await execStart(f, h)).toContain('--zenoh-port');
  });

  it('a release whose flags exo rejects crash-loops, is caught and rolled back on every host', async () => {
    const f = fleet();
    const before = await snapshot(f);
    // a libp2p-era exo that the configuration claims is zenoh: it gets --zenoh-port and exits 2
    await f.ship('1.0.69', 'none', [], { era: 'libp2p', declaredEra: 'zenoh' });
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(
      r.exitCode,
      JSON.stringify(
        r.json?.hosts?.map((h: { host: string; phase: string; problems: string[] }) => [
          h.host,
          h.phase,
          h.problems,
        ]),
      ),
    ).toBe(1);
    expect(r.json.outcome).toBe('rolled-back');
    expect((await snapshot(f)).map((s) => s.running)).toEqual(before.map((b) => b.running));
    const report = await readFile(r.json.reportFiles.markdown, 'utf8');
    expect(report).toMatch(/crash|failed to start|restarted/);
    const journal = await f.ssh(f.hosts[1]!, 'journalctl -u exo.service --no-pager -o cat -n 200');
    expect(journal).toContain(
      'EXO: error: unrecognized arguments: --zenoh-port 52414 --discovery-port 52413',
    );
    const check = await f.cli(['check', '--since', '1s']);
    expect(check.exitCode, explain(check)).toBe(0);
  });

  it("a node that restarts and cannot rejoin is not hidden by its stale id in the others' topology", async () => {
    const f = fleet();
    const h2 = f.hosts[1]!;
    const dropIn = '/run/systemd/system/exo.service.d';
    try {
      // exo on h2 restarts with a discovery namespace of its own: a new node id that nobody sees,
      // while h1 and h3 keep its old id for about 30-40 s
      await f.ssh(
        h2,
        `mkdir -p ${dropIn} && printf '[Service]\\nEnvironment=EXO_STANDIN_FAULT=isolated\\n' > ${dropIn}/isolate.conf && systemctl daemon-reload && systemctl restart exo.service`,
      );
      const seenBy = JSON.parse(await f.ssh(f.hosts[0]!, 'curl -sf http://127.0.0.1:52415/state'))
        .topology.nodes as string[];
      expect(seenBy.length).toBeGreaterThanOrEqual(3); // the stale id still counts as a node here
      const check = await f.cli(['check', '--json']);
      expect(check.exitCode, explain(check)).toBe(1);
      const problems = check.json.checks
        .flatMap((c: { host: string; problems: string[] }) =>
          c.problems.map((p) => `${c.host}: ${p}`),
        )
        .join('\n');
      expect(problems).toMatch(/h1: .*h2/);
    } finally {
      await f.ssh(
        h2,
        `rm -rf ${dropIn} && systemctl daemon-reload && systemctl restart exo.service`,
      );
    }
  });

  it('smoke waits for runners that take seconds to load, then chats', async () => {
    const f = fleet();
    await f.ship('0.6.1', 'none', [], { loadSeconds: 4 });
    const d = await f.cli(['deploy', '--yes']);
    expect(d.exitCode, explain(d)).toBe(0);
    const r = await f.cli(['smoke', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/ready/i);
  });
});
