// The simulated hosts' latencies: drawn per host from a seeded log-normal distribution, so that
// every run of a configuration meets the same fleet.

/** mulberry32: a small seeded PRNG. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Log-normal with the given median; sigma 0.4 (a long right tail, as real builds have). */
function lognormal(rand, medianMs, sigma = 0.4) {
  const u = Math.max(rand(), 1e-12);
  const v = rand();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return Math.max(0.5, Math.round(medianMs * Math.exp(sigma * z) * 10) / 10);
}

/** Per-host latencies (ms). */
export const LATENCY_MEDIANS = { build: 12, copy: 6, test: 4, switch: 4, probe: 2 };

/** Each host's latencies, in host order: { build, copy, test, switch, probe }. */
export function seededLatencies(count, seed, scale = 1) {
  const rand = prng(seed);
  return Array.from({ length: count }, () =>
    Object.fromEntries(
      Object.entries(LATENCY_MEDIANS).map(([k, m]) => [k, lognormal(rand, m * scale)]),
    ),
  );
}
