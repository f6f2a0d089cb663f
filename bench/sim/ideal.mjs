// The makespan a lockstep deploy would have with no toolkit overhead: what the simulated
// deploy's makespan is held against.

/** Greedy list scheduling of durations on `limit` workers, in order: what mapLimit does with no overhead. */
function listSchedule(durations, limit) {
  const free = new Array(Math.min(limit, durations.length)).fill(0);
  for (const d of durations) {
    let k = 0;
    for (let j = 1; j < free.length; j++) if (free[j] < free[k]) k = j;
    free[k] += d;
  }
  return Math.max(0, ...free);
}

/** The phases are barriers; build, copy, test and switch run at most max_parallel at once; the
 * checks (preflight, the gate's two samples with soak 0, the final check) run on every host at
 * once and take one probe round each. `latencies`: each host's (./latencies.mjs). */
export function idealLockstep(latencies, limit) {
  const probes = Math.max(...latencies.map((x) => x.probe));
  const scheduled = (k) =>
    listSchedule(
      latencies.map((x) => x[k]),
      limit,
    );
  const phases = {
    preflight: probes,
    build: scheduled('build'),
    copy: scheduled('copy'),
    test: scheduled('test'),
    gate: 2 * probes,
    switch: scheduled('switch'),
    'final check': probes,
  };
  return { totalMs: Object.values(phases).reduce((a, b) => a + b, 0), phases };
}
