// The only shell quoting in exo-deploy: ssh hands its command to the remote user's shell as
// one string, so each argument is quoted here; nothing else builds a shell string.

/** POSIX single-quoting. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command line shellQuote made, back into its arguments (for the simulated fleets of the
 * tests and benchmarks, which answer what ssh carries). */
export function shellUnquote(command: string): string[] {
  const args: string[] = [];
  let current: string | null = null;
  // a quoted piece, an escaped quote, an unquoted piece, or the spaces between arguments
  for (const [token, quoted] of command.matchAll(/'([^']*)'|\\'|[^\s'\\]+|\\|\s+/g)) {
    if (/^\s/.test(token)) {
      if (current !== null) args.push(current);
      current = null;
    } else current = (current ?? '') + (quoted ?? (token === "\\'" ? "'" : token));
  }
  if (current !== null) args.push(current);
  return args;
}
