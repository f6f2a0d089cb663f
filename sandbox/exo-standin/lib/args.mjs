// exo's command line, one flag table per era, parsed the way Python 3.13's argparse parses it
// (prog="EXO"): unique prefixes of long options, -vv clusters, --opt=value, argparse's error
// messages after the usage on stderr and exit 2. The tables are src/exo/main.py's Args.parse at
// v1.0.71 (libp2p era) and on main (zenoh era).

import { pyRepr, pyTraceback, entryFrames, writeErr, writeOut } from './log.mjs';

const PROG = 'EXO';

const common = [
  { flags: ['-h', '--help'], kind: 'help', help: 'show this help message and exit' },
  { flags: ['-q', '--quiet'], dest: 'verbosity', kind: 'const', value: -1 },
  { flags: ['-v', '--verbose'], dest: 'verbosity', kind: 'count' },
  { flags: ['-m', '--force-master'], dest: 'force_master', kind: 'true' },
  { flags: ['--no-api'], dest: 'spawn_api', kind: 'false' },
  { flags: ['--api-port'], dest: 'api_port', kind: 'int' },
  { flags: ['--no-worker'], dest: 'no_worker', kind: 'true' },
  {
    flags: ['--no-downloads'],
    dest: 'no_downloads',
    kind: 'true',
    help: "Disable the download coordinator (node won't download models)",
  },
  {
    flags: ['--offline'],
    dest: 'offline',
    kind: 'true',
    help: 'Run in offline/air-gapped mode: skip internet checks, use only pre-staged local models',
  },
  {
    flags: ['--no-batch'],
    dest: 'no_batch',
    kind: 'true',
    help: 'Disable continuous batching, use sequential generation',
  },
];
const bootstrap = {
  flags: ['--bootstrap-peers'],
  dest: 'bootstrap_peers',
  kind: 'peers',
  help: 'Comma-separated libp2p multiaddrs to dial on startup (env: EXO_BOOTSTRAP_PEERS)',
};
const fastSynch = [
  {
    flags: ['--fast-synch'],
    dest: 'fast_synch',
    kind: 'const',
    value: true,
    group: 'fast_synch',
    help: 'Force MLX FAST_SYNCH on (for JACCL backend)',
  },
  {
    flags: ['--no-fast-synch'],
    dest: 'fast_synch',
    kind: 'const',
    value: false,
    group: 'fast_synch',
    help: 'Force MLX FAST_SYNCH off',
  },
];

const TABLES = {
  libp2p: [
    ...common,
    bootstrap,
    {
      flags: ['--libp2p-port'],
      dest: 'libp2p_port',
      kind: 'int',
      help: 'Fixed TCP port for libp2p to listen on (0 = OS-assigned).',
    },
    ...fastSynch,
  ],
  zenoh: [
    ...common,
    {
      flags: ['--legacy-daemon'],
      dest: 'legacy_daemon',
      kind: 'true',
      help: 'Run as a legacy SysV-style background daemon using double-fork daemonization',
    },
    bootstrap,
    {
      flags: ['--namespace'],
      dest: 'namespace',
      kind: 'str',
      help: 'Discovery namespace, nodes with different namespaces will not connect.',
    },
    {
      flags: ['--zenoh-port'],
      dest: 'zenoh_port',
      kind: 'int',
      help: 'Fixed TCP port for zenoh to listen.',
    },
    {
      flags: ['--discovery-port'],
      dest: 'discovery_port',
      kind: 'int',
      help: 'Fixed UDP port for the discovery service.',
    },
    ...fastSynch,
  ],
};

const takesValue = (o) => ['int', 'str', 'peers'].includes(o.kind);
const metavar = (o) =>
  o.flags[o.flags.length - 1].replace(/^-+/, '').replaceAll('-', '_').toUpperCase();
const invocation = (o) =>
  takesValue(o) ? `${o.flags.join(', ')} ${metavar(o)}` : o.flags.join(', ');

function width() {
  // argparse: shutil.get_terminal_size().columns - 2 (COLUMNS, else 80 without a terminal)
  const cols = parseInt(process.env.COLUMNS || '', 10);
  return (cols > 0 ? cols : 80) - 2;
}

