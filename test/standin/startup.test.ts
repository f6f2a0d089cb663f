// What each era logs and refuses at startup: its first lines, the namespace variables, the
// bootstrap peers, the ports the networking layer takes (src/exo/main.py of each era).
import { afterEach, describe, expect, it } from 'vitest';
import { RELEASES, freePorts, killAll, ready, runToExit, start } from './harness.js';

afterEach(() => killAll());

const INFO = (msg: string) =>
  new RegExp(
    `^\\[ \\d\\d:\\d\\d:\\d\\d\\.\\d{4}(AM|PM) \\| INFO    \\] ${msg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
    'm',
  );

describe('libp2p era (v1.0.71) startup', () => {
  it("logs main()'s banner lines, EXO_LIBP2P_NAMESPACE and a libp2p peer id; the network key is v0.0.1", async () => {
    const [port] = await freePorts(1);
    const s = start({ name: 'l1', port: port!, release: RELEASES.libp2p });
    const id = await ready(s);
    expect(id).toMatch(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/);
    const log = s.log();
    expect(log).toMatch(
      new RegExp(
        `${INFO('='.repeat(40)).source.slice(0, -1)}\\n.*\\| INFO    \\] Starting EXO \\| pid=${s.proc.pid}\\n.*\\| INFO    \\] ={40}\\n.*\\| INFO    \\] EXO_LIBP2P_NAMESPACE: None$`,
        'm',
      ),
    );
    expect(log).toMatch(INFO(`Starting node ${id}`));
    expect(log).toContain('namespace v0.0.1,');
    expect(log).toContain('🌐 Dashboard & API Ready');
    expect(log).not.toContain('EXO_ZENOH_NAMESPACE');
  });

  it('EXO_LIBP2P_NAMESPACE is logged and is the namespace; bootstrap peers are accepted and logged', async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'l2',
      port: port!,
      release: RELEASES.libp2p,
      env: { EXO_LIBP2P_NAMESPACE: 'lab' },
      args: ['--bootstrap-peers', '/ip4/10.0.0.2/tcp/4001,,/dns/x'],
    });
    await ready(s);
    expect(s.log()).toMatch(INFO('EXO_LIBP2P_NAMESPACE: lab'));
    expect(s.log()).toMatch(INFO("Bootstrap peers: ['/ip4/10.0.0.2/tcp/4001', '/dns/x']"));
    expect(s.log()).toContain('namespace lab,');
  });

  it('a libp2p port out of range fails in Node.create: OverflowError, exit 1', async () => {
    const r = await runToExit(['--libp2p-port', '70000'], RELEASES.libp2p);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Starting EXO \| pid=\d+/);
    expect(r.stderr).toMatch(/\nOverflowError: out of range integral type conversion attempted\n$/);
  });
});

describe('zenoh era (main) startup', () => {
  it('logs "pid = N" and EXO_ZENOH_NAMESPACE; the node id is hex; the namespace is the package version', async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'z1',
      port: port!,
      release: { ...RELEASES.zenoh, package_version: '0.3.71' },
      env: { EXO_ZENOH_NAMESPACE: 'ignored' },
    });
    const id = await ready(s);
    expect(id).toMatch(/^[1-9a-f][0-9a-f]{0,31}$/);
    expect(s.log()).toMatch(
      new RegExp(
        `^\\[ [^\\]]+\\| INFO    \\] pid = ${s.proc.pid}\\n\\[ [^\\]]+\\| INFO    \\] EXO_ZENOH_NAMESPACE: ignored$`,
        'm',
      ),
    );
    // EXO_ZENOH_NAMESPACE is only logged: --namespace defaults to the Python package version
    expect(s.log()).toContain('namespace 0.3.71,');
    expect(s.log()).toMatch(INFO(`Starting node ${id}`));
    expect(s.log()).toContain('║  Dashboard & API Ready   ');
  });

  it('a set EXO_LIBP2P_NAMESPACE: exit 1 with the ValueError, after the pid line', async () => {
    const r = await runToExit([], RELEASES.zenoh, { EXO_LIBP2P_NAMESPACE: 'lab' });
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/\| INFO {4}\] pid = \d+$/);
    expect(lines[1]).toBe('Traceback (most recent call last):');
    expect(lines.at(-1)).toBe(
      'ValueError: EXO_LIBP2P_NAMESPACE has been removed - use EXO_ZENOH_NAMESPACE instead',
    );
    expect(r.stderr).not.toContain('EXO_ZENOH_NAMESPACE:');
  });

  it('an empty EXO_LIBP2P_NAMESPACE is not "set" (os.getenv is falsy): exo starts', async () => {
    const [port] = await freePorts(1);
    const s = start({
      name: 'z2',
      port: port!,
      release: RELEASES.zenoh,
      env: { EXO_LIBP2P_NAMESPACE: '' },
    });
    await ready(s);
  });

  it('bootstrap peers raise, from the flag or from EXO_BOOTSTRAP_PEERS (whose default is not filtered)', async () => {
    for (const [args, env] of [
      [['--bootstrap-peers', '/ip4/10.0.0.2/tcp/1'], {}],
      [[], { EXO_BOOTSTRAP_PEERS: ',' }],
    ] as const) {
      const r = await runToExit([...args], RELEASES.zenoh, { ...env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/EXO_ZENOH_NAMESPACE: None\nTraceback \(most recent call last\):\n/);
      expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(
        'ValueError: Bootstrap peers has been temporarily removed',
      );
    }
    // the flag's value drops empty items: an empty list is no bootstrap peer at all
    const [port] = await freePorts(1);
    const s = start({
      name: 'z3',
      port: port!,
      release: RELEASES.zenoh,
      args: ['--bootstrap-peers', ','],
    });
    await ready(s);
  });

  it('zenoh port 0 panics in the networking layer; an out-of-range port overflows', async () => {
    const zero = await runToExit(['--zenoh-port', '0'], RELEASES.zenoh);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain(
      'panicked at rust/networking/src/lib.rs:25:5:\nmust used defined listen port\n',
    );
    expect(zero.stderr).toMatch(/\npyo3_runtime\.PanicException: must used defined listen port\n$/);
    const big = await runToExit(['--discovery-port', '65536'], RELEASES.zenoh);
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(
      /\nOverflowError: out of range integral type conversion attempted\n$/,
    );
  });
});
