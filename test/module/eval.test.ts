// Evaluation of the NixOS module with nixpkgs' lib.evalModules and the NixOS options it sets
// (sandbox/templates/config/nix/nixos-lite/options.nix). Needs NIXPKGS_LIB: the `lib` folder of
// a nixpkgs or of nix-community/nixpkgs.lib. Without it these tests are skipped. The assertions
// are tested in assertions.test.ts.
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EVAL_MODULE,
  type Eval,
  evalExo,
  evalExoWithNvidia,
  evalExoWithoutToolkit,
  type StubExo,
} from './eval-exo.js';
import { type Era, parseExoArgs, splitExecStart } from './exo-argparse.js';
import {
  haveLib,
  libArg,
  nixEval,
  nixEvalError,
  nixPath,
  noLibMessage,
  repoRoot,
} from './nix-eval.js';

if (!haveLib) console.log(noLibMessage);

const release = (r: Eval) =>
  JSON.parse(r.etc['exo/release.json']!) as Record<string, unknown> & {
    exo: Record<string, unknown>;
  };
const exoUnit = async (exo: Record<string, unknown> = {}) => (await evalExo(exo)).services.exo!;
const execStart = async (exo: Record<string, unknown> = {}) =>
  (await exoUnit(exo)).serviceConfig.ExecStart as string;

const EXO = '/nix/store/00000000000000000000000000000000-exo-1.0.71';
const EXO_FLAKE = '/nix/store/22222222222222222222222222222222-exo';
const TOOLKIT = '/nix/store/00000000000000000000000000000000-exo-deploy-0.1.0/bin/exo-deploy';
const packageJSON = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  description: string;
};