/** argparse's usage, wrapped as HelpFormatter._format_usage wraps a long one. */
function usageText(era) {
  const table = TABLES[era];
  const parts = [];
  for (let i = 0; i < table.length; i++) {
    const o = table[i];
    if (o.group) {
      const members = table.filter((x) => x.group === o.group);
      if (members[0] === o) parts.push(`[${members.map((x) => x.flags[0]).join(' | ')}]`);
      continue;
    }
    parts.push(takesValue(o) ? `[${o.flags[0]} ${metavar(o)}]` : `[${o.flags[0]}]`);
  }
  const prefix = 'usage: ';
  const text = [PROG, ...parts].join(' ');
  const textWidth = width();
  if (prefix.length + text.length <= textWidth) return `${prefix}${text}\n`;
  const indent = ' '.repeat(prefix.length + PROG.length + 1);
  const lines = [];
  let line = [];
  let len = prefix.length - 1;
  for (const part of [PROG, ...parts]) {
    if (len + 1 + part.length > textWidth && line.length) {
      lines.push(indent + line.join(' '));
      line = [];
      len = indent.length - 1;
    }
    line.push(part);
    len += part.length + 1;
  }
  if (line.length) lines.push(indent + line.join(' '));
  lines[0] = lines[0].slice(indent.length);
  return `${prefix}${lines.join('\n')}\n`;
}

/** argparse's -h output (Python 3.13: an "options:" section, help column at 24). */
function helpText(era) {
  const w = width();
  const helpPos = Math.min(24, Math.max(w - 20, 4));
  const helpWidth = Math.max(w - helpPos, 11);
  let out = `${usageText(era)}\noptions:\n`;
  for (const o of TABLES[era]) {
    const head = `  ${invocation(o)}`;
    if (!o.help) {
      out += `${head}\n`;
      continue;
    }
    const lines = wrapHyphens(o.help, helpWidth);
    if (head.length <= helpPos - 2) out += `${head.padEnd(helpPos)}${lines[0]}\n`;
    else out += `${head}\n${' '.repeat(helpPos)}${lines[0]}\n`;
    for (const l of lines.slice(1)) out += `${' '.repeat(helpPos)}${l}\n`;
  }
  return out;
}

/** Python's textwrap as argparse uses it: words, also split after hyphens ("OS-" "assigned"). */
function wrapHyphens(text, w) {
  const chunks = text.split(' ').flatMap((word) => word.split(/(?<=[A-Za-z]-)(?=[A-Za-z])/));
  const lines = [];
  let cur = '';
  for (const c of chunks) {
    const joiner = cur === '' || cur.endsWith('-') ? '' : ' ';
    if (cur && cur.length + joiner.length + c.length > w) {
      lines.push(cur);
      cur = c;
      continue;
    }
    cur += joiner + c;
  }
  if (cur) lines.push(cur);
  return lines;
}

function argError(era, msg) {
  writeErr(`${usageText(era)}${PROG}: error: ${msg}\n`);
  process.exit(2);
}

// Python's int(): surrounding whitespace, a sign, and underscores between digits.
const INT_RE = /^\s*[-+]?\d+(_\d+)*\s*$/;
// argparse treats "-5" or "-.5" as a value, not an option, when no option looks like a number
const NEGATIVE_NUMBER = /^-\d+$|^-\d*\.\d+$/;

/**
 * Parses argv for `era`. Exits as exo would: 0 after -h, 2 on an argparse error, 1 when the
 * pydantic Args model rejects the result (api_port must be a PositiveInt).
 */
