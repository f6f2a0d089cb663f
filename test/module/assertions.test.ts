// services.exo's assertions (modules/exo.nix), each fired by a configuration that contradicts
// it, through the real module with its own option defaults (test/module/nix/eval-module.nix).
// Needs NIXPKGS_LIB, as eval.test.ts; without it these tests are skipped.
import { describe, expect, it } from 'vitest';
import { evalExo, type StubExo } from './eval-exo.js';
import { haveLib, noLibMessage } from './nix-eval.js';

if (!haveLib) console.log(noLibMessage);

/** The messages of the assertions that fail for `exo` merged over the defaults. */
const failing = async (exo: Record<string, unknown>, pkg: StubExo = 'exo') =>
  (await evalExo(exo, pkg)).failedAssertions;

describe.skipIf(!haveLib)('assertions', () => {
  it('all hold for the defaults', async () => {
    expect(await failing({})).toEqual([]);
  });

  // nixpkgs' exo 1.0.71 (libp2p era) unless a case names another stub exo
  it.each([
    ['an empty pinned namespace', { namespace: '' }, 'exo', /namespace is set but empty/],
    [
      'a namespace with spaces',
      { namespace: 'a b' },
      'exo',
      /namespace is set but empty or contains white space/,
    ],
    [
      'a backup dir inside the state dir',
      { backup: { dir: '/var/lib/exo/backups' } },
      'exo',
      /backup.dir .* lies inside/,
    ],
    [
      'a backup dir inside the private state dir',
      { backup: { dir: '/var/lib/private/exo/b' } },
      'exo',
      /backup.dir .* lies inside/,
    ],
    [
      'the same API and zenoh port',
      { zenohPort: 52415 },
      'exo-flake',
      /the API port and the zenoh port are both 52415/,
    ],
    [
      'the same API and libp2p port',
      { libp2pPort: 52415 },
      'exo',
      /the API port and the libp2p port are both 52415/,
    ],
    ['exo from before the 1.0 rewrite', {}, 'exo-pre-v1', /before exo's 1.0 rewrite/],
    [
      'an era the version cannot tell',
      {},
      'exo-v2',
      /services.exo.era: cannot tell from exo's version \("2.0.0"\)/,
    ],
    ['an IPv6 probe address', { probeAddress: '::1' }, 'exo', /IPv4 only/],
    ['a zero API port', { apiPort: 0 }, 'exo', /apiPort is 0/],
    ['a namespace argparse reads as an option', { namespace: '-x' }, 'exo', /starts with "-"/],
    [
      'a reversed ring range',
      { openRingPorts: true, ringPortRange: { from: 9, to: 1 } },
      'exo',
      /`from` \(9\) is greater than `to` \(1\)/,
    ],
    [
      'a DynamicUser state dir outside /var/lib',
      { stateDir: '/srv/exo', modelsDir: '/srv/exo/models' },
      'exo',
      /stateDir \(\/srv\/exo\) is outside \/var\/lib/,
    ],
    [
      'a DynamicUser models dir it cannot own',
      { modelsDir: '/srv/models' },
      'exo',
      /modelsDir \(\/srv\/models\) is outside/,
    ],
    [
      'a flag the module owns in extraArgs',
      { extraArgs: ['--legacy-daemon'] },
      'exo-flake',
      /extraArgs contains \["--legacy-daemon"\]/,
    ],
    [
      'a flag of the other era in extraArgs',
      { extraArgs: ['--namespace', 'x'] },
      'exo',
      /\["--namespace"\], which the libp2p-era exo does not accept/,
    ],
    [
      'a variable the module owns',
      { environment: { EXO_HOME: '/x' } },
      'exo',
      /environment sets \["EXO_HOME"\]/,
    ],
    [
      'a secret in the environment',
      { environment: { HF_TOKEN: 'hf_x' } },
      'exo',
      /HF_TOKEN.*environmentFile/,
    ],
    [
      'another secret by its name',
      { environment: { GITHUB_TOKEN: 'x', AWS_SECRET_ACCESS_KEY: 'y' } },
      'exo',
      /\["AWS_SECRET_ACCESS_KEY","GITHUB_TOKEN"\].*environmentFile/,
    ],
    [
      'a Hugging Face token under any name',
      { environment: { MY_HUB: 'hf_AbCdEfGhIjKlMnOpQrStUv' } },
      'exo',
      /\["MY_HUB"\].*environmentFile/,
    ],
    [
      'an environment file in the store',
      { environmentFile: '/nix/store/abc-secrets' },
      'exo',
      /points into the Nix store/,
    ],
    ['--no-api with the readiness wait', { extraArgs: ['--no-api'] }, 'exo', /--no-api/],
    [
      'a textfile not ending in .prom',
      { healthCheck: { enable: true, textfile: '/t/exo.txt' } },
      'exo',
      /must end in \.prom/,
    ],
  ] as [string, Record<string, unknown>, StubExo, RegExp][])(
    'fire for %s',
    async (_name, exo, pkg, message) => {
      const messages = await failing(exo, pkg);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(message);
    },
  );

  it('refuse an IPv6 probe address with brackets or without: exo listens on IPv4 only', async () => {
    for (const probeAddress of ['::1', '[::1]', 'fe80::1'])
      expect(await failing({ probeAddress })).toEqual([
        `services.exo.probeAddress (${probeAddress}) is an IPv6 address, but exo's API listens on IPv4 only (0.0.0.0): the readiness wait and health checks would never get an answer. Use "127.0.0.1" or another IPv4 address of this host.`,
      ]);
  });

  it('allow state outside /var/lib for a static user, and --no-api without API users', async () => {
    expect(await failing({ user: 'exo', stateDir: '/srv/exo', modelsDir: '/data/models' })).toEqual(
      [],
    );
    expect(
      await failing({
        extraArgs: ['--no-api'],
        waitForReady: false,
        healthCheck: { enable: false, textfile: null },
      }),
    ).toEqual([]);
  });

  it("take exo's figures named after tokens for what they are, not secrets", async () => {
    expect(
      await failing({ environment: { EXO_MAX_TOKENS: '8192', HF_HUB_ENABLE_HF_TRANSFER: '1' } }),
    ).toEqual([]);
  });

  describe('of pull mode (autoDeploy)', () => {
    const pullFailing = async (
      autoDeploy: Record<string, unknown>,
      exo: Record<string, unknown> = {},
      hostName = 'h1',
    ) =>
      (
        await evalExo(
          {
            ...exo,
            autoDeploy: { enable: true, url: 'git@github.com:acme/fleet.git', ...autoDeploy },
          },
          'exo',
          { networking: { hostName } },
        )
      ).failedAssertions;

    it('all hold for an ssh URL with a key, signers and a textfile', async () => {
      expect(
        await pullFailing(
          {
            sshKeyFile: '/run/secrets/pull-key',
            allowedSignersFile: '/nix/store/00000000000000000000000000000000-allowed_signers',
          },
          { healthCheck: { textfile: '/var/lib/node-exporter/exo.prom' } },
        ),
      ).toEqual([]);
      for (const url of [
        'ssh://git@git.example:2222/fleet.git',
        'https://github.com/acme/fleet.git',
        '/srv/fleet.git',
      ])
        expect(await pullFailing({ url })).toEqual([]);
    });

    it.each([
      [
        'a token',
        'https://ghp_0123456789abcdefghij@github.com/acme/fleet.git',
        'ghp_0123456789abcdefghij',
      ],
      ['a user and password', 'https://deploy:s3cret@git.example/fleet.git', 's3cret'],
      ['a password in an ssh URL', 'ssh://git:s3cret@git.example/fleet.git', 's3cret'],
    ])('refuse %s in the URL, without showing it', async (_name, url, secret) => {
      const messages = await pullFailing({ url });
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(
        /^services\.exo\.autoDeploy\.url \([a-z]+:\/\/…@git[^)]*\) carries credentials, and the pull unit's command line lands in the world-readable Nix store\. .*sshKeyFile, or a git credential helper/,
      );
      expect(messages[0]).not.toContain(secret);
    });

    it('refuse an ssh key in the Nix store, where anyone can read it', async () => {
      expect(
        await pullFailing({ sshKeyFile: '/nix/store/00000000000000000000000000000000-pull-key' }),
      ).toEqual([
        'services.exo.autoDeploy.sshKeyFile points into the Nix store (/nix/store/00000000000000000000000000000000-pull-key), where anyone can read a private key. Keep the key outside it, readable by root only, e.g. /run/secrets/exo-deploy-pull-key (sops-nix, agenix) or /etc/exo-deploy/pull-key.',
      ]);
    });

    it('refuse an empty host name (networking.hostName left to DHCP) unless hostName is set', async () => {
      const messages = await pullFailing({}, {}, '');
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(/autoDeploy\.hostName is empty/);
      expect(await pullFailing({ hostName: 'h1' }, {}, '')).toEqual([]);
    });

    it("refuse a health textfile named as the pull's own: one writer per file", async () => {
      const messages = await pullFailing(
        {},
        { healthCheck: { textfile: '/var/lib/node-exporter/exo-deploy-pull.prom' } },
      );
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(/the file pull mode writes its metrics to/);
    });

    it('leave all of these alone while pull mode is off', async () => {
      expect(
        await failing({
          autoDeploy: {
            url: 'https://user:pw@git.example/x',
            sshKeyFile: '/nix/store/x-key',
            hostName: '',
          },
          healthCheck: { textfile: '/t/exo-deploy-pull.prom' },
        }),
      ).toEqual([]);
    });
  });

  // Most assertions do not depend on the era: they fire the same for a zenoh-era exo.
  it.each([
    [{ namespace: '' }, /namespace is set but empty/],
    [{ backup: { dir: '/var/lib/exo/backups' } }, /lies inside services.exo.stateDir/],
    [{ apiPort: 52414 }, /the API port and the zenoh port are both 52414/],
    [{ probeAddress: '::1' }, /IPv4 only/],
    [{ extraArgs: ['--no'] }, /\["--no"\], which the zenoh-era exo does not accept/],
    [{ stateDir: '/srv/exo' }, /outside \/var\/lib: with DynamicUser/],
    [{ extraArgs: ['--api-port', '1'] }, /extraArgs contains \["--api-port"\]/],
    [{ environment: { HF_TOKEN: 'x' } }, /secret in the world-readable Nix store/],
    [{ extraArgs: ['--no-api'] }, /--no-api/],
    [{ healthCheck: { textfile: '/t/exo' } }, /\.prom/],
  ])('fire in the zenoh era too, for %j', async (exo, message) => {
    const messages = await failing(exo, 'exo-flake');
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(message);
  });
});
