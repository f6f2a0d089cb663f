// The module's own logic that evaluates without nixpkgs (modules/exo-helpers.nix,
// nix/npm-lock-resolved.nix), with a bare nix-instantiate (CI tier).
import { describe, expect, it } from 'vitest';
import { nixEval, nixPath } from './nix-eval.js';

const h = (body: string) => nixEval(`let h = import ${nixPath('modules/exo-helpers.nix')}; in ${body}`);

// The option values the module passes to `assertions`, at their defaults.
const baseCfg = `{
  user = null; stateDir = "/var/lib/exo"; modelsDir = "/var/lib/exo/models";
  namespace = null; apiPort = 52415; zenohPort = 52414; extraArgs = [ ]; environment = { };
  environmentFile = null; waitForReady = true; openRingPorts = false;
  ringPortRange = { from = 49153; to = 65535; };
  healthCheck = { enable = true; textfile = null; };
  backup = { dir = "/var/backups/exo"; };
}`;
const failing = (override: string) =>
  h(`map (a: a.message) (builtins.filter (a: !a.assertion) (h.assertions (${baseCfg} // ${override})))`) as Promise<string[]>;

describe('escapeSystemdExecArgs', () => {
  it('quotes every argument and doubles systemd specifiers', async () => {
    expect(await h(`h.escapeSystemdExecArgs [ "a b" "100%" "$HOME" 3 ]`)).toBe('"a b" "100%%" "$$HOME" "3"');
  });
  it('escapes quotes, backslashes and new lines C-style', async () => {
    expect(await h(`h.escapeSystemdExecArg "say \\"hi\\"\\\\n\\n"`)).toBe('"say \\"hi\\"\\\\n\\n"');
  });
});

describe('exoArgs', () => {
  const ports = 'apiPort = 1; zenohPort = 2; discoveryPort = 3;';
  it('passes the ports and nothing else by default (exo stays in the foreground)', async () => {
    expect(await h(`h.exoArgs { ${ports} }`)).toEqual(['--api-port', '1', '--zenoh-port', '2', '--discovery-port', '3']);
  });
  it('adds namespace, offline and extra arguments in that order', async () => {
    expect(await h(`h.exoArgs { ${ports} namespace = "lab"; offline = true; extraArgs = [ "-v" ]; }`)).toEqual([
      '--api-port', '1', '--zenoh-port', '2', '--discovery-port', '3', '--namespace', 'lab', '--offline', '-v',
    ]);
  });
  it('finds extra arguments that contradict the options, with or without =', async () => {
    expect(await h(`h.conflictingArgs [ "-v" "--api-port=1" "--legacy-daemon" "--no-downloads" ]`)).toEqual([
      '--api-port=1',
      '--legacy-daemon',
    ]);
  });
});

describe('paths', () => {
  it('knows where DynamicUser really keeps the state', async () => {
    expect(await h(`h.realStateDir { stateDir = "/var/lib/exo/"; dynamicUser = true; }`)).toBe('/var/lib/private/exo');
    expect(await h(`h.realStateDir { stateDir = "/var/lib/exo"; dynamicUser = false; }`)).toBe('/var/lib/exo');
    expect(await h(`h.realStateDir { stateDir = "/srv/exo"; dynamicUser = true; }`)).toBe('/srv/exo');
  });
  it('names StateDirectory= only for folders below /var/lib', async () => {
    expect(await h(`map h.stateDirectoryName [ "/var/lib/exo" "/var/lib/a/b" "/var/lib" "/srv/exo" ]`)).toEqual([
      'exo', 'a/b', null, null,
    ]);
  });
  it('tells inside from beside', async () => {
    expect(await h(`[ (h.isWithin "/var/lib/exo" "/var/lib/exo/b") (h.isWithin "/var/lib/exo" "/var/lib/exo2") (h.isWithin "/" "/x") ]`)).toEqual([
      true, false, true,
    ]);
  });
  it('puts IPv6 hosts in brackets in the API URL', async () => {
    expect(await h(`map (host: h.apiUrl { inherit host; apiPort = 52415; }) [ "127.0.0.1" "::1" "[::1]" ]`)).toEqual([
      'http://127.0.0.1:52415', 'http://[::1]:52415', 'http://[::1]:52415',
    ]);
  });
});

