// The module's own logic that evaluates without nixpkgs (modules/exo-helpers.nix), with a
// bare nix-instantiate (CI tier).
import { describe, expect, it } from 'vitest';
import { nixEval, nixPath } from './nix-eval.js';

const h = (body: string) =>
  nixEval(`let h = import ${nixPath('modules/exo-helpers.nix')}; in ${body}`);

// The option values the module passes to `assertions`, at their defaults.
const baseCfg = `{
  exoVersion = "1.0.71"; resolvedEra = "libp2p"; ipv6 = true; host = "127.0.0.1"; openFirewall = false;
  user = null; stateDir = "/var/lib/exo"; modelsDir = "/var/lib/exo/models";
  namespace = null; apiPort = 52415; libp2pPort = null; zenohPort = 52414; discoveryPort = 52413; extraArgs = [ ]; environment = { };
  environmentFile = null; waitForReady = true; openRingPorts = false;
  ringPortRange = { from = 49153; to = 65535; };
  healthCheck = { enable = true; textfile = null; };
  backup = { dir = "/var/backups/exo"; };
}`;
const failing = (override: string) =>
  h(
    `map (a: a.message) (builtins.filter (a: !a.assertion) (h.assertions (${baseCfg} // ${override})))`,
  ) as Promise<string[]>;

describe('escapeSystemdExecArgs', () => {
  it('quotes every argument and doubles systemd specifiers', async () => {
    expect(await h(`h.escapeSystemdExecArgs [ "a b" "100%" "$HOME" 3 ]`)).toBe(
      '"a b" "100%%" "$$HOME" "3"',
    );
  });
  it('escapes quotes, backslashes and new lines C-style', async () => {
    expect(await h(`h.escapeSystemdExecArg "say \\"hi\\"\\\\n\\n"`)).toBe('"say \\"hi\\"\\\\n\\n"');
  });
});

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

