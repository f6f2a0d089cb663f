// exo's command line: argparse-like errors (exit 2), help, and the release settings file.
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts, get, killAll, ready, runToExit, start } from './harness.js';

afterAll(() => killAll());

describe('exo stand-in command line', () => {
  it('an unknown flag is an argparse error: usage, "EXO: error:", exit 2', async () => {
    const r = await runToExit(['--bogus', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^usage: EXO \[-h\] \[-q\] \[-v\]/);
    expect(r.stderr).toContain('EXO: error: unrecognized arguments: --bogus x');
  });

  it('a bad int and a missing value are argparse errors', async () => {
    const a = await runToExit(['--api-port', 'abc']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("EXO: error: argument --api-port: invalid int value: 'abc'");
    const b = await runToExit(['--namespace']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('EXO: error: argument --namespace: expected one argument');
  });

  it('an ambiguous prefix is an argparse error', async () => {
    const r = await runToExit(['--no']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EXO: error: ambiguous option: --no could match --no-api, --no-worker, --no-downloads, --no-batch, --no-fast-synch');
  });

  it('--fast-synch and --no-fast-synch are mutually exclusive', async () => {
    const r = await runToExit(['--fast-synch', '--no-fast-synch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EXO: error: argument --no-fast-synch: not allowed with argument --fast-synch');
  });

  it('--legacy-daemon is refused (documented)', async () => {
    const r = await runToExit(['--legacy-daemon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('EXO: error: argument --legacy-daemon: not supported by the exo stand-in');
  });

  it('-h prints help on stdout and exits 0', async () => {
    const r = await runToExit(['-h']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: EXO /);
    expect(r.stdout).toContain('--namespace NAMESPACE');
  });

  it('a missing or broken release file exits 1 with a clear message', async () => {
    const r = await runToExit([], { version: '1.0.3' }, { EXO_STANDIN_RELEASE: '/nonexistent/release.json' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('exo-standin: cannot read release settings /nonexistent/release.json');
    const f = await runToExit([], { version: '1.0.3', fault: 'explode' });
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('unknown fault "explode"');
  });

  it('accepts all of exo\'s flags the module passes, in both spellings', async () => {
    const [port, zp, dp] = await freePorts(3);
    const s = start({
      name: 'flags',
      port: port!,
      release: { version: '1.0.3' },
      args: ['-m', '-vv', '--no-downloads', '--offline', '--no-batch', '--namespace=pinned', `--zenoh-port=${zp}`, '--discovery-port', String(dp)],
    });
    await ready(s);
    expect(s.log()).toContain(`namespace pinned, api port ${port}, zenoh port ${zp}, discovery port ${dp}`);
    expect(s.log()).toContain('Running in OFFLINE mode');
    expect(s.log()).toContain('Continuous batching disabled (--no-batch)');
    expect((await get(s.port, '/node_id')).status).toBe(200);
  });
});
