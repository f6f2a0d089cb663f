// Activation as NixOS hosts need it: the status folder made outside the unit (whose PATH holds
// only systemd's programs), and a lock held by another activation waited for, not failed on.
import { describe, expect, it } from 'vitest';
import type { Host } from '../../src/config/host.js';
import type { Executor } from '../../src/run/executor.js';
import { CommandFailed } from '../../src/run/executor.js';
import type { ProcessResult } from '../../src/run/process.js';
import { activate } from '../../src/system/activate.js';

const host = { name: 'h1', local: false } as Host;
const timeouts = { activate: 60_000 } as Parameters<typeof activate>[3];

/** An executor whose activation units answer in turn from `activations` (exit code, stderr). */
function executor(activations: [number, string][]): Executor & { calls: string[][] } {
  const calls: string[][] = [];
  const run = async (argv: readonly string[]): Promise<ProcessResult> => {
    calls.push([...argv]);
    const [exitCode, stderr] =
      argv[0] === 'systemd-run' ? (activations.shift() ?? [0, '']) : [0, ''];
    return { argv: [...argv], exitCode, stdout: '', stderr, durationMs: 1, timedOut: false };
  };
  return {
    host,
    calls,
    run,
    must: async (argv) => {
      const r = await run(argv);
      if (r.exitCode !== 0) throw new CommandFailed(host.name, r);
      return r;
    },
    close: async () => {},
  };
}

describe('activate', () => {
  it('makes the status folder itself, then runs switch-to-configuration in a transient unit', async () => {
    const exec = executor([[0, '']]);
    const r = await activate(exec, '/nix/store/x-system', 'test', timeouts);
    expect(r.exitCode).toBe(0);
    expect(exec.calls[0]).toEqual(['mkdir', '-p', '--', '/run/exo-deploy']);
    expect(exec.calls[1]?.[0]).toBe('systemd-run');
    expect(exec.calls[1]?.slice(-2)).toEqual([
      '/nix/store/x-system/bin/switch-to-configuration',
      'test',
    ]);
  });

  it('waits while another activation holds the lock, then activates', async () => {
    const exec = executor([
      [11, 'Could not acquire lock\n'],
      [0, ''],
    ]);
    const r = await activate(exec, '/nix/store/x-system', 'switch', timeouts);
    expect(r.exitCode).toBe(0);
    const units = exec.calls.filter((c) => c[0] === 'systemd-run');
    expect(units).toHaveLength(2);
    // each try is a unit of its own name (a finished unit may linger under its name)
    expect(new Set(units.map((c) => c.find((a) => a.startsWith('--unit='))))).toHaveProperty(
      'size',
      2,
    );
  });

  it('fails at once on any other error', async () => {
    const exec = executor([
      [2, 'Failed to run activate script\n'],
      [0, ''],
    ]);
    await expect(activate(exec, '/nix/store/x-system', 'switch', timeouts)).rejects.toThrow(
      /exited 2/,
    );
    expect(exec.calls.filter((c) => c[0] === 'systemd-run')).toHaveLength(1);
  });

  it('gives up on a held lock at the activation timeout', async () => {
    const exec = executor([
      [11, 'Could not acquire lock\n'],
      [11, 'Could not acquire lock\n'],
    ]);
    await expect(
      activate(exec, '/nix/store/x-system', 'switch', { activate: 1000 } as typeof timeouts),
    ).rejects.toThrow(/Could not acquire lock/);
  });
});
