// exo's command line in each era: argparse's usage and errors (exit 2), help, the pydantic
// check (exit 1), --legacy-daemon, and the release settings file. The expected texts are what
// Python 3.13's argparse prints for each era's parser (src/exo/main.py at v1.0.71 and on main).
import { afterEach, describe, expect, it } from 'vitest';
import {
  RELEASES,
  freePorts,
  get,
  killAll,
  killLater,
  ready,
  runToExit,
  start,
  until,
  type Era,
} from './harness.js';

afterEach(() => killAll());

const HELP: Record<Era, string> = {
  libp2p: `usage: EXO [-h] [-q] [-v] [-m] [--no-api] [--api-port API_PORT] [--no-worker]
           [--no-downloads] [--offline] [--no-batch]
           [--bootstrap-peers BOOTSTRAP_PEERS] [--libp2p-port LIBP2P_PORT]
           [--fast-synch | --no-fast-synch]

options:
  -h, --help            show this help message and exit
  -q, --quiet
  -v, --verbose
  -m, --force-master
  --no-api
  --api-port API_PORT
  --no-worker
  --no-downloads        Disable the download coordinator (node won't download
                        models)
  --offline             Run in offline/air-gapped mode: skip internet checks,
                        use only pre-staged local models
  --no-batch            Disable continuous batching, use sequential generation
  --bootstrap-peers BOOTSTRAP_PEERS
                        Comma-separated libp2p multiaddrs to dial on startup
                        (env: EXO_BOOTSTRAP_PEERS)
  --libp2p-port LIBP2P_PORT
                        Fixed TCP port for libp2p to listen on (0 = OS-
                        assigned).
  --fast-synch          Force MLX FAST_SYNCH on (for JACCL backend)
  --no-fast-synch       Force MLX FAST_SYNCH off
`,
  zenoh: `usage: EXO [-h] [-q] [-v] [-m] [--no-api] [--api-port API_PORT] [--no-worker]
           [--no-downloads] [--offline] [--no-batch] [--legacy-daemon]
           [--bootstrap-peers BOOTSTRAP_PEERS] [--namespace NAMESPACE]
           [--zenoh-port ZENOH_PORT] [--discovery-port DISCOVERY_PORT]
           [--fast-synch | --no-fast-synch]

options:
  -h, --help            show this help message and exit
  -q, --quiet
  -v, --verbose
  -m, --force-master
  --no-api
  --api-port API_PORT
  --no-worker
  --no-downloads        Disable the download coordinator (node won't download
                        models)
  --offline             Run in offline/air-gapped mode: skip internet checks,
                        use only pre-staged local models
  --no-batch            Disable continuous batching, use sequential generation
  --legacy-daemon       Run as a legacy SysV-style background daemon using
                        double-fork daemonization
  --bootstrap-peers BOOTSTRAP_PEERS
                        Comma-separated libp2p multiaddrs to dial on startup
                        (env: EXO_BOOTSTRAP_PEERS)
  --namespace NAMESPACE
                        Discovery namespace, nodes with different namespaces
                        will not connect.
  --zenoh-port ZENOH_PORT
                        Fixed TCP port for zenoh to listen.
  --discovery-port DISCOVERY_PORT
                        Fixed UDP port for the discovery service.
  --fast-synch          Force MLX FAST_SYNCH on (for JACCL backend)
  --no-fast-synch       Force MLX FAST_SYNCH off
`,
};
const USAGE = (era: Era) => HELP[era].slice(0, HELP[era].indexOf('\n\noptions:') + 1);