describe('exo environment', () => {
  it('keeps config, data and cache under stateDir, user variables included', async () => {
    const env = await h(`h.exoEnvironment { stateDir = "/s"; modelsDir = "/m"; environment = { A = "1"; }; }`);
    expect(env).toEqual({
      A: '1', HOME: '/s', EXO_HOME: '/s', EXO_DEFAULT_MODELS_DIR: '/m',
      XDG_CONFIG_HOME: '/s/.config', XDG_DATA_HOME: '/s/.local/share', XDG_CACHE_HOME: '/s/.cache',
    });
  });
});

describe('GPU access', () => {
  it('allows nothing for CPU, the NVIDIA devices for cuda, kfd/drm and render for rocm', async () => {
    const [cpu, cuda, rocm] = await h(`map h.gpuAccess [ null "cuda" "rocm" ]`) as { deviceAllow: string[]; groups: string[] }[];
    expect(cpu).toEqual({ deviceAllow: [], groups: [] });
    expect(cuda!.deviceAllow).toContain('char-nvidia-uvm');
    expect(rocm!.deviceAllow).toContain('char-kfd');
    expect(rocm!.groups).toEqual(['video', 'render']);
  });
});

describe('firewall rules', () => {
  it('opens API and zenoh on TCP, discovery on UDP, and the ring range only when asked', async () => {
    const rules = (ring: boolean) =>
      h(`h.firewallRules { apiPort = 1; zenohPort = 2; discoveryPort = 3; openRingPorts = ${ring}; ringPortRange = { from = 10; to = 20; }; }`);
    expect(await rules(false)).toEqual({ allowedTCPPorts: [1, 2], allowedUDPPorts: [3], allowedTCPPortRanges: [] });
    expect(await rules(true)).toMatchObject({ allowedTCPPortRanges: [{ from: 10, to: 20 }] });
  });
});

describe('toolkit command lines', () => {
  it('builds `exo-deploy check --local` from the health options', async () => {
    expect(
      await h(`h.checkArgs { api = "http://127.0.0.1:52415"; unit = "exo.service"; stateDir = "/var/lib/private/exo"; since = "2m"; statusFile = "/run/exo/health.json"; expectNodes = 3; textfile = "/t/exo.prom"; extraArgs = [ "--x" ]; }`),
    ).toEqual([
      'check', '--local', '--since', '2m', '--api', 'http://127.0.0.1:52415', '--unit', 'exo.service',
      '--state-dir', '/var/lib/private/exo', '--status-file', '/run/exo/health.json',
      '--expect-nodes', '3', '--textfile', '/t/exo.prom', '--x',
    ]);
  });
  it('builds `backup create` and `backup prune`', async () => {
    expect(await h(`h.backupCreateArgs { dir = "/b"; stateDir = "/s"; models = true; }`)).toEqual([
      'backup', 'create', '--local', '--dir', '/b', '--state-dir', '/s', '--models',
    ]);
    expect(await h(`h.backupPruneArgs { dir = "/b"; keep = 4; }`)).toEqual(['backup', 'prune', '--local', '--dir', '/b', '--keep', '4']);
  });
});

