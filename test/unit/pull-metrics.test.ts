// Pull mode's textfile: what node-exporter reads of the state.
import { describe, expect, it } from 'vitest';
import { pullMetrics } from '../../src/pull/metrics.js';
import { emptyState, mark } from '../../src/pull/state.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe("pull mode's textfile", () => {
  it('gives the deployed commit, the last attempt, the rollbacks and the bad commits', () => {
    const state = mark(
      {
        ...emptyState('git://10.0.0.1/fleet', 'main'),
        deployed: {
          revision: A,
          system: '/nix/store/x',
          at: '2026-12-01T06:00:00.000Z',
          run: null,
        },
        lastSuccessAt: '2026-12-01T06:00:00.000Z',
        rollbacks: 2,
      },
      'bad',
      B,
      '2026-12-01T07:00:00.000Z',
      'the health gate failed',
    );
    const text = pullMetrics(
      'h1',
      state,
      { outcome: 'rolled-back', exitCode: 1, tip: B },
      Date.parse('2026-12-01T07:00:05.000Z'),
    );
    const lines = text.split('\n');
    expect(lines).toContain(`exo_deploy_pull_deployed_info{host="h1",revision="${A}"} 1`);
    expect(lines).toContain(
      `exo_deploy_pull_deployed_timestamp_seconds{host="h1"} ${Date.parse('2026-12-01T06:00:00.000Z') / 1000}`,
    );
    expect(lines).toContain(
      `exo_deploy_pull_last_attempt_info{host="h1",outcome="rolled-back",revision="${B}"} 1`,
    );
    expect(lines).toContain('exo_deploy_pull_last_attempt_exit_code{host="h1"} 1');
    expect(lines).toContain('# TYPE exo_deploy_pull_rollbacks_total counter');
    expect(lines).toContain('exo_deploy_pull_rollbacks_total{host="h1"} 2');
    expect(lines).toContain('exo_deploy_pull_bad_revisions{host="h1"} 1');
    // every sample's metric has its HELP and TYPE first
    const declared = new Set(
      lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]),
    );
    for (const l of lines.filter((x) => x && !x.startsWith('#')))
      expect(declared.has(l.slice(0, l.indexOf('{')))).toBe(true);
  });

  it('without a state (it could not be read): only the last attempt, nothing made up', () => {
    const text = pullMetrics(
      'h1',
      null,
      { outcome: 'state-unreadable', exitCode: 1, tip: null },
      0,
    );
    expect(text).not.toMatch(/deployed|rollbacks|bad_revisions|last_success/);
    expect(text).toMatch(
      /exo_deploy_pull_last_attempt_info\{host="h1",outcome="state-unreadable",revision=""\} 1/,
    );
  });
});
