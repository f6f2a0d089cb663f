// Progress and logs go to stderr (stdout is for the result: text, or one JSON document).
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  verbose(message: string): void;
  readonly isVerbose: boolean;
}

export function stderrLog(options: { verbose: boolean; quiet?: boolean }): Log {
  const stamp = () => (process.stderr.isTTY ? '' : `${new Date().toISOString().slice(11, 23)} `);
  const write = (line: string) => process.stderr.write(`${stamp()}${line}\n`);
  return {
    isVerbose: options.verbose,
    info: (m) => options.quiet || write(m),
    warn: (m) => write(`warning: ${m}`),
    verbose: (m) => options.verbose && write(m),
  };
}

export const silentLog: Log = { isVerbose: false, info() {}, warn() {}, verbose() {} };
