// Two sandboxes at once (e2e test files run in parallel), and an interrupted up that
// leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { noSandbox as skip } from '../sandbox-requirements.js';

type Host = { name: string; address: string; netns: string; veth: string; pid: number };
type State = { subnet: number; bridge: string; hosts: Host[] };

const nspawnRunning = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('systemd-nspawn');
  } catch {
    return false;
  }
};
const linkExists = (name: string) => {
  try {
    execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(skip)('sandbox: two at once, interrupted up', () => {
  let fleet: typeof import('../../sandbox/fleet.mjs');
  const dirs: string[] = [];
  const log = () => {};
  const newDir = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'exo-sandbox-par-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    fleet = await import('../../sandbox/fleet.mjs');
  });
  afterAll(async () => {
    for (const dir of dirs) {
      await fleet?.down({ dir, log });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs two sandboxes side by side on separate subnets', async () => {
    const [a, b] = [newDir(), newDir()];
    const [sa, sb] = (await Promise.all([
      fleet.up({ dir: a, hosts: 1, deploy: false, log }),
      fleet.up({ dir: b, hosts: 1, deploy: false, log }),
    ])) as [State, State];
    expect(sa.subnet).not.toBe(sb.subnet);
    for (const [dir, s] of [
      [a, sa],
      [b, sb],
    ] as const) {
      const r = await fleet.sshHost(dir, s.hosts[0]!.address, 'hostname');
      expect(r.stdout.trim()).toBe('h1');
    }
    // a sandbox's key does not open the other's hosts
    expect((await fleet.sshHost(a, sb.hosts[0]!.address, 'true')).exitCode).not.toBe(0);
    await Promise.all([fleet.down({ dir: a, log }), fleet.down({ dir: b, log })]);
    for (const s of [sa, sb]) {
      expect(linkExists(s.bridge)).toBe(false);
      expect(nspawnRunning(s.hosts[0]!.pid)).toBe(false);
    }
  });

  it('an up aborted while booting removes what it made', async () => {
    const dir = newDir();
    const abort = new AbortController();
    const started = fleet.up({ dir, hosts: 2, deploy: false, signal: abort.signal, log });
    // abort as soon as the first container runs
    const deadline = Date.now() + 30_000;
    let state: State | null = null;
    while (Date.now() < deadline) {
      state = (await fleet.readState(dir)) as State | null;
      if (state?.hosts.some((h) => h.pid)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    abort.abort();
    await expect(started).rejects.toThrow();
    expect(state?.hosts.length).toBeGreaterThan(0);
    for (const h of state!.hosts) {
      if (h.pid) expect(nspawnRunning(h.pid)).toBe(false);
      expect(existsSync(`/run/netns/${h.netns}`)).toBe(false);
    }
    expect(linkExists(state!.bridge)).toBe(false);
    expect(existsSync(path.join(dir, 'sandbox.json'))).toBe(false);
    expect(fleet.orphanedContainers()).toEqual([]); // no container outlived its systemd-nspawn
  });
});
