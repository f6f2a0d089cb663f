// Medians and the figure records that results.json holds.
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const round = (x, digits = 3) =>
  Number.isFinite(x)
    ? Number(
        x.toPrecision(Math.max(1, digits + Math.max(0, Math.floor(Math.log10(Math.abs(x) || 1))))),
      )
    : x;
const fix = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : x);

/**
 * One figure: a median over repeated samples, with min and max.
 * target: null (reported, no target) or { text, value, op: '<=' | '<' } judged on the median.
 */
export function figure(name, samples, unit, target = null, extra = {}) {
  const xs = samples.filter((x) => Number.isFinite(x));
  const med = median(xs);
  const met = target ? (target.op === '<' ? med < target.value : med <= target.value) : null;
  return {
    name,
    median: fix(round(med)),
    min: fix(round(Math.min(...xs))),
    max: fix(round(Math.max(...xs))),
    unit,
    runs: xs.length,
    target: target ? { text: target.text, value: target.value } : null,
    // no samples: a target is not met; a figure without one has nothing to meet
    met: xs.length === 0 && target ? false : met,
    ...extra,
  };
}

export const at = (op, value, text) => ({ op, value, text });

/** Each step's wall time in a deploy's run record: from its first host's start to its last host's end. */
export function stepSpans(record) {
  const spans = {};
  for (const s of record.steps) {
    const start = Date.parse(s.startedAt);
    spans[s.step] ??= { start, end: start + s.durationMs };
    const e = spans[s.step];
    e.start = Math.min(e.start, start);
    e.end = Math.max(e.end, start + s.durationMs);
  }
  return Object.fromEntries(Object.entries(spans).map(([k, v]) => [k, v.end - v.start]));
}