export function parseArgs(argv, era, env = process.env) {
  const table = TABLES[era];
  const envPeers = env.EXO_BOOTSTRAP_PEERS;
  const args = {
    verbosity: 0,
    force_master: false,
    spawn_api: true,
    api_port: 52415,
    no_worker: false,
    no_downloads: false,
    offline: (env.EXO_OFFLINE || 'false').toLowerCase() === 'true',
    no_batch: false,
    // the environment default is split without dropping empty items, unlike the flag's value
    bootstrap_peers: envPeers ? envPeers.split(',') : [],
    fast_synch: null,
  };
  if (era === 'libp2p') Object.assign(args, { libp2p_port: 0 });
  else
    Object.assign(args, {
      legacy_daemon: false,
      namespace: null,
      zenoh_port: 52414,
      discovery_port: 52413,
    });

  const extras = [];
  const seenInGroup = new Map(); // group -> the first option string used
  const longs = table.flatMap((o) => o.flags.filter((f) => f.startsWith('--')).map((f) => [f, o]));
  const allStrings = table.flatMap((o) => o.flags.map((f) => [f, o]));
  const shown = (o) => o.flags.join('/');

  const findLong = (name) => {
    const exact = allStrings.find(([f]) => f === name);
    if (exact) return exact;
    const pref = longs.filter(([f]) => f.startsWith(name));
    if (pref.length > 1)
      argError(era, `ambiguous option: ${name} could match ${pref.map(([f]) => f).join(', ')}`);
    return pref[0] || null;
  };
  const apply = (o, _optString, value) => {
    if (o.group) {
      const first = seenInGroup.get(o.group);
      if (first && first.o !== o)
        argError(era, `argument ${shown(o)}: not allowed with argument ${first.optString}`);
      if (!first) seenInGroup.set(o.group, { o, optString: shown(o) });
    }
    switch (o.kind) {
      case 'help':
        writeOut(helpText(era));
        process.exit(0);
        break;
      case 'true':
        args[o.dest] = true;
        break;
      case 'false':
        args[o.dest] = false;
        break;
      case 'const':
        args[o.dest] = o.value;
        break;
      case 'count':
        args[o.dest] = (args[o.dest] ?? 0) + 1;
        break;
      case 'int':
        if (!INT_RE.test(value))
          argError(era, `argument ${shown(o)}: invalid int value: ${pyRepr(value)}`);
        args[o.dest] = parseInt(value.replaceAll('_', '').trim(), 10);
        break;
      case 'str':
        args[o.dest] = value;
        break;
      case 'peers':
        args[o.dest] = value.split(',').filter(Boolean);
        break;
      default:
        break;
    }
  };
  const looksLikeOption = (a) => a.startsWith('-') && a.length > 1 && !NEGATIVE_NUMBER.test(a);

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      extras.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(0, eq) : a;
      const hit = findLong(name);
      if (!hit) {
        extras.push(a);
        continue;
      }
      const [, o] = hit;
      if (takesValue(o)) {
        let value;
        if (eq >= 0) value = a.slice(eq + 1);
        else if (i + 1 < argv.length && !looksLikeOption(argv[i + 1]) && argv[i + 1] !== '--')
          value = argv[++i];
        else argError(era, `argument ${shown(o)}: expected one argument`);
        apply(o, name, value);
      } else {
        if (eq >= 0)
          argError(
            era,
            `argument ${shown(o)}: ignored explicit argument ${pyRepr(a.slice(eq + 1))}`,
          );
        apply(o, name);
      }
    } else if (looksLikeOption(a)) {
      // a single-dash option or a cluster of them, e.g. -vv or -mv
      const first = table.find((o) => o.flags.includes(a.slice(0, 2)));
      if (!first) {
        extras.push(a);
        continue;
      }
      let rest = a.slice(2);
      let o = first;
      for (;;) {
        if (rest.startsWith('='))
          argError(era, `argument ${shown(o)}: ignored explicit argument ${pyRepr(rest.slice(1))}`);
        apply(o, `-${a[1]}`);
        if (!rest) break;
        const next = table.find((x) => x.flags.includes(`-${rest[0]}`));
        if (!next) {
          extras.push(`-${rest}`);
          break;
        }
        o = next;
        rest = rest.slice(1);
      }
    } else {
      extras.push(a);
    }
  }
  if (extras.length) argError(era, `unrecognized arguments: ${extras.join(' ')}`);
  if (args.api_port <= 0) {
    // exo validates the parsed arguments with a pydantic model (api_port: PositiveInt)
    writeErr(
      pyTraceback(
        [
          ...entryFrames(),
          ['exo/main.py', 'main', 'args = Args.parse()'],
          ['exo/main.py', 'parse', 'return cls(**vars(args))'],
          [
            'pydantic/main.py',
            '__init__',
            'validated_self = self.__pydantic_validator__.validate_python(data, self_instance=self)',
          ],
        ],
        'pydantic_core._pydantic_core.ValidationError: 1 validation error for Args\napi_port\n' +
          `  Input should be greater than 0 [type=greater_than, input_value=${args.api_port}, input_type=int]\n` +
          '    For further information visit https://errors.pydantic.dev/2.12/v/greater_than',
      ),
    );
    process.exit(1);
  }
  return args;
}