describe.each(['libp2p', 'zenoh'] as const)('exo stand-in command line, %s era', (era) => {
  const release = RELEASES[era];
  const error = (msg: string) => `${USAGE(era)}EXO: error: ${msg}\n`;

  it("-h prints argparse's help for the era on stdout and exits 0", async () => {
    const r = await runToExit(['-h'], release);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(HELP[era]);
  });

  it('an unknown flag: the usage, "EXO: error: unrecognized arguments: …", exit 2', async () => {
    const r = await runToExit(['--bogus', 'x'], release);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(error('unrecognized arguments: --bogus x'));
  });

  it("the other era's flags are unrecognized arguments (a unit written for the other era crash-loops)", async () => {
    const other =
      era === 'libp2p'
        ? ['--zenoh-port', '52414', '--discovery-port', '52413']
        : ['--libp2p-port', '4001'];
    const r = await runToExit(other, release);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(error(`unrecognized arguments: ${other.join(' ')}`));
    if (era === 'libp2p') {
      const ns = await runToExit(['--namespace', 'lab', '--legacy-daemon'], release);
      expect(ns.code).toBe(2);
      expect(ns.stderr).toBe(error('unrecognized arguments: --namespace lab --legacy-daemon'));
    }
  });

  it("prefixes are ambiguous as in the era's table", async () => {
    const r = await runToExit(['--n', 'x'], release);
    expect(r.code).toBe(2);
    const matches =
      era === 'libp2p'
        ? '--no-api, --no-worker, --no-downloads, --no-batch, --no-fast-synch'
        : '--no-api, --no-worker, --no-downloads, --no-batch, --namespace, --no-fast-synch';
    expect(r.stderr).toBe(error(`ambiguous option: --n could match ${matches}`));
  });

  it('bad values, a missing value, an explicit value for a switch, and the fast-synch group', async () => {
    const cases: [string[], string][] = [
      [['--api-port', 'abc'], "argument --api-port: invalid int value: 'abc'"],
      [['--api-port'], 'argument --api-port: expected one argument'],
      [['--offline=1'], "argument --offline: ignored explicit argument '1'"],
      [['-v=2'], "argument -v/--verbose: ignored explicit argument '2'"],
      [
        ['--fast-synch', '--no-fast-synch'],
        'argument --no-fast-synch: not allowed with argument --fast-synch',
      ],
      [['-vvx'], 'unrecognized arguments: -x'],
    ];
    for (const [args, msg] of cases) {
      const r = await runToExit(args, release);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(error(msg));
    }
  });

  it('a port argparse accepts but pydantic rejects: a traceback, exit 1', async () => {
    const r = await runToExit(['--api-port', '-5'], release);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Traceback \(most recent call last\):\n/);
    expect(r.stderr).toContain(
      'pydantic_core._pydantic_core.ValidationError: 1 validation error for Args\napi_port\n  Input should be greater than 0 [type=greater_than, input_value=-5, input_type=int]',
    );
  });

  it('accepts the flags the module passes, in both spellings and as unique prefixes', async () => {
    const [port, p2, p3] = await freePorts(3);
    const args =
      era === 'libp2p'
        ? ['-m', '-vv', '--no-downloads', '--offline', '--no-batch', `--libp2p-port=${p2}`]
        : [
            '-m',
            '-vv',
            '--no-downloads',
            '--offline',
            '--no-batch',
            '--names=pinned',
            `--zenoh-port=${p2}`,
            '--disc',
            String(p3),
          ];
    const s = start({ name: 'flags', port: port!, release, args });
    await ready(s);
    const ports = era === 'libp2p' ? `libp2p port ${p2}` : `zenoh port ${p2}, discovery port ${p3}`;
    expect(s.log()).toContain(`api port ${port}, ${ports}, host flags`);
    if (era === 'zenoh') expect(s.log()).toContain('namespace pinned,');
    expect(s.log()).toContain('Running in OFFLINE mode — no internet checks, local models only');
    expect(s.log()).toContain('Continuous batching disabled (--no-batch)');
  });
});

describe('--legacy-daemon (zenoh era)', () => {
  it('detaches like python-daemon: the started process exits 0 silently, the daemon serves on', async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'daemon',
      port: port!,
      release: RELEASES.zenoh,
      args: ['--legacy-daemon'],
    });
    const r = await s.exited;
    expect(r.code).toBe(0);
    expect(s.stderr()).toBe('');
    const hello = await until(
      'the daemon to answer',
      async () => (await get(port!, '/_standin/discovery')).json,
    );
    killLater(hello.pid);
    expect(hello.pid).not.toBe(s.proc.pid);
    expect((await get(port!, '/node_id')).status).toBe(200);
  });
});

describe('release settings', () => {
  it('a missing or broken release file, an unknown fault or era: exit 1 with a clear message', async () => {
    const r = await runToExit([], RELEASES.zenoh, {
      EXO_STANDIN_RELEASE: '/nonexistent/release.json',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'exo-standin: cannot read release settings /nonexistent/release.json',
    );
    const f = await runToExit([], { version: '1.0.3', fault: 'explode' });
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('unknown fault "explode"');
    const e = await runToExit([], { version: '1.0.3', era: 'quantum' as Era });
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('unknown era "quantum"');
  });

  it('the era defaults from the version: 1.0.x is libp2p, anything else zenoh; "era" overrides', async () => {
    for (const [release, era] of [
      [{ version: '1.0.3' }, 'libp2p'],
      [{ version: '1.1.0' }, 'zenoh'],
      [{ version: '0.1.0' }, 'zenoh'],
      [{ version: '1.0.3', era: 'zenoh' as Era }, 'zenoh'],
    ] as const) {
      // only the libp2p era knows --libp2p-port; there -1 passes argparse and fails in Rust (u16)
      const r = await runToExit(['--libp2p-port', '-1'], release);
      expect(r.code, JSON.stringify(release)).toBe(era === 'libp2p' ? 1 : 2);
      if (era === 'libp2p') {
        expect(r.stderr).toContain(
          `exo stand-in: exo ${release.version} (libp2p era, package 0.3.70)`,
        );
        expect(r.stderr).toMatch(
          /\nOverflowError: out of range integral type conversion attempted\n$/,
        );
      }
    }
  });
});
