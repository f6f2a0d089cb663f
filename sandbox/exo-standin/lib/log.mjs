// Logging in exo's loguru format (both eras share src/exo/shared/logging.py): the INFO sink for
// verbosity 0, the DEBUG sink for any other verbosity (-q included), colorize=True on stderr.
// Also Python and loguru tracebacks, whose final lines are what journal checkers match.

import crypto from 'node:crypto';

const LEVELS = { TRACE: 5, DEBUG: 10, INFO: 20, SUCCESS: 25, WARNING: 30, ERROR: 40, CRITICAL: 50 };
const LEVEL_COLOR = {
  TRACE: '\x1b[36m\x1b[1m',
  DEBUG: '\x1b[34m\x1b[1m',
  INFO: '\x1b[1m',
  SUCCESS: '\x1b[32m\x1b[1m',
  WARNING: '\x1b[33m\x1b[1m',
  ERROR: '\x1b[31m\x1b[1m',
  CRITICAL: '\x1b[41m\x1b[1m',
};
const RESET = '\x1b[0m';

export const logConfig = {
  verbosity: 0,
  // exo's stderr sink has colorize=True, so real exo writes ANSI colours even to journald.
  color: !['0', 'false', 'no', 'off'].includes(
    String(process.env.EXO_STANDIN_COLOR ?? '1').toLowerCase(),
  ),
};

const pad = (n, w = 2) => String(n).padStart(w, '0');

function stamp(verbose) {
  const t = performance.timeOrigin + performance.now();
  const d = new Date(Math.floor(t));
  if (verbose) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  // loguru's {time:hh:mm:ss.SSSSA}: 12-hour clock, four fraction digits, AM/PM
  const h12 = d.getHours() % 12 === 0 ? 12 : d.getHours() % 12;
  const frac = Math.floor((t % 1000) * 10);
  return `${pad(h12)}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(frac, 4)}${d.getHours() < 12 ? 'AM' : 'PM'}`;
}

export function writeErr(text) {
  try {
    process.stderr.write(text);
  } catch {
    /* stderr gone */
  }
}

export function writeOut(text) {
  try {
    process.stdout.write(text);
  } catch {
    /* stdout gone */
  }
}

/** One loguru record. `where` is loguru's {name}:{function}:{line}; `exc` is text appended after it. */
export function emit(level, message, where = 'exo.main:main_inner:1', exc = null) {
  const verbose = logConfig.verbosity !== 0;
  if (LEVELS[level] < (verbose ? LEVELS.DEBUG : LEVELS.INFO)) return;
  const lvl = level.padEnd(8);
  const c = logConfig.color ? LEVEL_COLOR[level] : '';
  const r = logConfig.color ? RESET : '';
  const head = verbose
    ? `[ ${stamp(true)} | ${c}${lvl}${r} | ${where} ] ${c}${message}${r}`
    : `[ ${stamp(false)} | ${c}${lvl}${r}] ${c}${message}${r}`;
  writeErr(`${head}\n${exc || ''}`);
}

export const logger = {
  debug: (m, w) => emit('DEBUG', m, w),
  info: (m, w) => emit('INFO', m, w),
  warning: (m, w, exc) => emit('WARNING', m, w, exc),
  error: (m, w, exc) => emit('ERROR', m, w, exc),
  critical: (m, w, exc) => emit('CRITICAL', m, w, exc),
};

// Python-looking paths for tracebacks: the store path of an exo build of this version.
let STORE = '/nix/store/00000000000000000000000000000000-exo';
const PYLIB = '/lib/python3.13';
export function setStore(version) {
  const hash = crypto.createHash('sha256').update(String(version)).digest('hex');
  const b32 = '0123456789abcdfghijklmnpqrsvwxyz';
  STORE = `/nix/store/${[...hash.slice(0, 32)].map((ch) => b32[(parseInt(ch, 16) * 2) % 32]).join('')}-exo-${version}`;
}
const site = (file) => `${STORE}${PYLIB}/site-packages/${file}`;
const lineOf = (s) =>
  40 + (parseInt(crypto.createHash('md5').update(s).digest('hex').slice(0, 4), 16) % 900);

/** A frame: [file (site-packages-relative or absolute), function, source line, optional line number]. */
function frameParts([file, fn, src, line]) {
  const full = file.startsWith('/') ? file : site(file);
  return { full, fn, src, line: line ?? lineOf(file + fn + src) };
}

/** A plain CPython traceback (an uncaught exception), `final` being its last line(s). */
export function pyTraceback(frames, final) {
  let out = 'Traceback (most recent call last):\n';
  for (const f of frames.map(frameParts))
    out += `  File "${f.full}", line ${f.line}, in ${f.fn}\n    ${f.src}\n`;
  return `${out + final}\n`;
}

/** The frames every uncaught exception of exo's entry point starts with. */
export function entryFrames() {
  return [[`${STORE}/bin/.exo-wrapped`, '<module>', 'sys.exit(main())', 9]];
}

/**
 * loguru's rendering of logger.opt(exception=e): a traceback with a blank line between frames,
 * coloured when the sink is. An exception that was never raised (no frames) renders as its
 * last line only, e.g. "RuntimeError: Runner found to be dead".
 */
export function loguruTraceback(frames, excType, excValue) {
  const C = logConfig.color
    ? {
        intro: '\x1b[33m\x1b[1m',
        dir: '\x1b[32m',
        base: '\x1b[32m\x1b[1m',
        line: '\x1b[33m',
        fn: '\x1b[35m',
        type: '\x1b[31m\x1b[1m',
        value: '\x1b[1m',
        r: RESET,
      }
    : { intro: '', dir: '', base: '', line: '', fn: '', type: '', value: '', r: '' };
  let out = frames.length ? `${C.intro}Traceback (most recent call last):${C.r}\n` : '';
  for (const f of frames.map(frameParts)) {
    const dir = f.full.slice(0, f.full.lastIndexOf('/') + 1);
    const base = f.full.slice(f.full.lastIndexOf('/') + 1);
    out += `\n  File "${C.dir}${dir}${C.r}${C.base}${base}${C.r}", line ${C.line}${f.line}${C.r}, in ${C.fn}${f.fn}${C.r}\n    ${f.src}\n`;
  }
  out +=
    (frames.length ? '\n' : '') +
    (excValue === null
      ? `${C.type}${excType}${C.r}\n`
      : `${C.type}${excType}${C.r}:${C.value} ${excValue}${C.r}\n`);
  return out;
}

/** Python's repr() of a str, as argparse and f-strings print it. */
export function pyRepr(s) {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = [...s]
    .map((ch) => {
      if (ch === '\\') return '\\\\';
      if (ch === q) return `\\${q}`;
      if (ch === '\n') return '\\n';
      if (ch === '\t') return '\\t';
      if (ch === '\r') return '\\r';
      const code = ch.codePointAt(0);
      if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
      return ch;
    })
    .join('');
  return q + body + q;
}

/** Python's repr() of a list of str: ['a', 'b']. */
export const pyListRepr = (xs) => `[${xs.map(pyRepr).join(', ')}]`;
