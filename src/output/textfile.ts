// Prometheus's text format, for node-exporter's textfile collector: each metric with its help
// and type, then its samples. A metric without samples is left out.

export type Sample = [labels: Record<string, string>, value: number];

export interface Metric {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Sample[];
}

const escapeLabel = (v: string) =>
  v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const labelsOf = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');

export function textfile(metrics: readonly Metric[]): string {
  return metrics
    .filter((m) => m.samples.length > 0)
    .map((m) =>
      [
        `# HELP ${m.name} ${m.help}`,
        `# TYPE ${m.name} ${m.type}`,
        ...m.samples.map(([labels, v]) => `${m.name}{${labelsOf(labels)}} ${v}`),
      ].join('\n'),
    )
    .join('\n')
    .concat('\n');
}
