// Pull mode on the sandbox: three hosts whose services.exo.autoDeploy timer follows the config
// repository's main branch (served by git's daemon on the bridge). An update proposed on a
// branch and merged reaches every host; a broken release is rolled back on each host by the
// host itself, onto its exact previous system, and not tried again; a rewound branch is
// refused. The deployer's `status` shows which commit each host runs and how far behind it is.
import { describe, expect, it } from 'vitest';
import { explain, noFleet, useFleet, type Fleet, type SandboxHost } from './fleet-harness.js';

const INTERVAL = 15;
/** A test waits for the hosts' timers: a few intervals, builds and health gates. */
const TEST_MS = 6 * 60_000;

/** Polls every host's pull state until `done` holds for each, up to `ms`; returns how long. */
async function untilEvery(
  f: Fleet,
  what: string,
  done: (state: any) => boolean,
  ms: number,
): Promise<number> {
  const started = Date.now();
  let states: any[] = [];
  while (Date.now() - started < ms) {
    states = await Promise.all(f.hosts.map(f.pullState));
    if (states.every((s) => s && done(s))) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new Error(
    `timed out waiting for ${what}; the hosts' last attempts: ${JSON.stringify(states.map((s) => s?.lastAttempt))}`,
  );
}

const releaseRevision = (f: Fleet, h: SandboxHost) =>
  f
    .ssh(h, 'cat /run/current-system/etc/exo/release.json')
    .then((t) => JSON.parse(t).configRevision as string);

describe.skipIf(noFleet)('pull mode: hosts that follow the config repository', () => {
  const fleet = useFleet(3, {}, { pull: { interval: INTERVAL } });

  it(
    "update --branch proposes a release for review: the commit message lists exo's commits",
    async () => {
      const f = fleet();
      const main = await f.head();
      await f.release('0.2.0');
      const r = await f.cli(['update', 'exo', '--branch', 'exo-0.2.0', '--json']);
      expect(r.exitCode, explain(r)).toBe(0);
      expect(r.json.branch).toBe('exo-0.2.0');
      // exo's input is a local git repository: its commits between the two revisions
      expect(r.json.message).toMatch(/exo 0\.2\.0/);
      expect(await f.git('log', '-1', '--format=%B', 'exo-0.2.0')).toContain('exo 0.2.0');
      // main is untouched until the change is merged
      expect(await f.head()).toBe(main);
    },
    TEST_MS,
  );

  it(
    'merged into main, the release reaches every host within two intervals, each healthy and recording the commit',
    async () => {
      const f = fleet();
      const before = await Promise.all(f.hosts.map(f.running));
      const mergedAt = Date.now();
      await f.git('merge', '-q', '--ff-only', 'exo-0.2.0');
      const merged = await f.head();
      const took = await untilEvery(
        f,
        `every host deploying ${merged}`,
        (s) => s.deployed?.revision === merged,
        2 * INTERVAL * 1000 + 180_000,
      );
      // when each host's deploy began: its run id is its start time (UTC)
      const started = (await Promise.all(f.hosts.map(f.pullState))).map((s) => {
        const m = /^(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)-(\d{3})$/.exec(s.deployed.run);
        return m
          ? Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`)
          : Number.NaN;
      });
      console.log(
        `pull: every host ran ${merged.slice(0, 12)} ${Math.round(took / 1000)} s after the merge; their deploys began ${started.map((t) => `${((t - mergedAt) / 1000).toFixed(1)} s`).join(', ')} after it (interval ${INTERVAL} s)`,
      );
      const after = await Promise.all(f.hosts.map(f.running));
      for (const [i, p] of after.entries()) expect(p).not.toBe(before[i]);
      for (const [i, h] of f.hosts.entries()) {
        expect(await releaseRevision(f, h)).toBe(merged);
        expect((await f.pullState(h)).deployed.system).toBe(after[i]);
        expect(await f.revertUnits(h)).toEqual([]);
      }
      const check = await f.cli(['check', '--since', '1s']);
      expect(check.exitCode, explain(check)).toBe(0);
      const status = await f.cli(['status', '--json']);
      expect(status.exitCode, explain(status)).toBe(0);
      for (const h of status.json.hosts)
        expect(h.config, h.host).toMatchObject({ revision: merged, behind: 0, ahead: 0 });
    },
    TEST_MS,
  );

  it(
    'a broken release: each host rolls itself back onto its exact previous system, marks the commit bad and does not retry it; status shows them behind',
    async () => {
      const f = fleet();
      const before = await Promise.all(f.hosts.map(f.running));
      const good = await f.head();
      await f.ship('0.3.0', 'runner-exit:2');
      const broken = await f.head();
      await untilEvery(
        f,
        `every host trying ${broken}`,
        (s) => s.lastAttempt?.revision === broken && s.lastAttempt.outcome !== 'deploying',
        2 * INTERVAL * 1000 + 180_000,
      );
      for (const [i, h] of f.hosts.entries()) {
        const s = await f.pullState(h);
        // rolled back at its run, skipped at each later one
        expect(
          ['rolled-back', 'skipped-bad'],
          `${h.name}: ${JSON.stringify(s.lastAttempt)}`,
        ).toContain(s.lastAttempt.outcome);
        expect(s.bad.find((b: any) => b.revision === broken)?.reason).toMatch(
          /the health gate failed: .*Runner terminated/,
        );
        expect(s.rollbacks).toBe(1);
        expect(s.deployed.revision).toBe(good);
        expect(await f.running(h)).toBe(before[i]);
        expect(await releaseRevision(f, h)).toBe(good);
      }
      // the next run sees the same tip and leaves it alone
      await untilEvery(
        f,
        `every host skipping ${broken}`,
        (s) => s.lastAttempt?.outcome === 'skipped-bad',
        2 * INTERVAL * 1000 + 60_000,
      );
      expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
      const status = await f.cli(['status', '--json']);
      for (const h of status.json.hosts)
        expect(h.config, h.host).toMatchObject({ revision: good, behind: 1, ahead: 0 });
      expect(status.stdout).toBeDefined();
      const check = await f.cli(['check', '--since', '1s']);
      expect(check.exitCode, explain(check)).toBe(0);
    },
    TEST_MS,
  );

  it(
    'a pull killed (SIGKILL) while its release is being activated here: the next run puts the host back on its exact previous system',
    async () => {
      const f = fleet();
      const before = await Promise.all(f.hosts.map(f.running));
      // exo answers only after 12 s: the activation is held that long
      await f.ship('0.3.2', 'slow-start:12');
      const slow = await f.head();
      // each host's pull is killed while its activation of the new system runs (in a unit of
      // its own, which goes on without the pull)
      await Promise.all(
        f.hosts.map(async (h) => {
          const deadline = Date.now() + 2 * INTERVAL * 1000 + 120_000;
          while (Date.now() < deadline) {
            const activating = await f.ssh(
              h,
              "systemctl list-units --plain --no-legend --state=active,activating 'exo-deploy-switch-*'",
            );
            if (activating) {
              // by PID: the sandbox's nspawn cannot signal a unit's whole cgroup (EIO)
              await f.ssh(h, 'kill -KILL "$(systemctl show -p MainPID --value exo-deploy-pull)"');
              return;
            }
            await new Promise((r) => setTimeout(r, 300));
          }
          throw new Error(`${h.name} never began activating ${slow}`);
        }),
      );
      await untilEvery(
        f,
        'every host putting itself back',
        // (its "restored" attempt lasts one interval: the mark stays)
        (s) => s.bad.some((b: any) => b.revision === slow),
        2 * INTERVAL * 1000 + 120_000,
      );
      for (const [i, h] of f.hosts.entries()) {
        const s = await f.pullState(h);
        expect(s.bad.find((b: any) => b.revision === slow).reason, h.name).toMatch(
          /its deploy \(\d{8}-\d{6}-\d{3}\) was stopped midway/,
        );
        expect(['restored', 'skipped-bad']).toContain(s.lastAttempt.outcome);
        // the broken release's rollback, and this one's
        expect(s.rollbacks).toBe(2);
        expect(await f.running(h)).toBe(before[i]);
        // put back with exo judged by the stopped commit's own config, which loads
        const log = await f.ssh(h, 'journalctl -u exo-deploy-pull -o cat');
        expect(log).toMatch(/stopped while deploying [0-9a-f]{12}, .*: putting it back first/);
        expect(log).not.toMatch(/judged by the toolkit's defaults/);
      }
      // and the stopped run's commit is not tried again
      await untilEvery(
        f,
        `every host skipping ${slow}`,
        (s) => s.lastAttempt?.outcome === 'skipped-bad' && s.lastAttempt.revision === slow,
        2 * INTERVAL * 1000 + 60_000,
      );
      expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
    },
    TEST_MS,
  );

  it(
    'a release that needs a reboot is held: a host does not reboot itself, nothing is activated',
    async () => {
      const f = fleet();
      const before = await Promise.all(f.hosts.map(f.running));
      await f.ship('0.3.1', 'none', [], { needsReboot: true });
      const rebooting = await f.head();
      await untilEvery(
        f,
        `every host holding ${rebooting}`,
        (s) => s.lastAttempt?.revision === rebooting && s.lastAttempt.outcome !== 'deploying',
        2 * INTERVAL * 1000 + 180_000,
      );
      for (const h of f.hosts) {
        const s = await f.pullState(h);
        // held at its first run, skipped at each later one
        expect(['held', 'skipped-held'], h.name).toContain(s.lastAttempt.outcome);
        expect(s.held[0]?.reason).toMatch(/needs a reboot: kernel \S*6\.6\.0 → \S*6\.6\.1/);
        expect(s.held.map((m: any) => m.revision)).toEqual([rebooting]);
      }
      expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
    },
    TEST_MS,
  );

  it(
    'main rewound behind what the hosts run (a force-push): refused, the hosts stay',
    async () => {
      const f = fleet();
      const before = await Promise.all(f.hosts.map(f.running));
      const at = (await f.pullState(f.hosts[0] as SandboxHost)).deployed.revision;
      await f.git('reset', '-q', '--hard', `${at}~1`);
      const rewound = await f.head();
      await untilEvery(
        f,
        'every host refusing the rewound branch',
        (s) => s.lastAttempt?.revision === rewound && s.lastAttempt.outcome === 'behind',
        2 * INTERVAL * 1000 + 60_000,
      );
      expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
      for (const h of f.hosts) expect((await f.pullState(h)).lastAttempt.exitCode).toBe(2);
    },
    TEST_MS,
  );
});