describe.skipIf(!haveLib)('services.exo evaluated with nixpkgs lib', () => {
  describe('disabled', () => {
    it('defines nothing', async () => {
      const r = await nixEval<Eval>(`import ${EVAL_MODULE}`, { arg: { lib: libArg() } });
      expect(r.services).toEqual({});
      expect(r.timers).toEqual({});
      expect(r.etc).toEqual({});
      expect(r.tmpfiles).toEqual([]);
    });
  });

  describe('defaults', () => {
    it('run exo in the foreground with its default ports, as a DynamicUser with /var/lib/exo', async () => {
      const unit = await exoUnit();
      const sc = unit.serviceConfig;
      // nixpkgs' exo 1.0.71 is of the libp2p era: no zenoh flags (it would exit 2 on them)
      expect(sc.ExecStart).toBe(`${EXO}/bin/exo "--api-port" "52415"`);
      expect(sc).toMatchObject({
        Type: 'exec',
        DynamicUser: true,
        StateDirectory: ['exo'],
        WorkingDirectory: '/var/lib/exo',
        Restart: 'on-failure',
        RestartSec: '5s',
        RestartSteps: 10,
        RestartMaxDelaySec: '5min',
        TimeoutStartSec: '5min',
      });
      expect(sc.User).toBeUndefined();
      expect(sc.EnvironmentFile).toBeUndefined();
      expect(unit.wantedBy).toEqual(['multi-user.target']);
      expect(unit.environment).toMatchObject({
        EXO_HOME: '/var/lib/exo',
        HOME: '/var/lib/exo',
        EXO_DEFAULT_MODELS_DIR: '/var/lib/exo/models',
      });
    });

    it('harden the unit like ollama.nix, relaxed only where exo needs it', async () => {
      const sc = (await exoUnit()).serviceConfig;
      expect(sc).toMatchObject({
        CapabilityBoundingSet: [''],
        DeviceAllow: [],
        DevicePolicy: 'closed',
        LockPersonality: true,
        MemoryDenyWriteExecute: true,
        NoNewPrivileges: true,
        PrivateDevices: true,
        PrivateTmp: true,
        PrivateUsers: true,
        ProcSubset: 'all',
        ProtectHome: true,
        ProtectProc: 'invisible',
        ProtectSystem: 'strict',
        RestrictNamespaces: true,
        RestrictAddressFamilies: ['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK'],
        SystemCallArchitectures: 'native',
        SystemCallFilter: ['@system-service @resources', '~@privileged'],
        UMask: '0077',
      });
    });

    it('wait for /models before the unit counts as started', async () => {
      expect((await exoUnit()).postStart).toContain(
        'curl --silent --fail --output /dev/null --max-time 5 http://127.0.0.1:52415/models',
      );
    });

    it('add a health check as a user of its own, root only after it, and a daily backup run as root', async () => {
      const r = await evalExo();
      const health = r.services['exo-healthcheck']!;
      expect(health.serviceConfig.ExecStart).toBe(
        `/nix/store/11111111111111111111111111111111-exo-health-counter "${TOOLKIT}" "check" "--local" "--since" "2m" "--api" "http://127.0.0.1:52415" "--unit" "exo.service" "--state-dir" "/var/lib/private/exo" "--status-file" "/run/exo-healthcheck/health.json"`,
      );
      expect(health.serviceConfig.ExecStopPost).toBe(
        '-+/nix/store/11111111111111111111111111111111-exo-health-act',
      );
      expect(health.serviceConfig).toMatchObject({
        Type: 'oneshot',
        User: 'exo-healthcheck',
        Group: 'exo-healthcheck',
        SupplementaryGroups: ['systemd-journal'],
        AmbientCapabilities: ['CAP_DAC_READ_SEARCH'],
        CapabilityBoundingSet: ['CAP_DAC_READ_SEARCH'],
        RuntimeDirectory: 'exo-healthcheck',
        RuntimeDirectoryPreserve: 'yes',
      });
      expect(health.serviceConfig.DynamicUser).toBeUndefined();
      expect(r.users.users['exo-healthcheck']).toEqual({
        isSystemUser: true,
        group: 'exo-healthcheck',
        description: "exo's health check",
      });
      expect(r.users.groups['exo-healthcheck']).toEqual({});
      expect(health.environment).toEqual({
        EXO_HEALTH_STATE_DIR: '/run/exo-healthcheck',
        EXO_HEALTH_THRESHOLD: '3',
        EXO_HEALTH_RESTART: '1',
        EXO_HEALTH_RESTART_INTERVAL: '1800',
        EXO_HEALTH_UNIT: 'exo.service',
        EXO_HEALTH_STATUS_FILE: '/run/exo/health.json',
      });
      expect(r.timers['exo-healthcheck']!.timerConfig).toEqual({
        OnBootSec: '2m',
        OnUnitActiveSec: '2m',
        AccuracySec: '1s',
      });

      const backup = r.services['exo-backup']!;
      expect(backup.serviceConfig.ExecStart).toEqual([
        `${TOOLKIT} "backup" "create" "--local" "--dir" "/var/backups/exo" "--state-dir" "/var/lib/private/exo"`,
        `${TOOLKIT} "backup" "prune" "--local" "--dir" "/var/backups/exo" "--keep" "10"`,
      ]);
      expect(backup.serviceConfig.ReadWritePaths).toEqual([
        '/var/backups/exo',
        '/nix/var/nix/gcroots',
        '/nix/var/nix/profiles',
      ]);
      expect(backup.environment).toEqual({ NIX_REMOTE: 'daemon' });
      expect(backup.onSuccess).toEqual([]);
      expect(r.timers['exo-backup']!.timerConfig).toEqual({
        OnCalendar: 'daily',
        Persistent: 'true',
        RandomizedDelaySec: '1h',
      });
      expect(r.restic).toEqual({});
    });

    it('keep the firewall closed, bound exo log files, and write release.json', async () => {
      const r = await evalExo();
      expect(r.firewall).toMatchObject({
        allowedTCPPorts: [],
        allowedUDPPorts: [],
        allowedTCPPortRanges: [],
        interfaces: {},
      });
      expect(r.tmpfiles).toEqual([
        'e /var/lib/private/exo/exo_log - - - 14d',
        'd /run/exo 0755 root root -',
        'd /var/lib/exo-deploy/reboot-guard 0700 root root -',
        'd /var/backups/exo 0700 root root -',
      ]);
      expect(release(r)).toEqual({
        schemaVersion: 2,
        exo: { version: '1.0.71', identity: '1.0.71', revision: null, era: 'libp2p', package: EXO },
        namespace: null,
        ports: { api: 52415, libp2p: null, zenoh: null, discovery: null },
        stateDir: '/var/lib/exo',
        configRevision: null,
        rebootGuard: '/var/lib/exo-deploy/reboot-guard',
      });
      // exo itself runs as a DynamicUser: the only static user is the health check's
      expect(Object.keys(r.users.users)).toEqual(['exo-healthcheck']);
      expect(r.systemPackages).toEqual(['exo-1.0.71', 'exo-deploy-0.1.0']);
    });
  });

  describe('options', () => {
    it('ports reach the command line, the readiness URL, the health check and release.json', async () => {
      const r = await evalExo(
        { apiPort: 8000, zenohPort: 8001, discoveryPort: 8002, probeAddress: '10.0.0.5' },
        'exo-flake',
      );
      expect(r.services.exo!.serviceConfig.ExecStart).toContain(
        '"--api-port" "8000" "--zenoh-port" "8001" "--discovery-port" "8002"',
      );
      expect(r.services.exo!.postStart).toContain('http://10.0.0.5:8000/models');
      expect(r.services['exo-healthcheck']!.serviceConfig.ExecStart).toContain(
        '"--api" "http://10.0.0.5:8000"',
      );
      expect(release(r).ports).toEqual({ api: 8000, libp2p: null, zenoh: 8001, discovery: 8002 });
      const libp2p = await evalExo({ apiPort: 8000, libp2pPort: 8003 });
      expect(libp2p.services.exo!.serviceConfig.ExecStart).toBe(
        `${EXO}/bin/exo "--api-port" "8000" "--libp2p-port" "8003"`,
      );
      expect(release(libp2p).ports).toEqual({
        api: 8000,
        libp2p: 8003,
        zenoh: null,
        discovery: null,
      });
    });

    it('the old name `host` still sets probeAddress, with a warning that it was renamed', async () => {
      const r = await evalExo({ host: '10.0.0.11' });
      expect(r.failedAssertions).toEqual([]);
      expect(r.services.exo!.postStart).toContain('http://10.0.0.11:52415/models');
      expect(r.services['exo-healthcheck']!.serviceConfig.ExecStart).toContain(
        '"--api" "http://10.0.0.11:52415"',
      );
      expect(r.warnings).toEqual([
        expect.stringMatching(
          /^The option `services\.exo\.host' .*has been renamed to `services\.exo\.probeAddress'\.$/,
        ),
      ]);
      expect((await evalExo()).warnings).toEqual([]);
    });

    it('zenoh era: namespace and offline become flags; namespace is recorded in release.json', async () => {
      const r = await evalExo({ namespace: 'home-cluster', offline: true }, 'exo-flake');
      expect(r.services.exo!.serviceConfig.ExecStart).toMatch(
        /"--namespace" "home-cluster" "--offline"$/,
      );
      expect(r.services.exo!.environment.EXO_LIBP2P_NAMESPACE).toBeUndefined();
      expect(release(r).namespace).toBe('home-cluster');
    });

    it('libp2p era: the namespace goes in EXO_LIBP2P_NAMESPACE, never on the command line', async () => {
      const r = await evalExo({ namespace: 'home-cluster' });
      expect(r.services.exo!.environment.EXO_LIBP2P_NAMESPACE).toBe('home-cluster');
      expect(r.services.exo!.serviceConfig.ExecStart).not.toContain('namespace');
      expect(release(r).namespace).toBe('home-cluster');
    });

    it('extraArgs are escaped for systemd', async () => {
      expect(await execStart({ extraArgs: ['-v', 'a b', '50%', '$X'] })).toMatch(
        /"-v" "a b" "50%%" "\$\$X"$/,
      );
    });

    it('environment adds variables and environmentFile keeps secrets out of the store', async () => {
      const unit = await exoUnit({
        environment: { EXO_MAX_CONCURRENT_REQUESTS: '4' },
        environmentFile: '/run/secrets/exo.env',
      });
      expect(unit.environment.EXO_MAX_CONCURRENT_REQUESTS).toBe('4');
      expect(unit.environment.EXO_HOME).toBe('/var/lib/exo');
      expect(unit.serviceConfig.EnvironmentFile).toBe('/run/secrets/exo.env');
    });

    it('a static user gets created and owns a state folder outside /var/lib', async () => {
      const r = await evalExo({ user: 'exo', stateDir: '/srv/exo' });
      const sc = r.services.exo!.serviceConfig;
      expect(sc).toMatchObject({
        User: 'exo',
        Group: 'exo',
        DynamicUser: false,
        StateDirectory: [],
        WorkingDirectory: '/srv/exo',
      });
      expect(r.users.users.exo).toEqual({
        isSystemUser: true,
        group: 'exo',
        home: '/srv/exo',
        extraGroups: [],
      });
      expect(r.users.groups).toEqual({ exo: {}, 'exo-healthcheck': {} });
      expect(r.tmpfiles).toContain('d /srv/exo 0750 exo exo -');
      expect(r.tmpfiles).toContain('e /srv/exo/exo_log - - - 14d');
      expect(r.services['exo-backup']!.serviceConfig.ExecStart).toContain(
        `${TOOLKIT} "backup" "create" "--local" "--dir" "/var/backups/exo" "--state-dir" "/srv/exo"`,
      );
    });

    it('a separate group can be given', async () => {
      const r = await evalExo({ user: 'exo', group: 'ai' });
      expect(r.services.exo!.serviceConfig).toMatchObject({
        User: 'exo',
        Group: 'ai',
        StateDirectory: ['exo'],
      });
      expect(r.users.groups).toEqual({ ai: {}, 'exo-healthcheck': {} });
    });

    it('a models folder elsewhere under /var/lib becomes a second StateDirectory and is writable', async () => {
      const sc = (await exoUnit({ modelsDir: '/var/lib/exo-models' })).serviceConfig;
      expect(sc.StateDirectory).toEqual(['exo', 'exo-models']);
      expect(sc.ReadWritePaths).toEqual(['/var/lib/exo-models']);
      expect(
        (await exoUnit({ modelsDir: '/var/lib/exo-models' })).environment.EXO_DEFAULT_MODELS_DIR,
      ).toBe('/var/lib/exo-models');
    });

    it("a static user's state folder outside /var/lib is created by tmpfiles and writable", async () => {
      const r = await evalExo({ user: 'exo', stateDir: '/srv/exo' });
      expect(r.tmpfiles).toContain('d /srv/exo 0750 exo exo -');
      // ProtectSystem=strict would leave it read-only otherwise
      expect(r.services.exo!.serviceConfig.ProtectSystem).toBe('strict');
      expect(r.services.exo!.serviceConfig.ReadWritePaths).toEqual(['/srv/exo']);
    });

    it('a models folder of a static user outside /var/lib is created by tmpfiles', async () => {
      const r = await evalExo({ user: 'exo', modelsDir: '/data/models' });
      expect(r.tmpfiles).toContain('d /data/models 0750 exo exo -');
      expect(r.services.exo!.serviceConfig.ReadWritePaths).toEqual(['/data/models']);
    });

    it('the health check and backup read the state where DynamicUser really keeps it', async () => {
      const stateDirArg = async (exo: Record<string, unknown>) => {
        const r = await evalExo(exo);
        const dir = /"--state-dir" "([^"]*)"/.exec(
          r.services['exo-healthcheck']!.serviceConfig.ExecStart as string,
        )![1];
        expect(r.services['exo-backup']!.serviceConfig.ExecStart).toContain(
          `${TOOLKIT} "backup" "create" "--local" "--dir" "/var/backups/exo" "--state-dir" "${dir}"`,
        );
        return dir;
      };
      expect(await stateDirArg({ stateDir: '/var/lib/exo/' })).toBe('/var/lib/private/exo');
      expect(await stateDirArg({ user: 'exo', stateDir: '/var/lib/exo' })).toBe('/var/lib/exo');
      expect(await stateDirArg({ user: 'exo', stateDir: '/srv/exo' })).toBe('/srv/exo');
    });

    it('StateDirectory= names only folders below /var/lib, relative to it', async () => {
      const stateDirectory = async (exo: Record<string, unknown>) =>
        (await exoUnit(exo)).serviceConfig.StateDirectory;
      expect(await stateDirectory({ stateDir: '/var/lib/exo' })).toEqual(['exo']);
      expect(await stateDirectory({ stateDir: '/var/lib/a/b' })).toEqual(['a/b']);
      expect(await stateDirectory({ user: 'exo', stateDir: '/srv/exo' })).toEqual([]);
    });

    it('a models folder beside stateDir is one of its own, one inside it is not', async () => {
      const beside = (await exoUnit({ modelsDir: '/var/lib/exo2' })).serviceConfig;
      expect(beside.StateDirectory).toEqual(['exo', 'exo2']);
      expect(beside.ReadWritePaths).toEqual(['/var/lib/exo2']);
      const inside = (await exoUnit({ modelsDir: '/var/lib/exo/b' })).serviceConfig;
      expect(inside.StateDirectory).toEqual(['exo']);
      expect(inside.ReadWritePaths).toEqual([]);
      // everything lies inside /, the backups too
      expect((await evalExo({ user: 'exo', stateDir: '/' })).failedAssertions).toEqual([
        expect.stringMatching(/backup\.dir \(\/var\/backups\/exo\) lies inside .*stateDir \(\/\)/),
      ]);
    });

    it('acceleration = null (CPU only) allows no device and adds no group', async () => {
      const r = await evalExo({ acceleration: null, user: 'exo' });
      expect(r.services.exo!.serviceConfig).toMatchObject({
        DeviceAllow: [],
        SupplementaryGroups: [],
        PrivateDevices: true,
        MemoryDenyWriteExecute: true,
      });
      expect(r.users.users.exo!.extraGroups).toEqual([]);
    });

    it.each([
      [
        'cuda',
        ['char-nvidiactl', 'char-nvidia-caps', 'char-nvidia-frontend', 'char-nvidia-uvm'],
        ['video'],
      ],
      ['rocm', ['char-drm', 'char-fb', 'char-kfd'], ['video', 'render']],
    ])(
      'acceleration = %s opens the GPU devices and allows the JIT',
      async (acceleration, devices, groups) => {
        const sc = (await exoUnit({ acceleration })).serviceConfig;
        expect(sc).toMatchObject({
          DeviceAllow: devices,
          SupplementaryGroups: groups,
          PrivateDevices: false,
          MemoryDenyWriteExecute: false,
          DevicePolicy: 'closed',
        });
        const r = await evalExo({ acceleration, user: 'exo' });
        expect(r.users.users.exo!.extraGroups).toEqual(groups);
      },
    );

    it('waitForReady = false drops the readiness wait; startTimeout bounds the start', async () => {
      const unit = await exoUnit({ waitForReady: false, startTimeout: '10min' });
      expect(unit.postStart).toBe(''); // NixOS's default: no ExecStartPost
      expect(unit.serviceConfig.TimeoutStartSec).toBe('10min');
    });

    it('logRetention sets the age of the tmpfiles rule', async () => {
      expect((await evalExo({ logRetention: '3d' })).tmpfiles).toContain(
        'e /var/lib/private/exo/exo_log - - - 3d',
      );
    });
  });

  describe('firewall', () => {
    it('zenoh era: openFirewall opens API and zenoh (TCP), discovery (UDP) and the ring range', async () => {
      const r = await evalExo({ openFirewall: true }, 'exo-flake');
      expect(r.firewall).toMatchObject({
        allowedTCPPorts: [52415, 52414],
        allowedUDPPorts: [52413],
        allowedTCPPortRanges: [{ from: 49152, to: 65535 }],
        interfaces: {},
      });
    });
    it('libp2p era: openFirewall fixes the libp2p port and opens it, the API and mDNS', async () => {
      const r = await evalExo({ openFirewall: true });
      expect(r.firewall).toMatchObject({
        allowedTCPPorts: [52415, 52414],
        allowedUDPPorts: [5353],
        allowedTCPPortRanges: [{ from: 49152, to: 65535 }],
      });
      expect(r.services.exo!.serviceConfig.ExecStart).toBe(
        `${EXO}/bin/exo "--api-port" "52415" "--libp2p-port" "52414"`,
      );
      expect(
        (await evalExo({ openFirewall: true, libp2pPort: 4001 })).firewall.allowedTCPPorts,
      ).toEqual([52415, 4001]);
    });
    it('openRingPorts = false leaves the range closed; a custom range is used', async () => {
      expect(
        (await evalExo({ openFirewall: true, openRingPorts: false })).firewall.allowedTCPPortRanges,
      ).toEqual([]);
      expect(
        (await evalExo({ openFirewall: true, ringPortRange: { from: 50000, to: 50100 } })).firewall
          .allowedTCPPortRanges,
      ).toEqual([{ from: 50000, to: 50100 }]);
    });
    it('firewallInterfaces opens the ports only on those interfaces', async () => {
      const r = await evalExo({
        openFirewall: true,
        firewallInterfaces: ['enp3s0', 'wg0'],
        apiPort: 8000,
      });
      expect(r.firewall.allowedTCPPorts).toEqual([]);
      expect(Object.keys(r.firewall.interfaces)).toEqual(['enp3s0', 'wg0']);
      expect(r.firewall.interfaces.wg0).toMatchObject({
        allowedTCPPorts: [8000, 52414],
        allowedUDPPorts: [5353],
      });
    });
  });

  describe('healthCheck', () => {
    it('can be turned off', async () => {
      const r = await evalExo({ healthCheck: { enable: false } });
      expect(r.services['exo-healthcheck']).toBeUndefined();
      expect(r.timers['exo-healthcheck']).toBeUndefined();
      expect(r.services['exo-backup']).toBeDefined();
    });
    it('passes interval, expected nodes, textfile and extra arguments to the check', async () => {
      const r = await evalExo({
        healthCheck: {
          interval: '30s',
          expectNodes: 3,
          textfile: '/var/lib/node-exporter/exo.prom',
          extraArgs: ['--verbose'],
        },
      });
      const unit = r.services['exo-healthcheck']!;
      expect(unit.serviceConfig.ExecStart).toMatch(
        /"--since" "30s" .* "--expect-nodes" "3" "--textfile" "\/run\/exo-healthcheck\/health.prom" "--verbose"$/,
      );
      // the check writes into its own folder only; exo-health-act publishes the textfile
      expect(unit.serviceConfig.ReadWritePaths).toBeUndefined();
      expect(unit.environment.EXO_HEALTH_TEXTFILE).toBe('/var/lib/node-exporter/exo.prom');
      expect(r.tmpfiles).toContain('d /var/lib/node-exporter 0755 root root -');
      expect(r.timers['exo-healthcheck']!.timerConfig).toEqual({
        OnBootSec: '30s',
        OnUnitActiveSec: '30s',
        AccuracySec: '1s',
      });
    });
    it('sets the failure counting and the OnFailure= hooks', async () => {
      const unit = (
        await evalExo({
          healthCheck: {
            failureThreshold: 5,
            restart: false,
            restartInterval: 600,
            onFailure: ['alert@%n.service'],
          },
        })
      ).services['exo-healthcheck']!;
      expect(unit.environment).toMatchObject({
        EXO_HEALTH_THRESHOLD: '5',
        EXO_HEALTH_RESTART: '0',
        EXO_HEALTH_RESTART_INTERVAL: '600',
      });
      expect(unit.onFailure).toEqual(['alert@%n.service']);
    });
    it('rejects an interval that is not both a systemd and an exo-deploy duration', async () => {
      const err = await nixEvalError(`import ${nixPath('test/module/nix/eval-module.nix')}`, {
        arg: { lib: libArg() },
        argstr: {
          configJSON: JSON.stringify({
            services: { exo: { enable: true, healthCheck: { interval: '5min' } } },
          }),
        },
      });
      expect(err).toMatch(/healthCheck\.interval/);
    });
  });

  describe('backup', () => {
    it('can be turned off', async () => {
      const r = await evalExo({ backup: { enable: false } });
      expect(r.services['exo-backup']).toBeUndefined();
      expect(r.timers['exo-backup']).toBeUndefined();
      expect(r.tmpfiles).not.toContain('d /var/backups/exo 0700 root root -');
    });
    it('uses dir, keep and includeModels', async () => {
      const r = await evalExo({
        backup: { dir: '/srv/backups/exo', keep: 3, includeModels: true },
      });
      const sc = r.services['exo-backup']!.serviceConfig;
      expect(sc.ExecStart).toEqual([
        `${TOOLKIT} "backup" "create" "--local" "--dir" "/srv/backups/exo" "--state-dir" "/var/lib/private/exo" "--models"`,
        `${TOOLKIT} "backup" "prune" "--local" "--dir" "/srv/backups/exo" "--keep" "3"`,
      ]);
      expect(sc.ReadWritePaths).toEqual([
        '/srv/backups/exo',
        '/nix/var/nix/gcroots',
        '/nix/var/nix/profiles',
      ]);
      expect(r.tmpfiles).toContain('d /srv/backups/exo 0700 root root -');
    });
    it('timerConfig = null leaves only the service; a custom timer is used as given', async () => {
      const none = await evalExo({ backup: { timerConfig: null } });
      expect(none.timers['exo-backup']).toBeUndefined();
      expect(none.services['exo-backup']).toBeDefined();
      const hourly = await evalExo({ backup: { timerConfig: { OnCalendar: 'hourly' } } });
      expect(hourly.timers['exo-backup']!.timerConfig).toEqual({ OnCalendar: 'hourly' });
    });
    it('restic.enable hands the backup folder to services.restic.backups.exo after each backup', async () => {
      const r = await evalExo({ backup: { restic: { enable: true } } });
      expect(r.restic.exo).toMatchObject({ paths: ['/var/backups/exo'], timerConfig: null });
      expect(r.services['exo-backup']!.onSuccess).toEqual(['restic-backups-exo.service']);
    });
  });

  describe("exo's two eras", () => {
    // Each case: a package, an optional era override, and the era whose flags exo accepts.
    const cases: [string, StubExo, Record<string, unknown>, Era][] = [
      ["nixpkgs' exo 1.0.71", 'exo', {}, 'libp2p'],
      ["exo's flake package (no version)", 'exo-flake', {}, 'zenoh'],
      ['an unstable version from before zenoh', 'exo-unstable-old', {}, 'libp2p'],
      ['an unstable version from after zenoh', 'exo-unstable-new', {}, 'zenoh'],
      ['an unknown version with era = "zenoh"', 'exo-future', { era: 'zenoh' }, 'zenoh'],
      ['an unknown version with era = "libp2p"', 'exo-future', { era: 'libp2p' }, 'libp2p'],
    ];
    const other = (era: Era): Era => (era === 'zenoh' ? 'libp2p' : 'zenoh');
    const settings: [string, Record<string, unknown>][] = [
      ['no option set', {}],
      [
        'a namespace, open firewall, offline and extra flags',
        {
          namespace: 'lab',
          openFirewall: true,
          offline: true,
          extraArgs: ['-v', '--no-downloads'],
        },
      ],
    ];

    describe.each(cases)('%s', (_name, pkg, eraOption, era) => {
      it.each(settings)(
        `gives a command line that the ${era}-era exo accepts, with %s`,
        async (_s, exo) => {
          const r = await evalExo({ ...eraOption, ...exo }, pkg);
          expect(r.failedAssertions).toEqual([]);
          const { argv } = splitExecStart(r.services.exo!.serviceConfig.ExecStart as string);
          const parsed = parseExoArgs(era, argv);
          expect(parsed).toMatchObject({ ok: true });
          if (parsed.ok && exo.namespace && era === 'zenoh')
            expect(parsed.values.namespace).toBe(exo.namespace);
          // exo main refuses to start with the libp2p era's variable set
          if (era === 'zenoh')
            expect(r.services.exo!.environment.EXO_LIBP2P_NAMESPACE).toBeUndefined();
          else
            expect(r.services.exo!.environment.EXO_LIBP2P_NAMESPACE).toBe(
              exo.namespace as string | undefined,
            );
          expect(release(r).exo.era).toBe(era);
          if (Object.keys(exo).length)
            expect(parseExoArgs(other(era), argv)).toMatchObject({
              ok: false,
              error: expect.stringMatching(/^unrecognized arguments: --(zenoh|libp2p)-port/),
            });
        },
      );
    });

    it('an exo from before the 1.0 rewrite is an error that says what to use', async () => {
      const r = await evalExo({}, 'exo-pre-v1');
      expect(r.failedAssertions).toEqual([
        expect.stringMatching(
          /exo 0-unstable-2024-12-07, from before exo's 1.0 rewrite.*Use exo 1\.0 or later/,
        ),
      ]);
    });

    it('an exo whose version tells no era is an error that names the option', async () => {
      const r = await evalExo({}, 'exo-future');
      expect(r.failedAssertions).toEqual([
        expect.stringMatching(
          /services\.exo\.era: cannot tell from exo's version \("1\.1\.0"\).*Set services\.exo\.era/,
        ),
      ]);
    });

    it("release.json records the NVIDIA driver a CUDA exo runs with, where NixOS's nvidia module loads one", async () => {
      const DRIVER = '/nix/store/00000000000000000000000000000000-nvidia-x11-570.86';
      const loaded = { services: { xserver: { videoDrivers: ['nvidia'] } } };
      expect(
        release(await evalExoWithNvidia({ acceleration: 'cuda' }, '570.86', loaded)).gpu,
      ).toEqual({ driver: DRIVER });
      // the data-center driver, loaded without X's video drivers
      const datacenter = { hardware: { nvidia: { datacenter: { enable: true } } } };
      expect(
        release(await evalExoWithNvidia({ acceleration: 'cuda' }, '570.86', datacenter)).gpu,
      ).toEqual({ driver: DRIVER });
      // no driver loaded, a ROCm or CPU exo, or no NVIDIA module at all: nothing recorded
      expect(
        release(await evalExoWithNvidia({ acceleration: 'cuda' }, '570.86')).gpu,
      ).toBeUndefined();
      expect(
        release(await evalExoWithNvidia({ acceleration: 'rocm' }, '570.86', loaded)).gpu,
      ).toBeUndefined();
      expect(release(await evalExo({ acceleration: 'cuda' })).gpu).toBeUndefined();
    });

    it('release.json names the exo of every generation, also without a version', async () => {
      expect(release(await evalExo({}, 'exo-flake')).exo).toMatchObject({
        version: '',
        identity: '22222222222222222222222222222222-exo',
        revision: null,
        package: EXO_FLAKE,
      });
      const rev = 'b5375f8ce0a1b2c3d4e5f60718293a4b5c6d7e8f';
      expect(release(await evalExo({ packageRevision: rev }, 'exo-flake')).exo).toMatchObject({
        identity: 'b5375f8ce0a1',
        revision: rev,
      });
      expect(release(await evalExo({ packageRevision: rev })).exo).toMatchObject({
        identity: '1.0.71',
        revision: rev,
      });
    });

    it.each([
      [
        'zenoh without IPv6',
        {},
        'exo-flake',
        { networking: { enableIPv6: false } },
        /IPv6 link-local multicast/,
      ],
      ['zenoh port 0', { zenohPort: 0 }, 'exo-flake', {}, /must not be 0/],
      [
        'a namespace that argparse reads as an option',
        { namespace: '-lab' },
        'exo-flake',
        {},
        /starts with "-"/,
      ],
      [
        'bootstrap peers in the zenoh era',
        { extraArgs: ['--bootstrap-peers', '/ip4/1.2.3.4'] },
        'exo-flake',
        {},
        /Bootstrap peers has been temporarily removed/,
      ],
      [
        'bootstrap peers by environment in the zenoh era',
        { environment: { EXO_BOOTSTRAP_PEERS: 'x' } },
        'exo-flake',
        {},
        /Bootstrap peers/,
      ],
      [
        'the libp2p variable set by hand',
        { environment: { EXO_LIBP2P_NAMESPACE: 'x' } },
        'exo',
        {},
        /EXO_LIBP2P_NAMESPACE.*services\.exo\.namespace/,
      ],
      [
        'an open firewall over a random libp2p port',
        { openFirewall: true, libp2pPort: null },
        'exo',
        {},
        /random TCP port/,
      ],
      [
        'a libp2p flag under zenoh',
        { extraArgs: ['--libp2p-port', '4001'] },
        'exo-flake',
        {},
        /zenoh-era exo does not accept/,
      ],
      [
        'a flag prefix of an owned flag',
        { extraArgs: ['--names', 'x'] },
        'exo-flake',
        {},
        /extraArgs contains \["--names"\]/,
      ],
      [
        'flags exo never had',
        { extraArgs: ['--exo-home', '/x'] },
        'exo',
        {},
        /\["--exo-home"\], which the libp2p-era exo does not accept/,
      ],
    ] as [string, Record<string, unknown>, StubExo, Record<string, unknown>, RegExp][])(
      'refuse %s',
      async (_name, exo, pkg, extra, message) => {
        const r = await evalExo(exo, pkg, extra);
        expect(r.failedAssertions).toEqual([expect.stringMatching(message)]);
      },
    );

    it('bootstrap peers are fine in the libp2p era', async () => {
      expect(
        (await evalExo({ extraArgs: ['--bootstrap-peers', '/ip4/10.0.0.2/tcp/4001'] }))
          .failedAssertions,
      ).toEqual([]);
    });
  });

  describe('autoDeploy', () => {
    const URL = 'git@github.com:acme/fleet.git';
    const withHost = { networking: { hostName: 'gpu-1' } };
    const pull = (autoDeploy: Record<string, unknown> = {}, exo: Record<string, unknown> = {}) =>
      evalExo({ ...exo, autoDeploy: { enable: true, url: URL, ...autoDeploy } }, 'exo', withHost);
    const pullArgv = (r: Eval) => {
      const { program, argv } = splitExecStart(
        String(r.services['exo-deploy-pull']!.serviceConfig.ExecStart),
      );
      return { program, argv };
    };

    it('is off by default: no unit, no timer, no folder', async () => {
      const r = await evalExo();
      expect(r.services['exo-deploy-pull']).toBeUndefined();
      expect(r.timers['exo-deploy-pull']).toBeUndefined();
      expect(r.tmpfiles.filter((t) => t.includes('/pull'))).toEqual([]);
    });

    it('runs `exo-deploy pull` as root from a timer, never restarted or stopped by the switch it runs', async () => {
      const r = await pull();
      const unit = r.services['exo-deploy-pull']!;
      expect(unit.serviceConfig.ExecStart).toBe(
        `"${TOOLKIT}" "pull" "--url" "${URL}" "--branch" "main" "--host-name" "gpu-1" "--repo-config" "exo-deploy.toml" "--pull-dir" "/var/lib/exo-deploy/pull"`,
      );
      expect(unit.restartIfChanged).toBe(false);
      expect(unit.unitConfig).toEqual({ 'X-StopOnRemoval': false });
      expect(unit.wants).toEqual(['network-online.target']);
      expect(unit.after).toEqual(['network-online.target']);
      // a timer's unit: nothing starts it at boot but the timer
      expect(unit.wantedBy).toEqual([]);
      // only the hardening that cannot get in the way of a deploy
      expect(unit.serviceConfig).toEqual({
        Type: 'oneshot',
        User: 'root',
        ExecStart: unit.serviceConfig.ExecStart,
        // stepping aside for another deploy (exit 4) does not fail the unit
        SuccessExitStatus: [4],
        TimeoutStartSec: '2h',
        LockPersonality: true,
        NoNewPrivileges: true,
        RestrictRealtime: true,
        RestrictSUIDSGID: true,
        SystemCallArchitectures: 'native',
      });
      expect(unit.environment).toEqual({ NIX_REMOTE: 'daemon' });
      expect(r.paths['exo-deploy-pull']).toEqual([
        'nix-2.28.0',
        'git-2.51.0',
        'openssh-10.2p1',
        'systemd-258',
        'coreutils-9.8',
        'bash-5.3p3',
        'gnutar-1.35',
        'gzip-1.14',
      ]);
      expect(r.timers['exo-deploy-pull']!.wantedBy).toEqual(['timers.target']);
      expect(r.timers['exo-deploy-pull']!.timerConfig).toEqual({
        OnActiveSec: '5min',
        OnUnitInactiveSec: '5min',
        RandomizedDelaySec: '1min',
        AccuracySec: '1s',
      });
      expect(r.tmpfiles).toContain('d /var/lib/exo-deploy/pull 0700 root root -');
      // for `exo-deploy pull` by hand
      expect(r.systemPackages).toContain('exo-deploy-0.1.0');
    });

    it('takes branch, host name, repository config, timing and extra arguments from the options', async () => {
      const r = await pull({
        branch: 'release/gpu',
        hostName: 'node-7',
        repoConfig: 'deploy/exo-deploy.toml',
        interval: '1h',
        randomizedDelay: '10min',
        extraArgs: ['--json', '100%'],
      });
      expect(pullArgv(r)).toEqual({
        program: `"${TOOLKIT}"`,
        argv: [
          'pull',
          '--url',
          URL,
          '--branch',
          'release/gpu',
          '--host-name',
          'node-7',
          '--repo-config',
          'deploy/exo-deploy.toml',
          '--pull-dir',
          '/var/lib/exo-deploy/pull',
          '--json',
          '100%',
        ],
      });
      expect(r.services['exo-deploy-pull']!.description).toContain('release/gpu');
      expect(r.timers['exo-deploy-pull']!.timerConfig).toMatchObject({
        OnActiveSec: '1h',
        OnUnitInactiveSec: '1h',
        RandomizedDelaySec: '10min',
      });
    });

    it('deploys only signed commits with allowedSignersFile', async () => {
      const { argv } = pullArgv(await pull({ allowedSignersFile: '/etc/exo-deploy/signers' }));
      expect(argv.slice(11)).toEqual(['--allowed-signers', '/etc/exo-deploy/signers']);
    });

    it('fetches with sshKeyFile alone, never prompting', async () => {
      const unit = (await pull({ sshKeyFile: '/run/secrets/pull-key' })).services[
        'exo-deploy-pull'
      ]!;
      expect(unit.environment).toEqual({
        NIX_REMOTE: 'daemon',
        GIT_SSH_COMMAND: 'ssh -i /run/secrets/pull-key -o IdentitiesOnly=yes -o BatchMode=yes',
      });
      // a path git's shell would split is quoted for it
      const spaced = (await pull({ sshKeyFile: '/run/secrets/pull key' })).services[
        'exo-deploy-pull'
      ]!;
      expect(spaced.environment.GIT_SSH_COMMAND).toBe(
        "ssh -i '/run/secrets/pull key' -o IdentitiesOnly=yes -o BatchMode=yes",
      );
    });

    it("writes its metrics beside the health check's textfile, in a file of its own", async () => {
      const textfile = '/var/lib/node-exporter/exo.prom';
      const r = await pull({}, { healthCheck: { textfile } });
      expect(pullArgv(r).argv.slice(11)).toEqual([
        '--textfile',
        '/var/lib/node-exporter/exo-deploy-pull.prom',
      ]);
      expect(r.services['exo-healthcheck']!.environment.EXO_HEALTH_TEXTFILE).toBe(textfile);
      // the folder's rule once, the health check's
      expect(r.tmpfiles.filter((t) => t.startsWith('d /var/lib/node-exporter '))).toEqual([
        'd /var/lib/node-exporter 0755 root root -',
      ]);
      // with the health check off, the pull makes the folder itself
      const alone = await pull({}, { healthCheck: { enable: false, textfile } });
      expect(pullArgv(alone).argv.slice(11)).toEqual([
        '--textfile',
        '/var/lib/node-exporter/exo-deploy-pull.prom',
      ]);
      expect(alone.tmpfiles).toContain('d /var/lib/node-exporter 0755 root root -');
    });

    it('works without the health check and backup', async () => {
      const r = await pull({}, { healthCheck: { enable: false }, backup: { enable: false } });
      expect(r.failedAssertions).toEqual([]);
      expect(Object.keys(r.services).sort()).toEqual([
        'exo',
        'exo-deploy-pull',
        'exo-deploy-reboot-guard',
      ]);
      expect(r.systemPackages).toEqual(['exo-1.0.71', 'exo-deploy-0.1.0']);
    });
  });

  describe('toolkitPackage', () => {
    // modules/exo.nix imported on its own, on a nixpkgs without this flake's overlay
    const message = (users: string, off: string) =>
      `services.exo: ${users} the exo-deploy toolkit, but services.exo.toolkitPackage is null (nixpkgs has no exo-deploy). Either:
  - import the exo-deploy flake's \`nixosModules.default\` (which sets it) instead of modules/exo.nix alone;
  - or add the flake's \`overlays.default\` to nixpkgs.overlays (it adds pkgs.exo-deploy);
  - or set services.exo.toolkitPackage;
  - or set ${off}.`;

    it("defaults to pkgs.exo-deploy (this flake's overlay)", async () => {
      expect((await evalExo()).toolkitPackage).toBe('exo-deploy-0.1.0');
    });
    it('without pkgs.exo-deploy, health check and backup on: exactly one assertion says what to do', async () => {
      expect((await evalExoWithoutToolkit()).failedAssertions).toEqual([
        message(
          'services.exo.healthCheck and services.exo.backup run',
          'services.exo.healthCheck.enable = false and services.exo.backup.enable = false',
        ),
      ]);
      expect(
        (await evalExoWithoutToolkit({ healthCheck: { enable: false } })).failedAssertions,
      ).toEqual([message('services.exo.backup runs', 'services.exo.backup.enable = false')]);
      expect((await evalExoWithoutToolkit({ backup: { enable: false } })).failedAssertions).toEqual(
        [message('services.exo.healthCheck runs', 'services.exo.healthCheck.enable = false')],
      );
    });
    it('without pkgs.exo-deploy, pull mode asks for it too, alone or with the others', async () => {
      const autoDeploy = { enable: true, url: 'git@github.com:acme/fleet.git', hostName: 'h1' };
      expect(
        (
          await evalExoWithoutToolkit({
            healthCheck: { enable: false },
            backup: { enable: false },
            autoDeploy,
          })
        ).failedAssertions,
      ).toEqual([
        message('services.exo.autoDeploy runs', 'services.exo.autoDeploy.enable = false'),
      ]);
      expect((await evalExoWithoutToolkit({ autoDeploy })).failedAssertions).toEqual([
        message(
          'services.exo.healthCheck, services.exo.backup and services.exo.autoDeploy run',
          'services.exo.healthCheck.enable = false, services.exo.backup.enable = false and services.exo.autoDeploy.enable = false',
        ),
      ]);
    });
    it('without pkgs.exo-deploy, health check and backup off: evaluates, and nothing asks for the toolkit', async () => {
      const r = await evalExoWithoutToolkit({
        healthCheck: { enable: false },
        backup: { enable: false },
      });
      expect(r.failedAssertions).toEqual([]);
      expect(r.toolkitPackage).toBeNull();
      expect(r.systemPackages).toEqual(['exo-1.0.71']);
      // the reboot guard is a shell script: no toolkit
      expect(Object.keys(r.services)).toEqual(['exo', 'exo-deploy-reboot-guard']);
      expect(r.timers).toEqual({});
    });
    it('with health check and backup off, a toolkit that is there is not installed either', async () => {
      expect(
        (await evalExo({ healthCheck: { enable: false }, backup: { enable: false } }))
          .systemPackages,
      ).toEqual(['exo-1.0.71']);
    });
  });

  describe('release.json', () => {
    it("records the config commit the system is built from (NixOS's system.configurationRevision)", async () => {
      const rev = 'c0ffee'.padEnd(40, '0');
      const r = await evalExo({}, 'exo', { system: { configurationRevision: `${rev}-dirty` } });
      expect(release(r).configRevision).toBe(`${rev}-dirty`);
    });
  });

  describe('rebootGuard', () => {
    it('arms at each boot, once, from the folder release.json names for exo-deploy', async () => {
      const r = await evalExo();
      const guard = r.services['exo-deploy-reboot-guard']!;
      expect(guard.wantedBy).toEqual(['multi-user.target']);
      expect(guard.serviceConfig).toMatchObject({
        Type: 'oneshot',
        RemainAfterExit: true,
        User: 'root',
        ProtectSystem: 'strict',
        ReadWritePaths: [release(r).rebootGuard],
      });
      // (each argument quoted, as utils.escapeSystemdExecArgs writes it)
      const [, dir] = /^"\/nix\/store\/[^"]+-exo-reboot-guard" "([^"]+)"$/.exec(
        String(guard.serviceConfig.ExecStart),
      ) ?? [null, null];
      expect(dir).toBe(release(r).rebootGuard);
      expect(r.tmpfiles).toContain(`d ${dir} 0700 root root -`);
    });
    it('off: no unit, no folder, and release.json names none (exo-deploy warns that a cut-off host needs a person)', async () => {
      const r = await evalExo({ rebootGuard: { enable: false } });
      expect(r.services['exo-deploy-reboot-guard']).toBeUndefined();
      expect(r.tmpfiles.filter((t) => t.includes('reboot-guard'))).toEqual([]);
      expect(release(r)).not.toHaveProperty('rebootGuard');
    });
  });

  describe('flake.nix', () => {
    it("has the outputs; its package, the overlay and the module wrapper's toolkit need no override", async () => {
      const f = await nixEval<Record<string, unknown>>(
        `import ${nixPath('test/module/nix/eval-flake.nix')}`,
        { arg: { lib: libArg() } },
      );
      // nix/package.nix called by pkgs.callPackage with nothing but what nixpkgs has
      const pkg = {
        name: 'exo-deploy-0.1.0',
        pname: 'exo-deploy',
        version: packageJSON.version,
        mainProgram: 'exo-deploy',
        src: expect.stringMatching(/^[0-9a-z]{32}-exo-deploy-source$/),
        buildInputs: ['nodejs-22.21.1'],
      };
      expect(f).toMatchObject({
        inputs: ['nixpkgs'],
        nixpkgsUrl: 'github:NixOS/nixpkgs/nixos-25.11',
        outputs: [
          'apps',
          'checks',
          'formatter',
          'nixosModules',
          'overlays',
          'packages',
          'templates',
        ],
        packages: {
          'x86_64-linux': ['default', 'exo-deploy'],
          'aarch64-linux': ['default', 'exo-deploy'],
        },
        package: pkg,
        defaultIsPackage: true,
        checks: {
          'x86_64-linux': ['deploy', 'module', 'package'],
          'aarch64-linux': ['deploy', 'module', 'package'],
        },
        apps: { 'x86_64-linux': 'app', 'aarch64-linux': 'app' },
        appProgram: expect.stringMatching(/-exo-deploy-0\.1\.0\/bin\/exo-deploy$/),
        formatter: { 'x86_64-linux': 'nixfmt-tree', 'aarch64-linux': 'nixfmt-tree' },
        nixosModules: ['default', 'exo'],
        overlayAdds: ['exo-deploy'],
        overlayPackage: pkg,
        // the stand-in nixpkgs has no exo-deploy: the wrapper's is the only one
        moduleToolkit: pkg,
        moduleAssertions: [],
      });
      expect((f.template as { path: string }).path).toMatch(/templates\/default$/);
    });
  });

  describe('nix/package.nix', () => {
    const evalPackage = () =>
      nixEval<
        Record<string, unknown> & { srcFiles: string[]; installPhase: string; attrs: string[] }
      >(`import ${nixPath('test/module/nix/eval-package.nix')}`, {
        arg: { lib: libArg() },
        readWrite: true,
      });
    const bundleFiles = () =>
      readdirSync(path.join(repoRoot, 'dist/cli')).map((f) => `dist/cli/${f}`);

    it('installs the committed bundle and package.json and wraps it with nodejs_22: no npm, no registry', async () => {
      const p = await evalPackage();
      expect(p).toMatchObject({
        pname: 'exo-deploy',
        version: packageJSON.version,
        name: `exo-deploy-${packageJSON.version}`,
        mainProgram: 'exo-deploy',
        description: packageJSON.description,
        nativeBuildInputs: ['make-shell-wrapper-hook'],
        buildInputs: ['nodejs-22.21.1'],
        dontBuild: true,
        dontConfigure: true,
      });
      expect(p.attrs).toEqual([
        'buildInputs',
        'dontBuild',
        'dontConfigure',
        'installPhase',
        'meta',
        'nativeBuildInputs',
        'pname',
        'src',
        'version',
      ]);
      expect(p.installPhase).toContain('cp -r dist/cli $out/lib/exo-deploy/dist/');
      expect(p.installPhase).toContain('cp package.json $out/lib/exo-deploy/');
      expect(p.installPhase).toMatch(
        /makeWrapper \/nix\/store\/5{32}-nodejs-22\.21\.1\/bin\/node \$out\/bin\/exo-deploy \\\n\s+--add-flags \$out\/lib\/exo-deploy\/dist\/cli\/cli\.js/,
      );
    });

    it('takes only package.json and dist/cli from the repository: other edits leave it unchanged', async () => {
      const p = await evalPackage();
      expect(p.srcName).toMatch(/^[0-9a-z]{32}-exo-deploy-source$/);
      expect([...p.srcFiles].sort()).toEqual(['package.json', ...bundleFiles()].sort());
    });

    it("builds (stand-in stdenv, this machine's node) into a command that runs", async () => {
      const { stdout } = await execa(
        'nix-build',
        [
          '--no-out-link',
          path.join(repoRoot, 'test/module/nix/build-package.nix'),
          '--arg',
          'lib',
          libArg(),
          '--argstr',
          'node',
          process.execPath,
        ],
        { cwd: repoRoot, timeout: 120_000 },
      );
      const out = stdout.trim().split('\n').at(-1)!;
      expect(out).toMatch(/^\/nix\/store\/[0-9a-z]{32}-exo-deploy-0\.1\.0$/);
      const installed = readdirSync(path.join(out, 'lib/exo-deploy/dist/cli')).map(
        (f) => `dist/cli/${f}`,
      );
      expect(installed.sort()).toEqual(bundleFiles().sort());
      expect(readFileSync(path.join(out, 'lib/exo-deploy/package.json'), 'utf8')).toBe(
        readFileSync(path.join(repoRoot, 'package.json'), 'utf8'),
      );
      const env = { ...process.env, NODE_PATH: undefined };
      expect(
        (
          await execa(path.join(out, 'bin/exo-deploy'), ['--version'], {
            cwd: '/',
            env,
            extendEnv: false,
          })
        ).stdout,
      ).toBe(packageJSON.version);
    });
  });

  describe('VM tests (nix/tests)', () => {
    it('have test scripts that are valid Python', async () => {
      const t = await nixEval<{ module: string; deploy: string; names: string[] }>(
        `import ${nixPath('test/module/nix/eval-vm-tests.nix')}`,
        { arg: { lib: libArg() } },
      );
      expect(t.names).toEqual(['exo-module', 'exo-deploy-deploy']);
      for (const script of [t.module, t.deploy]) {
        // the driver defines start_all, subtest and the machines; only the syntax is checked here
        await execa('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], {
          input: script,
        });
      }
    });
  });
});
