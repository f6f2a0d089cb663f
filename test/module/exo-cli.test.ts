// What modules/exo.nix knows of exo and exo-deploy (modules/exo-cli.nix): eras, command lines,
// environment, firewall rules, release.json. Evaluated with nixpkgs' lib (NIXPKGS_LIB), as the
// module is; without it these tests are skipped.
import { describe, expect, it } from 'vitest';
import { haveLib, libArg, nixEval, nixPath, noLibMessage } from './nix-eval.js';

if (!haveLib) console.log(noLibMessage);

const EXO_CLI = nixPath('modules/exo-cli.nix');
const h = (body: string) =>
  nixEval(`{ lib }: let h = import ${EXO_CLI} { inherit lib; }; in ${body}`, {
    arg: { lib: libArg() },
  });

describe.skipIf(!haveLib)('exo-cli.nix', () => {
  describe("exo's era", () => {
    it('comes from the version: none is exo main (zenoh), releases up to 1.0.71 libp2p, unstable by date', async () => {
      expect(
        await h(
          `map h.eraOfVersion [ "" "1.0.71" "1.0.3" "1.0.72" "1.1.0" "0-unstable-2026-06-02" "0-unstable-2026-06-03" "0.3.70" ]`,
        ),
      ).toEqual(['zenoh', 'libp2p', 'libp2p', null, null, 'libp2p', 'zenoh', null]);
    });
    it('tells exo from before the 1.0 rewrite, and says nothing while the rewrite was untagged', async () => {
      expect(
        await h(
          `map h.eraOfVersion [ "0.0.15-alpha" "0-unstable-2024-12-07" "0-unstable-2025-10-01" "0-unstable-2026-01-05" ]`,
        ),
      ).toEqual(['pre-v1', 'pre-v1', null, 'libp2p']);
    });
  });

  describe('exoArgs', () => {
    const ports = 'apiPort = 1; libp2pPort = 4; zenohPort = 2; discoveryPort = 3;';
    it('zenoh era: passes its ports and nothing else by default (exo stays in the foreground)', async () => {
      expect(await h(`h.exoArgs { era = "zenoh"; ${ports} }`)).toEqual([
        '--api-port',
        '1',
        '--zenoh-port',
        '2',
        '--discovery-port',
        '3',
      ]);
    });
    it('zenoh era: adds namespace, offline and extra arguments in that order', async () => {
      expect(
        await h(
          `h.exoArgs { era = "zenoh"; ${ports} namespace = "lab"; offline = true; extraArgs = [ "-v" ]; }`,
        ),
      ).toEqual([
        '--api-port',
        '1',
        '--zenoh-port',
        '2',
        '--discovery-port',
        '3',
        '--namespace',
        'lab',
        '--offline',
        '-v',
      ]);
    });
    it('libp2p era: the API port and a fixed libp2p port only; the namespace is not a flag', async () => {
      expect(await h(`h.exoArgs { era = "libp2p"; ${ports} namespace = "lab"; }`)).toEqual([
        '--api-port',
        '1',
        '--libp2p-port',
        '4',
      ]);
      expect(
        await h(`h.exoArgs { era = "libp2p"; apiPort = 1; zenohPort = 2; discoveryPort = 3; }`),
      ).toEqual(['--api-port', '1']);
    });
    it('finds extra arguments that contradict the options, with or without =, or by prefix', async () => {
      expect(
        await h(
          `h.conflictingArgs "zenoh" [ "-v" "--api-port=1" "--legacy-daemon" "--no-downloads" "--names" "x" ]`,
        ),
      ).toEqual(['--api-port=1', '--legacy-daemon', '--names']);
    });
    it('finds flags the era does not have, and prefixes argparse cannot resolve', async () => {
      expect(
        await h(`h.unknownArgs "libp2p" [ "--zenoh-port" "1" "--no" "--offline" "--exo-home=/x" ]`),
      ).toEqual(['--zenoh-port', '--no', '--exo-home=/x']);
      expect(await h(`h.unknownArgs "zenoh" [ "--libp2p-port" "1" "--no-w" ]`)).toEqual([
        '--libp2p-port',
      ]);
    });
  });

  describe('exo environment', () => {
    it('keeps config, data and cache under stateDir, user variables included', async () => {
      const env = await h(
        `h.exoEnvironment { stateDir = "/s"; modelsDir = "/m"; environment = { A = "1"; }; }`,
      );
      expect(env).toEqual({
        A: '1',
        HOME: '/s',
        EXO_HOME: '/s',
        EXO_DEFAULT_MODELS_DIR: '/m',
        XDG_CONFIG_HOME: '/s/.config',
        XDG_DATA_HOME: '/s/.local/share',
        XDG_CACHE_HOME: '/s/.cache',
      });
    });
    it('carries a pinned namespace in EXO_LIBP2P_NAMESPACE for the libp2p era only', async () => {
      const env = (era: string) =>
        h(
          `(h.exoEnvironment { era = "${era}"; namespace = "lab"; stateDir = "/s"; modelsDir = "/m"; }).EXO_LIBP2P_NAMESPACE or null`,
        );
      expect(await env('libp2p')).toBe('lab');
      expect(await env('zenoh')).toBeNull();
    });
  });

  describe('firewall rules', () => {
    const rules = (era: string, ring: boolean, libp2pPort = 'null') =>
      h(
        `h.firewallRules { era = "${era}"; apiPort = 1; libp2pPort = ${libp2pPort}; zenohPort = 2; discoveryPort = 3; openRingPorts = ${ring}; ringPortRange = { from = 10; to = 20; }; }`,
      );
    it('zenoh era: opens API and zenoh on TCP, discovery on UDP, and the ring range only when asked', async () => {
      expect(await rules('zenoh', false)).toEqual({
        allowedTCPPorts: [1, 2],
        allowedUDPPorts: [3],
        allowedTCPPortRanges: [],
      });
      expect(await rules('zenoh', true)).toMatchObject({
        allowedTCPPortRanges: [{ from: 10, to: 20 }],
      });
    });
    it('libp2p era: opens API and a fixed libp2p port on TCP, mDNS on UDP', async () => {
      expect(await rules('libp2p', false, '4')).toEqual({
        allowedTCPPorts: [1, 4],
        allowedUDPPorts: [5353],
        allowedTCPPortRanges: [],
      });
      expect(await rules('libp2p', false)).toMatchObject({ allowedTCPPorts: [1] });
    });
  });

  describe('toolkit command lines', () => {
    it('builds `exo-deploy check --local` from the health options', async () => {
      expect(
        await h(
          `h.checkArgs { api = "http://127.0.0.1:52415"; unit = "exo.service"; stateDir = "/var/lib/private/exo"; since = "2m"; statusFile = "/run/exo/health.json"; expectNodes = 3; textfile = "/t/exo.prom"; extraArgs = [ "--x" ]; }`,
        ),
      ).toEqual([
        'check',
        '--local',
        '--since',
        '2m',
        '--api',
        'http://127.0.0.1:52415',
        '--unit',
        'exo.service',
        '--state-dir',
        '/var/lib/private/exo',
        '--status-file',
        '/run/exo/health.json',
        '--expect-nodes',
        '3',
        '--textfile',
        '/t/exo.prom',
        '--x',
      ]);
    });
    it('builds `backup create` and `backup prune`', async () => {
      expect(await h(`h.backupCreateArgs { dir = "/b"; stateDir = "/s"; models = true; }`)).toEqual(
        ['backup', 'create', '--local', '--dir', '/b', '--state-dir', '/s', '--models'],
      );
      expect(await h(`h.backupPruneArgs { dir = "/b"; keep = 4; }`)).toEqual([
        'backup',
        'prune',
        '--local',
        '--dir',
        '/b',
        '--keep',
        '4',
      ]);
    });
  });

  describe('pull command line', () => {
    const base =
      'url = "git@github.com:acme/fleet.git"; branch = "main"; hostName = "h1"; repoConfig = "exo-deploy.toml"; pullDir = "/var/lib/exo-deploy/pull";';
    it('passes every setting, defaults too, and nothing optional unset', async () => {
      expect(await h(`h.pullArgs { ${base} }`)).toEqual([
        'pull',
        '--url',
        'git@github.com:acme/fleet.git',
        '--branch',
        'main',
        '--host-name',
        'h1',
        '--repo-config',
        'exo-deploy.toml',
        '--pull-dir',
        '/var/lib/exo-deploy/pull',
      ]);
    });
    it('adds the allowed signers, the textfile and extra arguments in that order', async () => {
      const argv = await h(
        `h.pullArgs { ${base} allowedSignersFile = "/etc/s"; textfile = "/t/exo-deploy-pull.prom"; extraArgs = [ "--json" ]; }`,
      );
      expect((argv as string[]).slice(11)).toEqual([
        '--allowed-signers',
        '/etc/s',
        '--textfile',
        '/t/exo-deploy-pull.prom',
        '--json',
      ]);
    });
  });

  describe('credentials in a git URL', () => {
    it('finds a token or a password in an http(s) URL and hides it', async () => {
      expect(
        await h(
          `map h.urlCredentialsHidden [ "https://ghp_0123456789abcdef@github.com/acme/fleet.git" "https://oauth2:glpat-x@gitlab.example/a/b" "HTTP://alice@git.example/fleet" ]`,
        ),
      ).toEqual([
        'https://…@github.com/acme/fleet.git',
        'https://…@gitlab.example/a/b',
        'HTTP://…@git.example/fleet',
      ]);
    });
    it("finds a password in another scheme's URL, not a user name", async () => {
      expect(
        await h(
          `map h.urlCredentialsHidden [ "ssh://git:hunter2@git.example:2222/fleet" "ssh://git@git.example:2222/fleet" ]`,
        ),
      ).toEqual(['ssh://…@git.example:2222/fleet', null]);
    });
    it('finds none in scp-like, plain http(s), file URLs, or an @ in the path', async () => {
      expect(
        await h(
          `map h.urlCredentialsHidden [ "git@github.com:acme/fleet.git" "https://github.com/acme/fleet.git" "file:///srv/fleet" "/srv/fleet.git" "https://git.example/~a/b@c" ]`,
        ),
      ).toEqual([null, null, null, null, null]);
    });
  });

  describe('release.json', () => {
    it('names exo by version, else by source revision, else by store name', async () => {
      expect(
        await h(`map h.exoIdentity [
        { version = "1.0.71"; revision = "b5375f8ce0a1b2c3d4e5"; package = "/nix/store/a-exo-1.0.71"; }
        { version = ""; revision = "b5375f8ce0a1b2c3d4e5"; package = "/nix/store/b-exo"; }
        { version = ""; package = "/nix/store/c-exo"; }
      ]`),
      ).toEqual(['1.0.71', 'b5375f8ce0a1', 'c-exo']);
    });
    it("records identity, era, store path, namespace, the era's ports and state folder", async () => {
      expect(
        await h(
          `h.releaseInfo { era = "zenoh"; version = "1.0.71"; package = "/nix/store/x-exo"; namespace = null; apiPort = 1; zenohPort = 2; discoveryPort = 3; stateDir = "/var/lib/exo"; }`,
        ),
      ).toEqual({
        schemaVersion: 2,
        exo: {
          version: '1.0.71',
          identity: '1.0.71',
          revision: null,
          era: 'zenoh',
          package: '/nix/store/x-exo',
        },
        namespace: null,
        ports: { api: 1, libp2p: null, zenoh: 2, discovery: 3 },
        stateDir: '/var/lib/exo',
        configRevision: null,
      });
    });
  });
});
