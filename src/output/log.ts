// Progress and logs go to stderr (stdout is for the result: text, or one JSON document).
// Three forms: one live line per host on a terminal; plain timestamped lines elsewhere;
// one JSON event per line with --json.

/** A step starting or ending on a host (null: the whole run). */
interface StepProgress {
  event: 'step-start' | 'step-end';
  step: string;
  host: string | null;
  ok?: boolean;
  durationMs?: number;
  error?: string;
}

export interface Log {
  info(message: string): void;
  warn(message: string): void;
  verbose(message: string): void;
  step(event: StepProgress): void;
}

export function stderrLog(options: { verbose: boolean; json?: boolean }): Log {
  if (options.json) return jsonLog(options.verbose);
  if (process.stderr.isTTY && !options.verbose) return liveLog();
  const stamp = () => `${new Date().toISOString().slice(11, 23)} `;
  const write = (line: string) =>
    process.stderr.write(`${process.stderr.isTTY ? '' : stamp()}${line}\n`);
  return {
    info: (m) => write(m),
    warn: (m) => write(`warning: ${m}`),
    verbose: (m) => options.verbose && write(m),
    step: (e) => write(stepLine(e)),
  };
}

function stepLine(e: StepProgress): string {
  const label = `${e.host ?? 'all'}: ${e.step}`;
  if (e.event === 'step-start') return `${label} …`;
  const took = `${((e.durationMs ?? 0) / 1000).toFixed(1)}s`;
  return e.ok ? `${label} done (${took})` : `${label} FAILED (${took}): ${e.error ?? ''}`;
}

function jsonLog(verbose: boolean): Log {
  const emit = (record: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), ...record })}\n`);
  return {
    info: (message) => emit({ event: 'info', message }),
    warn: (message) => emit({ event: 'warning', message }),
    verbose: (message) => verbose && emit({ event: 'verbose', message }),
    step: (e) => emit({ ...e }),
  };
}

/** One line per host, redrawn in place: the step it is in and for how long. Messages are
 * printed above the block. */
function liveLog(): Log {
  const rows = new Map<string, { text: string; since: number; running: boolean }>();
  let drawn = 0;
  let _timer: NodeJS.Timeout | undefined;
  const draw = () => {
    const out: string[] = [];
    if (drawn) out.push(`\x1b[${drawn}A`);
    for (const [host, r] of rows) {
      const elapsed = r.running ? ` ${((Date.now() - r.since) / 1000).toFixed(0)}s` : '';
      out.push(`\x1b[2K${host.padEnd(12)} ${r.text}${elapsed}\n`);
    }
    drawn = rows.size;
    process.stderr.write(out.join(''));
  };
  const above = (line: string) => {
    if (drawn) process.stderr.write(`\x1b[${drawn}A\x1b[J`);
    drawn = 0;
    process.stderr.write(`${line}\n`);
    draw();
  };
  return {
    info: above,
    warn: (m) => above(`warning: ${m}`),
    verbose: () => {},
    step: (e) => {
      const host = e.host ?? 'all';
      rows.set(host, {
        text: e.event === 'step-start' ? `${e.step} …` : stepLine(e).slice(host.length + 2),
        since: Date.now(),
        running: e.event === 'step-start',
      });
      _timer ??= setInterval(draw, 500).unref();
      draw();
    },
  };
}

export const silentLog: Log = { info() {}, warn() {}, verbose() {}, step() {} };
