// A healthy update deployed to a 3-host fleet, rollback --to N, and backup + restore, through
// the public commands only, with the hosts' state read over ssh by the test itself.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { explain, noFleet, useFleet } from './fleet-harness.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

describe.skipIf(noFleet)('deploy on a healthy fleet', { timeout: 180_000 }, () => {
  const fleet = useFleet(3);

  it('a healthy update: one more generation, exo not restarted by switch, the new version listed', async () => {
    const f = fleet();
    const generationsBefore = await Promise.all(f.hosts.map(f.generationCount));
    // the harness tuned exo-deploy.toml (tracked) after `up`: committed, so that the systems are
    // built from a clean tree and record its commit (a dirty one would record "dirty")
    const config = path.join(f.dir, 'config');
    await execa('git', ['-C', config, 'commit', '-q', '-a', '-m', 'the tests health settings']);
    await f.ship('0.2.0');
    const r = await f.cli(['deploy', '--yes', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    expect(r.json.outcome).toBe('success');
    expect(await Promise.all(f.hosts.map(f.generationCount))).toEqual(
      generationsBefore.map((n) => n + 1),
    );
    for (const host of f.hosts) {
      // the PID the gate saw after `test` is the PID running after `switch`
      const atGate = r.json.gate.hosts.find((h: { host: string }) => h.host === host.name)
        .lastSample.unit.mainPid;
      expect(atGate).toBeGreaterThan(0);
      expect(await f.mainPid(host)).toBe(atGate);
    }
    const gens = await f.cli(['generations', '--json']);
    for (const h of gens.json.hosts) {
      const newest = h.generations[0];
      expect(newest).toMatchObject({ current: true, running: true, exo: '0.2.0' });
    }
    const report = await readFile(r.json.reportFiles.markdown, 'utf8');
    expect(report).toContain('**SUCCESS');
    expect(report).toMatch(/exo-0\.1\.0 → 0\.2\.0|0\.1\.0 → 0\.2\.0/);
    await expectRunningWhatWasBuilt(r.json.hosts);
    // each host's revert timer ran from its test to its switch, and is gone
    expect(
      r.json.hosts.map((h: { revertTimer: { state: string } }) => h.revertTimer.state),
    ).toEqual(['stopped', 'stopped', 'stopped']);
    expect(await Promise.all(f.hosts.map(f.revertUnits))).toEqual([[], [], []]);
    // the same kernel as the system each host booted: no reboot needed
    expect(r.json.hosts.map((h: { rebootReasons: unknown }) => h.rebootReasons)).toEqual([
      [],
      [],
      [],
    ]);

    // each system records the config commit it was built from; status places it against HEAD
    const head = (await execa('git', ['-C', config, 'rev-parse', 'HEAD'])).stdout;
    const placed = async () =>
      (await f.cli(['status', '--json'])).json.hosts.map((h: { config: unknown }) => h.config);
    expect(await placed()).toEqual(
      f.hosts.map(() => ({ revision: head, commit: head, dirty: false, behind: 0, ahead: 0 })),
    );
    await execa('git', ['-C', config, 'commit', '-q', '--allow-empty', '-m', 'a later commit']);
    expect(await placed()).toEqual(
      f.hosts.map(() => ({ revision: head, commit: head, dirty: false, behind: 1, ahead: 0 })),
    );
    expect((await f.cli(['status'])).stdout).toContain(`${head.slice(0, 7)} (1 behind)`);
  });

  it('--dry-run tells which hosts a release needs to reboot, and why: a new kernel, read from the systems built and the one each host booted', async () => {
    const f = fleet();
    await f.ship('0.2.1', 'none', [], { needsReboot: true });
    const r = await f.cli(['deploy', '--dry-run', '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    for (const h of r.json.hosts)
      expect(h.rebootReasons).toEqual([
        'kernel linux-6.6.0 → linux-6.6.1',
        'initrd initrd-linux-6.6.0 → initrd-linux-6.6.1',
        'kernel modules linux-6.6.0-modules → linux-6.6.1-modules',
      ]);
    const text = await f.cli(['deploy', '--dry-run']);
    expect(text.stdout).toMatch(
      /h2: exo [^\n]*\n(.*\n)*? {2}reboots into it: kernel linux-6\.6\.0 → linux-6\.6\.1/,
    );
    // what the hosts booted is what their first NixOS system linked, and still is
    for (const host of f.hosts)
      expect(await f.ssh(host, 'readlink -f /run/booted-system/kernel')).toMatch(
        /-linux-6\.6\.0\/bzImage$/,
      );
    // the next tests ship releases of the hosts' own kernel
    await f.ship('0.2.2');
  });

  /** Each host runs, and boots, exactly the system the deploy built (and gated) for it. */
  const expectRunningWhatWasBuilt = async (
    hosts: { host: string; built: { systemPath: string } }[],
  ) => {
    const f = fleet();
    for (const host of f.hosts) {
      const built = hosts.find((h) => h.host === host.name)!.built.systemPath;
      expect(built).toMatch(/^\/nix\/store\//);
      expect(await f.running(host)).toBe(built);
      expect(await f.ssh(host, 'readlink -f /nix/var/nix/profiles/system')).toBe(built);
    }
  };

  it("with NixOS 25.11's nixos-rebuild (no --store-path) the deploy activates the built systems itself", async () => {
    const f = fleet();
    await f.useNixosRebuild('25.11');
    try {
      await f.ship('0.2.1');
      const r = await f.cli(['deploy', '--yes', '--json']);
      expect(r.exitCode, explain(r)).toBe(0);
      expect(r.json.outcome).toBe('success');
      await expectRunningWhatWasBuilt(r.json.hosts);
      const gens = await f.cli(['generations', '--json']);
      for (const h of gens.json.hosts)
        expect(h.generations[0]).toMatchObject({ current: true, running: true, exo: '0.2.1' });
    } finally {
      await f.useNixosRebuild('26.05');
    }
  });

  it('build_on = "target" on h2: the flake goes to h2, which builds its own system; every host runs exactly what was built for it', async () => {
    const f = fleet();
    const h2 = f.hosts[1]!;
    await f.tuneConfig('hosts.h2', { build_on: 'target' });
    try {
      await f.ship('0.2.2');
      const r = await f.cli(['deploy', '--yes', '--json']);
      expect(r.exitCode, explain(r)).toBe(0);
      const builds = r.json.steps.filter((s: { step: string }) => s.step === 'build');
      expect(builds.map((s: { host: string | null }) => s.host).sort()).toEqual(['h1,h3', 'h2']);
      expect(builds.find((s: { host: string }) => s.host === 'h2').outputTail).toMatch(
        /flake copied to h2 as \/nix\/store\/\S+-source/,
      );
      expect(
        r.json.steps.find(
          (s: { step: string; host: string }) => s.step === 'copy' && s.host === 'h2',
        ).outputTail,
      ).toContain('built on the host: nothing to copy');
      // the system was built on h2: its derivation is in h2's store, and not in this machine's
      const built = r.json.hosts.find((h: { host: string }) => h.host === 'h2').built.systemPath;
      expect(await f.ssh(h2, `nix-store --query --deriver ${built}`)).toMatch(/\.drv$/);
      expect(
        (await execa('nix-store', ['--check-validity', built], { reject: false })).exitCode,
      ).not.toBe(0);
      await expectRunningWhatWasBuilt(r.json.hosts);
    } finally {
      await f.tuneConfig('hosts.h2', { build_on: null });
    }
  });

  it('rollback --to N puts every host on generation N and exo stays healthy, waiting out a held activation lock', async () => {
    const f = fleet();
    const gens = await f.cli(['generations', '--json']);
    const target = gens.json.hosts.map(
      (h: { host: string; generations: { number: number; exo: string; path: string }[] }) => ({
        host: h.host,
        gen: h.generations.find((g) => g.exo === '0.1.0'),
      }),
    );
    const number = target[0].gen.number;
    // another activation still holds switch-to-configuration's lock on h2 for a few seconds
    // (NixOS's takes it without waiting): the rollback waits for it instead of failing
    await f.ssh(
      f.hosts[1]!,
      'systemd-run --unit=exo-e2e-hold-lock --collect flock /run/nixos/switch-to-configuration.lock /bin/sleep 4 && until ! flock -n /run/nixos/switch-to-configuration.lock true; do sleep 0.05; done',
    );
    const r = await f.cli(['rollback', '--to', String(number), '--json']);
    expect(r.exitCode, explain(r)).toBe(0);
    for (const host of f.hosts) {
      expect(await f.running(host)).toBe(
        target.find((t: { host: string }) => t.host === host.name).gen.path,
      );
    }
    const check = await f.cli(['check', '--since', '1s']);
    expect(check.exitCode, explain(check)).toBe(0);
  });

  it("backup create, then restore puts exo's state back and keeps what it replaced", async () => {
    const f = fleet();
    const h1 = f.hosts[0]!;
    await f.ssh(
      h1,
      'mkdir -p /var/lib/exo && printf \'models_dir = "/srv/models"\\n\' > /var/lib/exo/config.toml',
    );
    const created = await f.cli(['backup', 'create', '--hosts', 'h1', '--json']);
    expect(created.exitCode, explain(created)).toBe(0);
    const id = created.json.backups[0].id;
    await f.ssh(h1, "printf 'broken\\n' > /var/lib/exo/config.toml");
    const listed = await f.cli(['backup', 'list', '--hosts', 'h1', '--json']);
    expect(listed.json.hosts[0].backups.map((b: { id: string }) => b.id)).toContain(id);
    const restored = await f.cli(['backup', 'restore', id, '--hosts', 'h1', '--json']);
    expect(restored.exitCode, explain(restored)).toBe(0);
    expect(await f.ssh(h1, 'cat /var/lib/exo/config.toml')).toBe('models_dir = "/srv/models"');
    expect(await f.ssh(h1, `cat ${restored.json.movedAside}/config.toml`)).toBe('broken');
    expect(await f.ssh(h1, 'systemctl is-active exo.service')).toBe('active');
  });

  it('a restore whose archive cannot be unpacked changes nothing: exo never stopped, its state as it was, nothing left beside it', async () => {
    const f = fleet();
    const h1 = f.hosts[0]!;
    await f.ssh(h1, "mkdir -p /var/lib/exo && printf 'live\\n' > /var/lib/exo/config.toml");
    const created = await f.cli(['backup', 'create', '--hosts', 'h1', '--json']);
    expect(created.exitCode, explain(created)).toBe(0);
    const id = created.json.backups[0].id;
    // an archive cut short whose manifest was written for it: it passes the check, then tar fails
    const folder = `/var/backups/exo/${id}`;
    await f.ssh(
      h1,
      `head -c 40 ${folder}/state.tar.gz > ${folder}/cut && mv ${folder}/cut ${folder}/state.tar.gz && cd ${folder} && sha256sum -- state.tar.gz flake.lock backup.json > manifest.sha256 2>/dev/null || sha256sum -- state.tar.gz backup.json > manifest.sha256`,
    );
    const pid = await f.mainPid(h1);
    const beside = await f.ssh(h1, 'ls -a /var/lib/private');
    const restored = await f.cli(['backup', 'restore', id, '--hosts', 'h1']);
    expect(restored.exitCode, explain(restored)).toBe(1);
    expect(restored.stderr).toMatch(
      new RegExp(`h1: unpacking backup ${id} failed; nothing was changed, exo runs on`),
    );
    expect(await f.mainPid(h1)).toBe(pid);
    expect(await f.ssh(h1, 'cat /var/lib/exo/config.toml')).toBe('live');
    expect(await f.ssh(h1, 'ls -a /var/lib/private')).toBe(beside);
    // and the lock and the host's marker are gone again
    expect(await f.ssh(h1, 'ls /run/exo-deploy')).not.toContain('deploy.lock');
  });

  it("the template's CI script deploys the checkout: a release that fails is the job's failure (exit 1), its report the job's summary and artifact", async () => {
    const f = fleet();
    const before = await Promise.all(f.hosts.map(f.running));
    await f.ship('0.2.90', 'crash-on-start', ['h2']);
    const config = path.join(f.dir, 'config');
    const out = path.join(f.dir, 'ci-out');
    const summary = path.join(f.dir, 'step-summary.md');
    const r = await execa(
      'bash',
      [path.join(repoRoot, 'templates/default/ci/exo-deploy-ci'), 'deploy'],
      {
        cwd: config,
        reject: false,
        env: {
          EXO_DEPLOY: `node ${path.join(repoRoot, 'dist/cli/cli.js')} --config ${path.join(config, 'exo-deploy.toml')}`,
          EXO_DEPLOY_OUT: out,
          GITHUB_STEP_SUMMARY: summary,
        },
      },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toContain('deploy: exit 1');
    expect(await Promise.all(f.hosts.map(f.running))).toEqual(before);
    const report = await readFile(summary, 'utf8');
    expect(report).toContain('**ROLLED BACK');
    const kept = await readdir(out);
    expect(kept.filter((n) => n.endsWith('-deploy.md'))).toHaveLength(1);
    expect(kept.filter((n) => n.endsWith('-deploy.json'))).toHaveLength(1);
    // the artifact's report is the summary's
    expect(
      await readFile(path.join(out, kept.find((n) => n.endsWith('-deploy.md'))!), 'utf8'),
    ).toBe(report);
  });
});