describe('paths', () => {
  it('knows where DynamicUser really keeps the state', async () => {
    expect(await h(`h.realStateDir { stateDir = "/var/lib/exo/"; dynamicUser = true; }`)).toBe(
      '/var/lib/private/exo',
    );
    expect(await h(`h.realStateDir { stateDir = "/var/lib/exo"; dynamicUser = false; }`)).toBe(
      '/var/lib/exo',
    );
    expect(await h(`h.realStateDir { stateDir = "/srv/exo"; dynamicUser = true; }`)).toBe(
      '/srv/exo',
    );
  });
  it('names StateDirectory= only for folders below /var/lib', async () => {
    expect(
      await h(`map h.stateDirectoryName [ "/var/lib/exo" "/var/lib/a/b" "/var/lib" "/srv/exo" ]`),
    ).toEqual(['exo', 'a/b', null, null]);
  });
  it('tells inside from beside', async () => {
    expect(
      await h(
        `[ (h.isWithin "/var/lib/exo" "/var/lib/exo/b") (h.isWithin "/var/lib/exo" "/var/lib/exo2") (h.isWithin "/" "/x") ]`,
      ),
    ).toEqual([true, false, true]);
  });
  it('puts IPv6 hosts in brackets in the API URL', async () => {
    expect(
      await h(
        `map (host: h.apiUrl { inherit host; apiPort = 52415; }) [ "127.0.0.1" "::1" "[::1]" ]`,
      ),
    ).toEqual(['http://127.0.0.1:52415', 'http://[::1]:52415', 'http://[::1]:52415']);
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

describe('GPU access', () => {
  it('allows nothing for CPU, the NVIDIA devices for cuda, kfd/drm and render for rocm', async () => {
    const [cpu, cuda, rocm] = (await h(`map h.gpuAccess [ null "cuda" "rocm" ]`)) as {
      deviceAllow: string[];
      groups: string[];
    }[];
    expect(cpu).toEqual({ deviceAllow: [], groups: [] });
    expect(cuda!.deviceAllow).toContain('char-nvidia-uvm');
    expect(rocm!.deviceAllow).toContain('char-kfd');
    expect(rocm!.groups).toEqual(['video', 'render']);
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
    expect(await h(`h.backupCreateArgs { dir = "/b"; stateDir = "/s"; models = true; }`)).toEqual([
      'backup',
      'create',
      '--local',
      '--dir',
      '/b',
      '--state-dir',
      '/s',
      '--models',
    ]);
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
    });
  });
});

describe('assertions', () => {
  it('all hold for the defaults', async () => {
    expect(await failing('{ }')).toEqual([]);
  });
  it.each([
    ['an empty pinned namespace', '{ namespace = ""; }', /namespace is set but empty/],
    [
      'a namespace with spaces',
      '{ namespace = "a b"; }',
      /namespace is set but empty or contains white space/,
    ],
    [
      'a backup dir inside the state dir',
      '{ backup.dir = "/var/lib/exo/backups"; }',
      /backup.dir .* lies inside/,
    ],
    [
      'a backup dir inside the private state dir',
      '{ backup.dir = "/var/lib/private/exo/b"; }',
      /backup.dir .* lies inside/,
    ],
    [
      'the same API and zenoh port',
      '{ resolvedEra = "zenoh"; zenohPort = 52415; }',
      /the API port and the zenoh port are both 52415/,
    ],
    [
      'the same API and libp2p port',
      '{ libp2pPort = 52415; }',
      /the API port and the libp2p port are both 52415/,
    ],
    [
      'exo from before the 1.0 rewrite',
      '{ resolvedEra = "pre-v1"; exoVersion = "0-unstable-2024-12-07"; }',
      /before exo's 1.0 rewrite/,
    ],
    [
      'an era the version cannot tell',
      '{ resolvedEra = null; exoVersion = "2.0.0"; }',
      /services.exo.era: cannot tell from exo's version \("2.0.0"\)/,
    ],
    ['an IPv6 API host', '{ host = "::1"; }', /IPv4 only/],
    ['a zero API port', '{ apiPort = 0; }', /apiPort is 0/],
    ['a namespace argparse reads as an option', '{ namespace = "-x"; }', /starts with "-"/],
    [
      'a reversed ring range',
      '{ openRingPorts = true; ringPortRange = { from = 9; to = 1; }; }',
      /`from` \(9\) is greater than `to` \(1\)/,
    ],
    [
      'a DynamicUser state dir outside /var/lib',
      '{ stateDir = "/srv/exo"; modelsDir = "/srv/exo/models"; }',
      /stateDir \(\/srv\/exo\) is outside \/var\/lib/,
    ],
    [
      'a DynamicUser models dir it cannot own',
      '{ modelsDir = "/srv/models"; }',
      /modelsDir \(\/srv\/models\) is outside/,
    ],
    [
      'a flag the module owns in extraArgs',
      '{ resolvedEra = "zenoh"; extraArgs = [ "--legacy-daemon" ]; }',
      /extraArgs contains \["--legacy-daemon"\]/,
    ],
    [
      'a flag of the other era in extraArgs',
      '{ extraArgs = [ "--namespace" "x" ]; }',
      /\["--namespace"\], which the libp2p-era exo does not accept/,
    ],
    [
      'a variable the module owns',
      '{ environment = { EXO_HOME = "/x"; }; }',
      /environment sets \["EXO_HOME"\]/,
    ],
    [
      'a secret in the environment',
      '{ environment = { HF_TOKEN = "hf_x"; }; }',
      /HF_TOKEN.*environmentFile/,
    ],
    [
      'another secret by its name',
      '{ environment = { GITHUB_TOKEN = "x"; AWS_SECRET_ACCESS_KEY = "y"; }; }',
      /\["AWS_SECRET_ACCESS_KEY","GITHUB_TOKEN"\].*environmentFile/,
    ],
    [
      'a Hugging Face token under any name',
      '{ environment = { MY_HUB = "hf_AbCdEfGhIjKlMnOpQrStUv"; }; }',
      /\["MY_HUB"\].*environmentFile/,
    ],
    [
      'an environment file in the store',
      '{ environmentFile = "/nix/store/abc-secrets"; }',
      /points into the Nix store/,
    ],
    ['--no-api with the readiness wait', '{ extraArgs = [ "--no-api" ]; }', /--no-api/],
    [
      'a textfile not ending in .prom',
      '{ healthCheck = { enable = true; textfile = "/t/exo.txt"; }; }',
      /must end in \.prom/,
    ],
  ])('fire for %s', async (_name, override, message) => {
    const messages = await failing(override);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(message);
  });
  it('allow state outside /var/lib for a static user, and --no-api without API users', async () => {
    expect(
      await failing('{ user = "exo"; stateDir = "/srv/exo"; modelsDir = "/data/models"; }'),
    ).toEqual([]);
    expect(
      await failing(
        '{ extraArgs = [ "--no-api" ]; waitForReady = false; healthCheck = { enable = false; textfile = null; }; }',
      ),
    ).toEqual([]);
  });
  it("take exo's figures named after tokens for what they are, not secrets", async () => {
    expect(
      await failing(
        '{ environment = { EXO_MAX_TOKENS = "8192"; HF_HUB_ENABLE_HF_TRANSFER = "1"; }; }',
      ),
    ).toEqual([]);
  });
});