describe('release.json', () => {
  it('records version, store path, namespace, ports and state folder', async () => {
    expect(
      await h(`h.releaseInfo { version = "1.0.71"; package = "/nix/store/x-exo"; namespace = null; apiPort = 1; zenohPort = 2; discoveryPort = 3; stateDir = "/var/lib/exo"; }`),
    ).toEqual({
      schemaVersion: 1,
      exo: { version: '1.0.71', package: '/nix/store/x-exo' },
      namespace: null,
      ports: { api: 1, zenoh: 2, discovery: 3 },
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
    ['a namespace with spaces', '{ namespace = "a b"; }', /namespace is set but empty or contains white space/],
    ['a backup dir inside the state dir', '{ backup.dir = "/var/lib/exo/backups"; }', /backup.dir .* lies inside/],
    ['a backup dir inside the private state dir', '{ backup.dir = "/var/lib/private/exo/b"; }', /backup.dir .* lies inside/],
    ['the same API and zenoh port', '{ zenohPort = 52415; }', /apiPort and services.exo.zenohPort are both 52415/],
    ['a reversed ring range', '{ openRingPorts = true; ringPortRange = { from = 9; to = 1; }; }', /`from` \(9\) is greater than `to` \(1\)/],
    ['a DynamicUser state dir outside /var/lib', '{ stateDir = "/srv/exo"; modelsDir = "/srv/exo/models"; }', /stateDir \(\/srv\/exo\) is outside \/var\/lib/],
    ['a DynamicUser models dir it cannot own', '{ modelsDir = "/srv/models"; }', /modelsDir \(\/srv\/models\) is outside/],
    ['a flag the module owns in extraArgs', '{ extraArgs = [ "--legacy-daemon" ]; }', /extraArgs contains \["--legacy-daemon"\]/],
    ['a variable the module owns', '{ environment = { EXO_HOME = "/x"; }; }', /environment sets \["EXO_HOME"\]/],
    ['a secret in the environment', '{ environment = { HF_TOKEN = "hf_x"; }; }', /HF_TOKEN.*environmentFile/],
    ['an environment file in the store', '{ environmentFile = "/nix/store/abc-secrets"; }', /points into the Nix store/],
    ['--no-api with the readiness wait', '{ extraArgs = [ "--no-api" ]; }', /--no-api/],
    ['a textfile not ending in .prom', '{ healthCheck = { enable = true; textfile = "/t/exo.txt"; }; }', /must end in \.prom/],
  ])('fire for %s', async (_name, override, message) => {
    const messages = await failing(override);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(message);
  });
  it('allow state outside /var/lib for a static user, and --no-api without API users', async () => {
    expect(await failing('{ user = "exo"; stateDir = "/srv/exo"; modelsDir = "/data/models"; }')).toEqual([]);
    expect(await failing('{ extraArgs = [ "--no-api" ]; waitForReady = false; healthCheck = { enable = false; textfile = null; }; }')).toEqual([]);
  });
});

describe('npm-lock-resolved.nix', () => {
  it('gives every registry package of package-lock.json a registry URL', async () => {
    const packages = (await nixEval(
      `((import ${nixPath('nix/npm-lock-resolved.nix')} { registry = "https://registry.example"; }) (builtins.fromJSON (builtins.readFile ${nixPath('package-lock.json')}))).packages`,
    )) as Record<string, { resolved?: string; version?: string; link?: boolean }>;
    const missing = Object.entries(packages).filter(([p, m]) => p !== '' && !m.link && !m.resolved);
    expect(missing).toEqual([]);
    for (const [p, m] of Object.entries(packages)) {
      if (p === '' || m.link) continue;
      expect(m.resolved).toMatch(/^https:\/\/registry\.example\/(@[^/]+\/)?[^/@]+\/-\/[^/]+\.tgz$/);
    }
  });
  it('handles scoped, nested and aliased packages and keeps existing URLs', async () => {
    const lock = `{ packages = {
      "" = { name = "root"; };
      "node_modules/@s/a" = { version = "1.0.0"; integrity = "x"; };
      "node_modules/b/node_modules/c" = { version = "2.0.0"; integrity = "x"; };
      "node_modules/alias" = { name = "real"; version = "3.0.0"; integrity = "x"; };
      "node_modules/kept" = { version = "1.0.0"; integrity = "x"; resolved = "https://example/k.tgz"; };
      "node_modules/ws" = { link = true; };
    }; }`;
    const out = (await nixEval(`((import ${nixPath('nix/npm-lock-resolved.nix')} { registry = "https://registry.example"; }) ${lock}).packages`)) as Record<string, { resolved?: string }>;
    expect(out['node_modules/@s/a']!.resolved).toBe('https://registry.example/@s/a/-/a-1.0.0.tgz');
    expect(out['node_modules/b/node_modules/c']!.resolved).toBe('https://registry.example/c/-/c-2.0.0.tgz');
    expect(out['node_modules/alias']!.resolved).toBe('https://registry.example/real/-/real-3.0.0.tgz');
    expect(out['node_modules/kept']!.resolved).toBe('https://example/k.tgz');
    expect(out['node_modules/ws']!.resolved).toBeUndefined();
    expect(out['']!.resolved).toBeUndefined();
  });
});
