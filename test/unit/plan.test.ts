import { describe, expect, it } from 'vitest';
import { resolveHost } from '../../src/config/host.js';
import {
  clusterSplits,
  effectiveNamespace,
  hostsToRollBack,
  mapLimit,
  planBatches,
  type RolloutSystem,
} from '../../src/deploy/plan.js';
import type { Era, Release } from '../../src/system/generations.js';
import type { HostPhase } from '../../src/deploy/record.js';
import { hostDefaults } from './host-defaults.js';

const defaults = hostDefaults({ system_profile: '/p', current_system: '/c', exo_state_dir: '/s' });
const hosts = ['h1', 'h2', 'h3', 'h4', 'h5'].map((n) =>
  resolveHost(n, { target: `root@${n}`, tags: [] }, defaults),
);
const rollout = {
  strategy: 'lockstep',
  max_parallel: 10,
  batch_size: 2,
  rollback_scope: 'all',
  reboot: 'auto',
} as const;
const names = (batches: { name: string }[][]) => batches.map((b) => b.map((h) => h.name));

describe('rollout plan', () => {
  it('lockstep: every host in one batch', () => {
    expect(names(planBatches(hosts, 'lockstep', rollout))).toEqual([
      ['h1', 'h2', 'h3', 'h4', 'h5'],
    ]);
  });
  it('rolling: batches of batch_size, in config order, the last one shorter', () => {
    expect(names(planBatches(hosts, 'rolling', rollout))).toEqual([
      ['h1', 'h2'],
      ['h3', 'h4'],
      ['h5'],
    ]);
    expect(names(planBatches(hosts, 'rolling', { ...rollout, batch_size: 10 }))).toEqual([
      ['h1', 'h2', 'h3', 'h4', 'h5'],
    ]);
  });
  it('canary: the named host (or the first) alone, then the rest together', () => {
    expect(names(planBatches(hosts, 'canary', { ...rollout, canary: 'h3' }))).toEqual([
      ['h3'],
      ['h1', 'h2', 'h4', 'h5'],
    ]);
    expect(names(planBatches(hosts, 'canary', rollout))).toEqual([
      ['h1'],
      ['h2', 'h3', 'h4', 'h5'],
    ]);
    expect(names(planBatches(hosts.slice(0, 1), 'canary', rollout))).toEqual([['h1']]);
  });
  it('nothing to plan for no hosts', () => {
    expect(planBatches([], 'rolling', rollout)).toEqual([]);
  });
});

describe('which hosts roll back', () => {
  const phases = new Map<string, HostPhase>([
    ['h1', 'permanent'],
    ['h2', 'permanent'],
    ['h3', 'activated'],
    ['h4', 'activated'],
    ['h5', 'pending'],
  ]);
  it('scope all: every host on a new system, earlier permanent batches included', () => {
    expect(hostsToRollBack(phases, 'all', ['h3', 'h4'])).toEqual(['h1', 'h2', 'h3', 'h4']);
  });
  it('scope failed: only the failing batch', () => {
    expect(hostsToRollBack(phases, 'failed', ['h3', 'h4'])).toEqual(['h3', 'h4']);
  });
  it('never a host that was not activated or stayed unchanged', () => {
    expect(
      hostsToRollBack(
        new Map<string, HostPhase>([
          ['h1', 'unchanged'],
          ['h2', 'pending'],
          ['h3', 'rolled-back'],
        ]),
        'all',
        ['h1', 'h2'],
      ),
    ).toEqual([]);
  });
});

describe('max_parallel', () => {
  it('never runs more than the limit at once and keeps the order of results', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapLimit([5, 1, 4, 2, 3, 0], 2, async (n) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running -= 1;
      if (n === 4) throw new Error('four');
      return n * 10;
    });
    expect(peak).toBe(2);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual([
      50,
      10,
      'failed',
      20,
      30,
      0,
    ]);
  });
});

