// The check as a Prometheus textfile, for node-exporter's textfile collector.
import { textfile, type Metric, type Sample } from '../output/textfile.js';
import type { HostCheck } from './check.js';

export function prometheusText(checks: readonly HostCheck[], nowMs: number): string {
  const gauge = (name: string, help: string, samples: Metric['samples']): Metric => ({
    name,
    help,
    type: 'gauge',
    samples,
  });
  return textfile([
    gauge(
      'exo_deploy_healthy',
      '1 when the last check found exo healthy',
      checks.map((c) => [{ host: c.host }, c.healthy ? 1 : 0]),
    ),
    gauge(
      'exo_deploy_check_timestamp_seconds',
      'when the last check ran',
      checks.map((c) => [{ host: c.host }, nowMs / 1000]),
    ),
    gauge(
      'exo_deploy_probe_up',
      '1 when the API path answered as exo does',
      checks.flatMap((c) =>
        c.probes.map((p): Sample => [{ host: c.host, path: p.path }, p.ok ? 1 : 0]),
      ),
    ),
    gauge(
      'exo_deploy_probe_latency_seconds',
      'how long the API path took to answer',
      checks.flatMap((c) =>
        c.probes.map((p): Sample => [{ host: c.host, path: p.path }, p.latencyMs / 1000]),
      ),
    ),
    gauge(
      'exo_deploy_journal_failures',
      'exo failure lines in the journal over the check window',
      checks.map((c) => [{ host: c.host }, c.journal.matches.length]),
    ),
    gauge(
      'exo_deploy_cluster_nodes_seen',
      'nodes that /state lists',
      checks.flatMap((c): Sample[] =>
        c.cluster.seen === null ? [] : [[{ host: c.host }, c.cluster.seen]],
      ),
    ),
    gauge(
      'exo_deploy_unit_restarts',
      'systemd restarts of the exo unit',
      checks.flatMap((c): Sample[] => (c.unit ? [[{ host: c.host }, c.unit.restarts]] : [])),
    ),
  ]);
}
