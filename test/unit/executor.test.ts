import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { resolveHost } from '../../src/config/host.js';
import { createExecutor, shellQuote } from '../../src/run/executor.js';
import { shellUnquote } from '../../src/run/shell-quote.js';
import { silentLog } from '../../src/output/log.js';
import { fakeRunner } from '../sim/run-layer.js';
import { hostDefaults } from './host-defaults.js';

const defaults = hostDefaults({
  ssh_options: ['-i', '/k ey'],
  system_profile: '/p',
  current_system: '/c',
});
const ctx = (runner: ReturnType<typeof fakeRunner>, dryRun = false) => ({
  runner: runner.runner,
  cleanupRunner: runner.runner,
  log: silentLog,
  dryRun,
  defaultTimeoutMs: 1000,
  sshConnectTimeoutMs: 5000,
  sshProgram: 'ssh',
});

describe('executor', () => {
  it('runs local commands as the argv they are', async () => {
    const fake = fakeRunner(() => ({ stdout: 'ok' }));
    const exec = createExecutor(
      resolveHost('me', { target: 'local', tags: [] }, defaults),
      ctx(fake),
    );
    await exec.run(['systemctl', 'show', 'exo.service']);
    expect(fake.calls[0]?.argv).toEqual(['systemctl', 'show', 'exo.service']);
  });

  it('over ssh, quotes every argument once for the remote shell and ends options with --', async () => {
    const fake = fakeRunner(() => ({}));
    const exec = createExecutor(
      resolveHost('h1', { target: 'root@10.0.0.2', tags: [], sudo: true }, defaults),
      ctx(fake),
    );
    await exec.run(['sh', '-c', 'cat > "$1"', 'sh', "/tmp/it's; rm -rf /"], { root: true });
    await exec.close(); // removes the ssh control folder it made
    const argv = fake.calls[0]?.argv ?? [];
    expect(argv[0]).toBe('ssh');
    expect(argv.slice(-3)).toEqual([
      '--',
      'root@10.0.0.2',
      `sudo -n -- sh -c 'cat > "$1"' sh '/tmp/it'\\''s; rm -rf /'`,
    ]);
    expect(argv).toContain('BatchMode=yes');
    expect(argv.slice(argv.indexOf('-i'), argv.indexOf('-i') + 2)).toEqual(['-i', '/k ey']);
  });

  it('round-trips hostile strings through a real POSIX shell', () => {
    for (const s of [
      "a'b",
      "it's; rm -rf /",
      '$(touch /tmp/x)',
      '`id`',
      'a b',
      '',
      '-oProxyCommand=x',
      '\n',
      '*',
      "''",
    ]) {
      // what the remote shell would do with the quoted word: print it back unchanged
      const echoed = execFileSync('sh', ['-c', `printf '%s' ${shellQuote(s)}`], {
        encoding: 'utf8',
      });
      expect(echoed).toBe(s);
    }
    expect(shellQuote('plain/path-1.2')).toBe('plain/path-1.2');
  });

  it('unquotes what it quoted, as the shell does (the simulated fleets read ssh commands so)', () => {
    const words = ["a'b", "it's; rm -rf /", '$(touch /tmp/x)', 'a  b', '', '\\', "''", 'plain'];
    const line = words.map(shellQuote).join(' ');
    expect(shellUnquote(line)).toEqual(words);
    const viaShell = execFileSync('sh', ['-c', `for w in ${line}; do printf '%s\\0' "$w"; done`], {
      encoding: 'utf8',
    });
    expect(viaShell.split('\0').slice(0, -1)).toEqual(words);
  });

  it('under --dry-run prints a changing command instead of running it, and still runs reads', async () => {
    const fake = fakeRunner(() => ({ stdout: 'read' }));
    const exec = createExecutor(
      resolveHost('me', { target: 'local', tags: [] }, defaults),
      ctx(fake, true),
    );
    const write = await exec.run(['nix-env', '--set', 'x'], { mutates: true });
    const read = await exec.run(['readlink', '-m', '/c']);
    expect(fake.lines()).toEqual(['readlink -m /c']);
    expect(write.exitCode).toBe(0);
    expect(read.stdout).toBe('read');
  });

  it("turns ssh's exit 255 into an error that names the host and what to try", async () => {
    const fake = fakeRunner(() => ({
      exitCode: 255,
      stderr: 'ssh: connect to host 10.0.0.2 port 22: Connection refused',
    }));
    const exec = createExecutor(
      resolveHost('h1', { target: 'root@10.0.0.2', tags: [] }, defaults),
      ctx(fake),
    );
    await expect(exec.run(['true'])).rejects.toThrow(
      /h1: cannot reach root@10\.0\.0\.2 over ssh: ssh: connect to host/,
    );
    await exec.close();
  });
});
