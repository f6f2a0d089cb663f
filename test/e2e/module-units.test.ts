// The units services.exo renders, running on the sandbox's hosts: exo with the module's
// hardening and DynamicUser, the health check timer restarting an exo that stopped answering,
// and a backup made by the module's own timer restored with exo-deploy.
import { describe, expect, it } from 'vitest';
import { until } from '../standin/harness.js';
import { explain, noFleet, useFleet, type Fleet, type SandboxHost } from './fleet-harness.js';

/** Polls `read` once a second until `done` holds, for at most `ms`; returns the value read. */
const poll = <T>(what: string, ms: number, read: () => Promise<T>, done: (v: T) => boolean) =>
  until(
    what,
    async () => {
      const v = await read();
      return done(v) ? { v } : null;
    },
    ms,
    1000,
  ).then((r) => r.v);

/** After a test that hung or restarted exo: its cluster re-forms (runners failing, instances
 * re-placed) for a while, and the module's health checks keep counting the failure lines it
 * left in their window. The peers of a restarted exo keep its old node id, and that node's
 * instance, until they time it out (30-40 s after its last news); the instance leaving /state
 * during the next deploy's soak fails that gate. Waits until every host's topology holds only
 * the current node ids and every host passes `check` over the last 10 s, and clears the hosts'
 * health counters, so that the next test's deploy is gated on its own release only. */
const untilFleetHealthy = async (f: Fleet) => {
  const api = 'http://127.0.0.1:52415';
  await poll(
    "no stale node ids in any host's topology",
    120_000,
    () =>
      Promise.all(
        f.hosts.map(async (h) => ({
          self: JSON.parse(await f.ssh(h, `curl -sf ${api}/node_id`)) as string,
          nodes: JSON.parse(await f.ssh(h, `curl -sf ${api}/state/topology/nodes`)) as string[],
        })),
      ),
    (views) => {
      const current = views
        .map((v) => v.self)
        .sort()
        .join(' ');
      return views.every((v) => [...v.nodes].sort().join(' ') === current);
    },
  );
  await poll(
    'a healthy fleet',
    120_000,
    () => f.cli(['check', '--since', '10s']),
    (r) => r.exitCode === 0,
  );
  for (const h of f.hosts) await f.ssh(h, 'rm -f /run/exo-healthcheck/health-failures');
};

