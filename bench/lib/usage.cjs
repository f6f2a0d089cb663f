// Preloaded into a measured node process (node --require bench/lib/usage.cjs …): at exit it
// writes that process's own CPU time and peak memory, the CPU time of the child processes it
// waited for, and the wall time its event loop was busy (not waiting for a child, the network
// or a timer), to $BENCH_USAGE_FILE. CommonJS and Node 18 safe: it also runs on
// the sandbox hosts.
'use strict';
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const out = process.env.BENCH_USAGE_FILE;
if (out) {
  const t0 = Date.now();
  process.on('exit', (code) => {
    try {
      const ru = process.resourceUsage();
      // /proc/self/stat after the command name: state ppid … utime(11) stime(12) cutime(13) cstime(14), in clock ticks
      const stat = fs.readFileSync('/proc/self/stat', 'utf8');
      const f = stat
        .slice(stat.lastIndexOf(')') + 2)
        .split(' ')
        .map(Number);
      const tick = 10; // ms per clock tick (CLK_TCK = 100 on Linux)
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const kb = (key) =>
        Number((new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status) || [])[1] || 0);
      fs.writeFileSync(
        out,
        `${JSON.stringify({
          exitCode: code,
          wallMs: Date.now() - t0,
          userMs: ru.userCPUTime / 1000,
          systemMs: ru.systemCPUTime / 1000,
          cpuMs: (ru.userCPUTime + ru.systemCPUTime) / 1000,
          childrenCpuMs: (f[13] + f[14]) * tick,
          maxRssKB: ru.maxRSS,
          vmHwmKB: kb('VmHWM'),
          // Busy wall time: start-up until the event loop ran, then the loop's active time
          // (callbacks, JSON, spawning; not its waits in epoll).
          busyMs:
            Math.max(0, performance.nodeTiming.loopStart) +
            performance.eventLoopUtilization().active,
        })}\n`,
      );
    } catch (e) {
      process.stderr.write(`bench usage: ${e.message}\n`);
    }
  });
}
