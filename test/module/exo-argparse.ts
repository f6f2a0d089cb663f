// exo's command line as each era's argparse reads it, written as data from exo's source
// (src/exo/main.py of release 1.0.71 for the libp2p era, of main for the zenoh era), so that
// the module's ExecStart= can be checked against the real flag tables, not against itself.

export type Era = 'libp2p' | 'zenoh';

/** One argparse option: its option strings and whether it takes a value. */
interface Flag {
  names: string[];
  dest: string;
  takesValue: boolean;
}

const common: Flag[] = [
  { names: ['-h', '--help'], dest: 'help', takesValue: false },
  { names: ['-q', '--quiet'], dest: 'verbosity', takesValue: false },
  { names: ['-v', '--verbose'], dest: 'verbosity', takesValue: false },
  { names: ['-m', '--force-master'], dest: 'force_master', takesValue: false },
  { names: ['--no-api'], dest: 'spawn_api', takesValue: false },
  { names: ['--api-port'], dest: 'api_port', takesValue: true },
  { names: ['--no-worker'], dest: 'no_worker', takesValue: false },
  { names: ['--no-downloads'], dest: 'no_downloads', takesValue: false },
  { names: ['--offline'], dest: 'offline', takesValue: false },
  { names: ['--no-batch'], dest: 'no_batch', takesValue: false },
  { names: ['--bootstrap-peers'], dest: 'bootstrap_peers', takesValue: true },
  { names: ['--fast-synch'], dest: 'fast_synch', takesValue: false },
  { names: ['--no-fast-synch'], dest: 'fast_synch', takesValue: false },
];

const FLAGS: Record<Era, Flag[]> = {
  libp2p: [...common, { names: ['--libp2p-port'], dest: 'libp2p_port', takesValue: true }],
  zenoh: [
    ...common,
    { names: ['--legacy-daemon'], dest: 'legacy_daemon', takesValue: false },
    { names: ['--namespace'], dest: 'namespace', takesValue: true },
    { names: ['--zenoh-port'], dest: 'zenoh_port', takesValue: true },
    { names: ['--discovery-port'], dest: 'discovery_port', takesValue: true },
  ],
};

export type Parsed =
  | { ok: true; values: Record<string, string | true> }
  | { ok: false; error: string };

/** Parse argv as `EXO` would (long options, `--opt=value`, unambiguous prefixes, short flags). */
export function parseExoArgs(era: Era, argv: readonly string[]): Parsed {
  const flags = FLAGS[era];
  const values: Record<string, string | true> = {};
  const unrecognized: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('-') || arg === '-') {
      unrecognized.push(arg);
      continue;
    }
    const [name, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const exact = flags.find((f) => f.names.includes(name));
    const byPrefix = name.startsWith('--')
      ? flags.filter((f) => f.names.some((n) => n.startsWith('--') && n.startsWith(name)))
      : [];
    if (!exact && byPrefix.length > 1) return { ok: false, error: `ambiguous option: ${name}` };
    const flag = exact ?? byPrefix[0];
    if (!flag) {
      unrecognized.push(arg);
      continue;
    }
    if (!flag.takesValue) {
      if (inline !== undefined)
        return {
          ok: false,
          error: `argument ${flag.names.join('/')}: ignored explicit argument '${inline}'`,
        };
      values[flag.dest] = true;
      continue;
    }
    const value = inline ?? argv[i + 1];
    if (value === undefined || (inline === undefined && value.startsWith('-')))
      return { ok: false, error: `argument ${flag.names.join('/')}: expected one argument` };
    if (inline === undefined) i++;
    values[flag.dest] = value;
  }
  if (unrecognized.length)
    return { ok: false, error: `unrecognized arguments: ${unrecognized.join(' ')}` };
  return { ok: true, values };
}

/** The argv of an ExecStart= line the module writes: a program, then C-quoted arguments. */
export function splitExecStart(execStart: string): { program: string; argv: string[] } {
  const program = execStart.split(' ', 1)[0] as string;
  const rest = execStart.slice(program.length).trim();
  const quoted = rest.match(/"(?:[^"\\]|\\.)*"/g) ?? [];
  if (quoted.join(' ') !== rest) throw new Error(`not a list of quoted arguments: ${rest}`);
  const argv = quoted.map((q) =>
    (JSON.parse(q) as string).replace(/%%/g, '%').replace(/\$\$/g, '$'),
  );
  return { program, argv };
}