describe('whether a rollout keeps one exo cluster', () => {
  const rel = (identity: string, era: Era | null, namespace: string | null = null): Release => ({
    identity,
    version: identity,
    revision: null,
    package: null,
    era,
    namespace,
    gpuDriver: null,
    rebootGuard: null,
    configRevision: null,
  });
  const at = (host: string, system: 'now' | 'new', release: Release | null): RolloutSystem => ({
    host,
    system,
    release,
  });

  it('effective namespace: pinned, else v0.0.1 in the libp2p era, unknown in the zenoh era or without an era', () => {
    expect(effectiveNamespace(rel('1.0.71', 'libp2p', 'home'))).toBe('home');
    expect(effectiveNamespace(rel('1.0.71', 'libp2p'))).toBe('v0.0.1');
    expect(effectiveNamespace(rel('1.0.70', 'libp2p'))).toBe('v0.0.1');
    expect(effectiveNamespace(rel('b5375f8ce0a1', 'zenoh', 'home'))).toBe('home');
    expect(effectiveNamespace(rel('b5375f8ce0a1', 'zenoh'))).toBeNull();
    expect(effectiveNamespace(rel('1.0.71', null, 'home'))).toBeNull();
    expect(effectiveNamespace(null)).toBeNull();
  });

  it('two libp2p releases without a pinned namespace are one mixed-version cluster', () => {
    expect(
      clusterSplits([
        at('h1', 'now', rel('1.0.70', 'libp2p')),
        at('h2', 'now', rel('1.0.70', 'libp2p')),
        at('h1', 'new', rel('1.0.71', 'libp2p')),
      ]),
    ).toEqual([]);
  });

  it('zenoh releases with the same pinned namespace are one cluster', () => {
    expect(
      clusterSplits([
        at('h1', 'now', rel('aaaaaaaaaaaa', 'zenoh', 'lab')),
        at('h1', 'new', rel('bbbbbbbbbbbb', 'zenoh', 'lab')),
      ]),
    ).toEqual([]);
  });

  it('libp2p to zenoh splits the cluster, whatever the namespace', () => {
    const splits = clusterSplits([
      at('h1', 'now', rel('1.0.71', 'libp2p', 'lab')),
      at('h2', 'now', rel('1.0.71', 'libp2p', 'lab')),
      at('h1', 'new', rel('b5375f8ce0a1', 'zenoh', 'lab')),
      at('h2', 'new', rel('b5375f8ce0a1', 'zenoh', 'lab')),
    ]);
    expect(splits).toEqual([
      'h1, h2 (now) run a libp2p-era exo but h1, h2 (new system) run a zenoh-era exo, and the two eras never see each other',
    ]);
  });

  it('a zenoh release without a pinned namespace cannot be judged', () => {
    const splits = clusterSplits([
      at('h1', 'now', rel('aaaaaaaaaaaa', 'zenoh')),
      at('h1', 'new', rel('bbbbbbbbbbbb', 'zenoh')),
    ]);
    expect(splits).toEqual([
      expect.stringMatching(
        /^h1 \(now\) and h1 \(new system\) run a zenoh-era exo with no pinned namespace: its default is exo's Python package version/,
      ),
    ]);
  });

  it('an unknown era (schema 1, or no release.json) cannot be judged', () => {
    const splits = clusterSplits([
      at('h1', 'now', rel('1.0.70', null)),
      at('h2', 'now', null),
      at('h1', 'new', rel('1.0.71', 'libp2p')),
    ]);
    expect(splits).toEqual([
      expect.stringMatching(/^exo's era \(libp2p or zenoh\) is unknown on h1, h2 \(now\):/),
    ]);
  });

  it('namespaces that differ split it, and say where each is', () => {
    const splits = clusterSplits([
      at('h1', 'now', rel('1.0.70', 'libp2p')),
      at('h2', 'now', rel('1.0.70', 'libp2p')),
      at('h1', 'new', rel('1.0.71', 'libp2p', 'lab')),
    ]);
    expect(splits).toEqual([
      'the namespaces differ: "v0.0.1" (the libp2p default) on h1, h2 (now), "lab" on h1 (new system)',
    ]);
  });
});