const show = async (f: Fleet, h: SandboxHost, unit: string, props: string[]) =>
  Object.fromEntries(
    (await f.ssh(h, `systemctl show ${unit} ${props.map((p) => `-p ${p}`).join(' ')}`))
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe.skipIf(noFleet)(
  "the module's own units on the sandbox hosts",
  { timeout: 240_000 },
  () => {
    const fleet = useFleet(2);

    it('exo runs hardened, as a dynamic user, with its state in /var/lib/private; both timers are active', async () => {
      const f = fleet();
      const h1 = f.hosts[0]!;
      const exo = await show(f, h1, 'exo.service', [
        'DynamicUser',
        'ProtectSystem',
        'PrivateUsers',
        'MemoryDenyWriteExecute',
        'NoNewPrivileges',
        'ActiveState',
        'MainPID',
      ]);
      expect(exo).toMatchObject({
        DynamicUser: 'yes',
        ProtectSystem: 'strict',
        PrivateUsers: 'yes',
        MemoryDenyWriteExecute: 'yes',
        NoNewPrivileges: 'yes',
        ActiveState: 'active',
      });
      // the process itself: not root, a user only systemd knows of
      const uid = Number(await f.ssh(h1, `stat -c %u /proc/${exo.MainPID}`));
      expect(uid).toBeGreaterThan(60_000);
      expect(await f.ssh(h1, 'readlink /var/lib/exo')).toBe('private/exo');
      expect(Number(await f.ssh(h1, 'stat -c %u /var/lib/private/exo'))).toBe(uid);
      for (const timer of ['exo-healthcheck.timer', 'exo-backup.timer']) {
        expect((await show(f, h1, timer, ['ActiveState'])).ActiveState, timer).toBe('active');
      }
      // the health check, run now as a user of its own, finds this exo healthy: it read the
      // unit over D-Bus and the journal without root; root published its result for all to read
      await f.ssh(h1, 'systemctl start exo-healthcheck.service');
      const status = JSON.parse(await f.ssh(h1, 'cat /run/exo/health.json'));
      expect(status.healthy, JSON.stringify(status.checks?.[0]?.problems)).toBe(true);
      expect(status.checks[0].unit?.activeState).toBe('active');
      expect(await f.ssh(h1, 'stat -c %a /run/exo/health.json')).toBe('644');
      expect(await f.ssh(h1, 'stat -c %U /run/exo-healthcheck')).toBe('exo-healthcheck');
      expect(await f.ssh(h1, 'id -u exo-healthcheck')).not.toBe('0');
    });

    it('the health timer restarts an exo that stopped answering', async () => {
      const f = fleet();
      const h1 = f.hosts[0]!;
      await f.setExoSettings({ healthCheck: { interval: '3s', failureThreshold: 2 } });
      const deploy = await f.cli(['deploy', '--yes']);
      expect(deploy.exitCode, explain(deploy)).toBe(0);
      expect(
        await f.ssh(h1, 'systemctl show exo-healthcheck.timer -p TimersMonotonic --value'),
      ).toMatch(/OnUnitActiveUSec=3s/);

      // exo hangs: the process is there, nothing answers
      const hung = await f.mainPid(h1);
      await f.ssh(h1, `kill -STOP ${hung}`);
      await poll(
        'exo restarted by the health check',
        120_000,
        () => f.mainPid(h1),
        (pid) => pid !== 0 && pid !== hung,
      );
      // the hung process itself is gone, not merely replaced as the unit's main process
      expect(await f.ssh(h1, `test -e /proc/${hung} && echo alive || echo gone`)).toBe('gone');
      const journal = await f.ssh(h1, 'journalctl -u exo-healthcheck.service --no-pager -o cat');
      expect(journal).toMatch(
        /exo-healthcheck: 2 consecutive failed checks: restarting exo\.service/,
      );
      // the new exo answers, and the next check finds it healthy again
      await poll(
        'exo answering after the restart',
        60_000,
        () => f.ssh(h1, 'curl -sf http://127.0.0.1:52415/node_id'),
        (v) => v.length > 0,
      );
      await poll(
        'a healthy check after the restart',
        60_000,
        async () => JSON.parse(await f.ssh(h1, 'cat /run/exo/health.json')).healthy,
        (v) => v === true,
      );
    });

    it("a backup made by the module's timer is restored by exo-deploy", async () => {
      const f = fleet();
      const h2 = f.hosts[1]!;
      await untilFleetHealthy(f);
      await f.ssh(h2, "printf 'before-timer\\n' > /var/lib/private/exo/marker.txt");
      const before = (await f.ssh(h2, 'ls /var/backups/exo')).split('\n');
      // a timer that fires within seconds, instead of the module's daily one
      await f.setExoSettings({
        backup: { timerConfig: { OnActiveSec: '2s', OnUnitActiveSec: '1h', AccuracySec: '1s' } },
      });
      const deploy = await f.cli(['deploy', '--yes']);
      expect(deploy.exitCode, explain(deploy)).toBe(0);

      // the timer's backup: one that exo-backup.service logged (the deploy's are made over ssh)
      const logged = await poll(
        'a backup by exo-backup.service',
        90_000,
        () => f.ssh(h2, 'journalctl -u exo-backup.service --no-pager -o cat'),
        (j) => /local: backup \S+ in \/var\/backups\/exo/.test(j),
      );
      const id = /local: backup (\S+) in \/var\/backups\/exo/.exec(logged)![1]!;
      expect(before).not.toContain(id);
      expect(await f.ssh(h2, 'systemctl show exo-backup.timer -p LastTriggerUSec --value')).toMatch(
        /\d{4}-\d{2}-\d{2} /,
      );
      expect(await f.ssh(h2, `tar -xzOf /var/backups/exo/${id}/state.tar.gz ./marker.txt`)).toBe(
        'before-timer',
      );

      await f.ssh(h2, "printf 'after-timer\\n' > /var/lib/private/exo/marker.txt");
      const restore = await f.cli(['backup', 'restore', id, '--hosts', 'h2', '--json']);
      expect(restore.exitCode, explain(restore)).toBe(0);
      expect(await f.ssh(h2, 'cat /var/lib/exo/marker.txt')).toBe('before-timer');
      // exo runs again on the restored state, as its dynamic user
      await poll(
        'exo answering after the restore',
        60_000,
        () => f.ssh(h2, 'curl -sf http://127.0.0.1:52415/node_id'),
        (v) => v.length > 0,
      );
      const uid = await f.ssh(h2, `stat -c %u /proc/${await f.mainPid(h2)}`);
      expect(await f.ssh(h2, 'stat -c %u /var/lib/private/exo')).toBe(uid);
    });

    it('a failed release is rolled back past a pre-switch check that refuses going back to an older exo', async () => {
      const f = fleet();
      // an operator's check: never activate an older exo than the one running
      const refuseDowngrade = [
        'v() { sed -n \'s/.*"version":"\\([^"]*\\)".*/\\1/p\' "$1/etc/exo/release.json"; }',
        'old=$(v /run/current-system); new=$(v "$1")',
        '[ "$(printf \'%s\\n%s\\n\' "$old" "$new" | sort -V | head -n 1)" = "$old" ] || { echo "refusing to go back from exo $old to $new"; exit 1; }',
      ].join('\n');
      await untilFleetHealthy(f);
      await f.setNixosSettings({ system: { preSwitchChecks: { refuseDowngrade } } });
      const settled = await f.cli(['deploy', '--yes']);
      expect(settled.exitCode, explain(settled)).toBe(0);
      const before = await Promise.all(f.hosts.map((h) => f.running(h)));

      await f.ship('0.7.0', 'crash-on-start', ['h2']);
      const r = await f.cli(['deploy', '--yes', '--json']);
      // rolled back (1), not rollback-failed (3): putting back what ran skips the checks
      expect(r.exitCode, explain(r)).toBe(1);
      expect(await Promise.all(f.hosts.map((h) => f.running(h)))).toEqual(before);

      // the check is there and refuses an older exo when asked to go back by hand (rollback --to
      // runs the checks): h1 moves to 0.7.0 for good, then is asked back to the generation before
      await f.ship('0.7.1');
      const forward = await f.cli(['deploy', '--yes']);
      expect(forward.exitCode, explain(forward)).toBe(0);
      const generations = (
        await f.ssh(f.hosts[0]!, 'nix-env -p /nix/var/nix/profiles/system --list-generations')
      )
        .trim()
        .split('\n');
      const previous = Number(generations[generations.length - 2]!.trim().split(/\s+/)[0]);
      const back = await f.cli(['rollback', '--to', String(previous), '--hosts', 'h1']);
      expect(back.exitCode).not.toBe(0);
      expect(`${back.stdout}${back.stderr}`).toMatch(
        /refusing to go back from exo 0\.7\.1 to 0\.1\.0|Pre-switch checks failed/,
      );
    });
  },
);
