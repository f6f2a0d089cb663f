// The check as a Prometheus textfile, for node-exporter's textfile collector.
import type { HostCheck } from './check.js';

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function prometheusText(checks: readonly HostCheck[], nowMs: number): string {
  const metrics: [name: string, help: string, samples: [labels: string, value: number][]][] = [
    [
      'exo_deploy_healthy',
      '1 when the last check found exo healthy',
      checks.map((c) => [`host="${label(c.host)}"`, c.healthy ? 1 : 0]),
    ],
    [
      'exo_deploy_check_timestamp_seconds',
      'when the last check ran',
      checks.map((c) => [`host="${label(c.host)}"`, nowMs / 1000]),
    ],
    [
      'exo_deploy_probe_up',
      '1 when the API path answered as exo does',
      checks.flatMap((c) =>
        c.probes.map(
          (p) =>
            [`host="${label(c.host)}",path="${label(p.path)}"`, p.ok ? 1 : 0] as [string, number],
        ),
      ),
    ],
    [
      'exo_deploy_probe_latency_seconds',
      'how long the API path took to answer',
      checks.flatMap((c) =>
        c.probes.map(
          (p) =>
            [`host="${label(c.host)}",path="${label(p.path)}"`, p.latencyMs / 1000] as [
              string,
              number,
            ],
        ),
      ),
    ],
    [
      'exo_deploy_journal_failures',
      'exo failure lines in the journal over the check window',
      checks.map((c) => [`host="${label(c.host)}"`, c.journal.matches.length]),
    ],
    [
      'exo_deploy_cluster_nodes_seen',
      'nodes that /state lists',
      checks.flatMap((c) =>
        c.cluster.seen === null
          ? []
          : [[`host="${label(c.host)}"`, c.cluster.seen] as [string, number]],
      ),
    ],
    [
      'exo_deploy_unit_restarts',
      'systemd restarts of the exo unit',
      checks.flatMap((c) =>
        c.unit ? [[`host="${label(c.host)}"`, c.unit.restarts] as [string, number]] : [],
      ),
    ],
  ];
  return metrics
    .filter(([, , samples]) => samples.length > 0)
    .map(([name, help, samples]) =>
      [
        `# HELP ${name} ${help}`,
        `# TYPE ${name} gauge`,
        ...samples.map(([l, v]) => `${name}{${l}} ${v}`),
      ].join('\n'),
    )
    .join('\n')
    .concat('\n');
}
