// The machine is shared with CI: measure only while no test run (vitest) and no other
// sandbox (systemd-nspawn) is running, and stay out of their way. Checked before the run
// and again before each measurement, so that a CI run that starts meanwhile pauses the bench.
import { spawnSync } from 'node:child_process';

const pgrep = (flag, name) =>
  spawnSync('pgrep', [flag, name], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter(Boolean)
    .map(Number);

/** What else runs: vitest processes, and systemd-nspawn processes that are not ours. */
function othersRunning(ours = new Set()) {
  const found = [];
  const vitest = pgrep('-f', 'vitest').filter((p) => p !== process.pid);
  const nspawn = pgrep('-x', 'systemd-nspawn').filter((p) => !ours.has(p));
  if (vitest.length) found.push(`vitest (PID ${vitest.join(', ')})`);
  if (nspawn.length) found.push(`systemd-nspawn (PID ${nspawn.join(', ')})`);
  return found;
}

/** Waits (polling every 30 s) until nothing else runs; throws after maxMs. Returns the ms waited. */
export async function waitForIdle({
  log,
  ours = () => new Set(),
  maxMs = 20 * 60_000,
  pollMs = 30_000,
}) {
  const t0 = Date.now();
  for (;;) {
    const found = othersRunning(ours());
    if (!found.length) return Date.now() - t0;
    if (Date.now() - t0 >= maxMs)
      throw new Error(
        `this machine is still busy after ${Math.round(maxMs / 60_000)} min: ${found.join('; ')}`,
      );
    log(`this machine is busy (${found.join('; ')}): waiting, measurements must not share it`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
