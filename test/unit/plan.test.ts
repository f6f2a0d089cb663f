import { describe, expect, it } from 'vitest';
import { resolveHost } from '../../src/config/host.js';
import { hostsToRollBack, mapLimit, planBatches } from '../../src/deploy/plan.js';
import type { HostPhase } from '../../src/deploy/record.js';

const defaults = { ssh_options: [], sudo: false, system_profile: '/p', current_system: '/c', unit: 'exo.service', exo_state_dir: '/s', api_port: 52415 };
const hosts = ['h1', 'h2', 'h3', 'h4', 'h5'].map((n) => resolveHost(n, { target: `root@${n}`, tags: [] }, defaults));
const rollout = { strategy: 'lockstep', max_parallel: 10, batch_size: 2, rollback_scope: 'all' } as const;
const names = (batches: { name: string }[][]) => batches.map((b) => b.map((h) => h.name));

describe('rollout plan', () => {
  it('lockstep: every host in one batch', () => {
    expect(names(planBatches(hosts, 'lockstep', rollout))).toEqual([['h1', 'h2', 'h3', 'h4', 'h5']]);
  });
  it('rolling: batches of batch_size, in config order, the last one shorter', () => {
    expect(names(planBatches(hosts, 'rolling', rollout))).toEqual([['h1', 'h2'], ['h3', 'h4'], ['h5']]);
    expect(names(planBatches(hosts, 'rolling', { ...rollout, batch_size: 10 }))).toEqual([['h1', 'h2', 'h3', 'h4', 'h5']]);
  });
  it('canary: the named host (or the first) alone, then the rest together', () => {
    expect(names(planBatches(hosts, 'canary', { ...rollout, canary: 'h3' }))).toEqual([['h3'], ['h1', 'h2', 'h4', 'h5']]);
    expect(names(planBatches(hosts, 'canary', rollout))).toEqual([['h1'], ['h2', 'h3', 'h4', 'h5']]);
    expect(names(planBatches(hosts.slice(0, 1), 'canary', rollout))).toEqual([['h1']]);
  });
  it('nothing to plan for no hosts', () => {
    expect(planBatches([], 'rolling', rollout)).toEqual([]);
  });
});

describe('which hosts roll back', () => {
  const phases = new Map<string, HostPhase>([['h1', 'permanent'], ['h2', 'permanent'], ['h3', 'activated'], ['h4', 'activated'], ['h5', 'pending']]);
  it('scope all: every host on a new system, earlier permanent batches included', () => {
    expect(hostsToRollBack(phases, 'all', ['h3', 'h4'])).toEqual(['h1', 'h2', 'h3', 'h4']);
  });
  it('scope failed: only the failing batch', () => {
    expect(hostsToRollBack(phases, 'failed', ['h3', 'h4'])).toEqual(['h3', 'h4']);
  });
  it('never a host that was not activated or stayed unchanged', () => {
    expect(hostsToRollBack(new Map<string, HostPhase>([['h1', 'unchanged'], ['h2', 'pending'], ['h3', 'rolled-back']]), 'all', ['h1', 'h2'])).toEqual([]);
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
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual([50, 10, 'failed', 20, 30, 0]);
  });
});
