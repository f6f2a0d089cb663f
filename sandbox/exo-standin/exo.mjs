#!/usr/bin/env node
// exo stand-in: a test fixture that behaves like exo (github.com/exo-explore/exo) where a
// deployment tool can observe it: command-line flags, the HTTP API's routes and JSON shapes,
// log lines on stderr, version-derived discovery namespaces, and injectable faults.
//
// Plain ESM, node: built-ins only, runs on Node 18 and 20. See README.md next to this file.
// Written from exo's observable behaviour; no exo code is used.

import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROG = 'EXO';

// ---------------------------------------------------------------------------------------
// Command line (argparse-like, including its error messages and exit code 2)
// ---------------------------------------------------------------------------------------

const OPTIONS = [
  { flags: ['-h', '--help'], dest: 'help', kind: 'help' },
  { flags: ['-q', '--quiet'], dest: 'verbosity', kind: 'const', value: -1 },
  { flags: ['-v', '--verbose'], dest: 'verbosity', kind: 'count' },
  { flags: ['-m', '--force-master'], dest: 'force_master', kind: 'true' },
  { flags: ['--no-api'], dest: 'spawn_api', kind: 'false' },
  { flags: ['--api-port'], dest: 'api_port', kind: 'int', metavar: 'API_PORT' },
  { flags: ['--no-worker'], dest: 'no_worker', kind: 'true' },
  { flags: ['--no-downloads'], dest: 'no_downloads', kind: 'true' },
  { flags: ['--offline'], dest: 'offline', kind: 'true' },
  { flags: ['--no-batch'], dest: 'no_batch', kind: 'true' },
  { flags: ['--legacy-daemon'], dest: 'legacy_daemon', kind: 'true' },
  { flags: ['--bootstrap-peers'], dest: 'bootstrap_peers', kind: 'str', metavar: 'BOOTSTRAP_PEERS' },
  { flags: ['--namespace'], dest: 'namespace', kind: 'str', metavar: 'NAMESPACE' },
  { flags: ['--zenoh-port'], dest: 'zenoh_port', kind: 'int', metavar: 'ZENOH_PORT' },
  { flags: ['--discovery-port'], dest: 'discovery_port', kind: 'int', metavar: 'DISCOVERY_PORT' },
  { flags: ['--fast-synch'], dest: 'fast_synch', kind: 'const', value: true, group: 'fast' },
  { flags: ['--no-fast-synch'], dest: 'fast_synch', kind: 'const', value: false, group: 'fast' },
];

function usageText() {
  const parts = [
    '[-h]', '[-q]', '[-v]', '[-m]', '[--no-api]', '[--api-port API_PORT]', '[--no-worker]',
    '[--no-downloads]', '[--offline]', '[--no-batch]', '[--legacy-daemon]',
    '[--bootstrap-peers BOOTSTRAP_PEERS]', '[--namespace NAMESPACE]', '[--zenoh-port ZENOH_PORT]',
    '[--discovery-port DISCOVERY_PORT]', '[--fast-synch | --no-fast-synch]',
  ];
  // argparse wraps the usage to the terminal width (COLUMNS, else 80) minus 2.
  const width = Math.max(40, (Number(process.env.COLUMNS) || 80) - 2);
  const head = `usage: ${PROG} `;
  const lines = [];
  let cur = head;
  for (const p of parts) {
    if (cur.length + p.length > width && cur.trim() !== head.trim()) {
      lines.push(cur.trimEnd());
      cur = ' '.repeat(head.length);
    }
    cur += p + ' ';
  }
  lines.push(cur.trimEnd());
  return lines.join('\n') + '\n';
}

function helpText() {
  return `${usageText()}
options:
  -h, --help            show this help message and exit
  -q, --quiet
  -v, --verbose
  -m, --force-master
  --no-api
  --api-port API_PORT
  --no-worker
  --no-downloads        Disable the download coordinator (node won't download
                        models)
  --offline             Run in offline/air-gapped mode: skip internet checks,
                        use only pre-staged local models
  --no-batch            Disable continuous batching, use sequential generation
  --legacy-daemon       Not supported by the exo stand-in (refused)
  --bootstrap-peers BOOTSTRAP_PEERS
                        Comma-separated multiaddrs to dial on startup
  --namespace NAMESPACE
                        Discovery namespace, nodes with different namespaces
                        will not connect.
  --zenoh-port ZENOH_PORT
                        Fixed TCP port for zenoh to listen.
  --discovery-port DISCOVERY_PORT
                        Fixed UDP port for the discovery service.
  --fast-synch          Force MLX FAST_SYNCH on (for JACCL backend)
  --no-fast-synch       Force MLX FAST_SYNCH off
`;
}

function argError(msg) {
  process.stderr.write(usageText() + `${PROG}: error: ${msg}\n`);
  process.exit(2);
}

export function parseArgs(argv) {
  const args = {
    verbosity: 0, force_master: false, spawn_api: true, api_port: 52415, no_worker: false,
    no_downloads: false, offline: (process.env.EXO_OFFLINE || 'false').toLowerCase() === 'true',
    no_batch: false, legacy_daemon: false,
    bootstrap_peers: process.env.EXO_BOOTSTRAP_PEERS ? process.env.EXO_BOOTSTRAP_PEERS.split(',') : [],
    namespace: null, zenoh_port: 52414, discovery_port: 52413, fast_synch: null, help: false,
  };
  const unknown = [];
  let groupUsed = null;
  const longOpts = OPTIONS.flatMap((o) => o.flags.filter((f) => f.startsWith('--')).map((f) => [f, o]));
  const findLong = (name) => {
    const exact = longOpts.find(([f]) => f === name);
    if (exact) return exact;
    const pref = longOpts.filter(([f]) => f.startsWith(name));
    if (pref.length === 1) return pref[0];
    if (pref.length > 1) {
      argError(`ambiguous option: ${name} could match ${pref.map(([f]) => f).join(', ')}`);
    }
    return null;
  };
  const apply = (opt, flagName, value) => {
    if (opt.group) {
      if (groupUsed && groupUsed !== flagName) {
        argError(`argument ${flagName}: not allowed with argument ${groupUsed}`);
      }
      groupUsed = flagName;
    }
    const shown = opt.flags.join('/');
    switch (opt.kind) {
      case 'help': args.help = true; break;
      case 'true': args[opt.dest] = true; break;
      case 'false': args[opt.dest] = false; break;
      case 'const': args[opt.dest] = opt.value; break;
      case 'count': args[opt.dest] = (args[opt.dest] > 0 ? args[opt.dest] : 0) + 1; break;
      case 'int': {
        if (!/^\s*[-+]?\d+\s*$/.test(value)) argError(`argument ${shown}: invalid int value: '${value}'`);
        args[opt.dest] = parseInt(value, 10);
        break;
      }
      case 'str':
        args[opt.dest] = opt.dest === 'bootstrap_peers' ? value.split(',').filter(Boolean) : value;
        break;
      default: break;
    }
  };
  const takesValue = (opt) => opt.kind === 'int' || opt.kind === 'str';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { unknown.push(...argv.slice(i + 1)); break; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(0, eq) : a;
      const hit = findLong(name);
      if (!hit) { unknown.push(a); continue; }
      const [flag, opt] = hit;
      const shown = opt.flags.join('/');
      if (takesValue(opt)) {
        let value;
        if (eq >= 0) value = a.slice(eq + 1);
        else if (i + 1 < argv.length && !(argv[i + 1].startsWith('-') && argv[i + 1].length > 1 && !/^-\d/.test(argv[i + 1]))) value = argv[++i];
        else argError(`argument ${shown}: expected one argument`);
        apply(opt, flag, value);
      } else {
        if (eq >= 0) argError(`argument ${shown}: ignored explicit argument '${a.slice(eq + 1)}'`);
        apply(opt, flag);
      }
    } else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      // cluster of short flags, e.g. -vv or -mv
      const chars = a.slice(1).split('');
      const bad = chars.some((c) => !OPTIONS.some((o) => o.flags.includes('-' + c)));
      if (bad) { unknown.push(a); continue; }
      for (const c of chars) {
        const opt = OPTIONS.find((o) => o.flags.includes('-' + c));
        apply(opt, '-' + c);
      }
    } else {
      unknown.push(a);
    }
  }
  if (args.help) {
    process.stdout.write(helpText());
    process.exit(0);
  }
  if (unknown.length) argError(`unrecognized arguments: ${unknown.join(' ')}`);
  if (args.api_port <= 0) {
    // exo validates api_port as a pydantic PositiveInt after argparse: a traceback, exit 1
    process.stderr.write(pyTraceback([
      ['exo/main.py', 'main', 'args = Args.parse()'],
      ['exo/main.py', 'parse', 'return cls(**vars(args))'],
    ], `pydantic_core._pydantic_core.ValidationError: 1 validation error for Args\napi_port\n  Input should be greater than 0 [type=greater_than, input_value=${args.api_port}, input_type=int]`));
    process.exit(1);
  }
  return args;
}

// ---------------------------------------------------------------------------------------
// Logging in exo's loguru format
// ---------------------------------------------------------------------------------------

const LEVELS = { TRACE: 5, DEBUG: 10, INFO: 20, SUCCESS: 25, WARNING: 30, ERROR: 40, CRITICAL: 50 };
const LEVEL_COLOR = {
  TRACE: '\x1b[36m\x1b[1m', DEBUG: '\x1b[34m\x1b[1m', INFO: '\x1b[1m', SUCCESS: '\x1b[32m\x1b[1m',
  WARNING: '\x1b[33m\x1b[1m', ERROR: '\x1b[31m\x1b[1m', CRITICAL: '\x1b[41m\x1b[1m',
};
const RESET = '\x1b[0m';

const log = {
  verbosity: 0,
  // exo's stderr sink has colorize=True, so real exo writes ANSI colours even to journald.
  color: !['0', 'false', 'no', 'off'].includes(String(process.env.EXO_STANDIN_COLOR ?? '1').toLowerCase()),
};

function pad(n, w = 2) { return String(n).padStart(w, '0'); }

function stamp(verbose) {
  const t = performance.timeOrigin + performance.now();
  const d = new Date(Math.floor(t));
  if (verbose) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  const h12 = d.getHours() % 12 === 0 ? 12 : d.getHours() % 12;
  const frac = Math.floor((t % 1000) * 10);
  return `${pad(h12)}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(frac, 4)}${d.getHours() < 12 ? 'AM' : 'PM'}`;
}

function write(text) {
  try { process.stderr.write(text); } catch { /* stderr gone */ }
}

/** One loguru record; `where` is loguru's {name}:{function}:{line}; `exc` is text lines to append. */
function emit(level, message, where = 'exo.main:main_inner:1', exc = null) {
  const verbose = log.verbosity !== 0; // exo: verbosity 0 → INFO sink; anything else (-v or -q) → DEBUG sink
  if (LEVELS[level] < (verbose ? LEVELS.DEBUG : LEVELS.INFO)) return;
  const lvl = level.padEnd(8);
  const c = log.color ? LEVEL_COLOR[level] : '';
  const r = log.color ? RESET : '';
  const head = verbose
    ? `[ ${stamp(true)} | ${c}${lvl}${r} | ${where} ] ${c}${message}${r}`
    : `[ ${stamp(false)} | ${c}${lvl}${r}] ${c}${message}${r}`;
  write(head + '\n' + (exc ? exc : ''));
}

const logger = {
  debug: (m, w) => emit('DEBUG', m, w),
  info: (m, w) => emit('INFO', m, w),
  warning: (m, w, exc) => emit('WARNING', m, w, exc),
  error: (m, w, exc) => emit('ERROR', m, w, exc),
  critical: (m, w, exc) => emit('CRITICAL', m, w, exc),
};

// Python-ish paths for tracebacks: a Nix store path of an exo build.
let STORE = '/nix/store/00000000000000000000000000000000-exo';
const PYLIB = '/lib/python3.13';
function site(file) { return `${STORE}${PYLIB}/site-packages/${file}`; }
function lineNo(s) { return 40 + (parseInt(crypto.createHash('md5').update(s).digest('hex').slice(0, 4), 16) % 900); }

/** A plain CPython traceback. frames: [file (under site-packages or absolute), function, source]. */
function pyTraceback(frames, final) {
  let out = 'Traceback (most recent call last):\n';
  for (const [file, fn, src] of frames) {
    const full = file.startsWith('/') ? file : site(file);
    out += `  File "${full}", line ${lineNo(file + fn + src)}, in ${fn}\n    ${src}\n`;
  }
  return out + final + '\n';
}

/** A loguru-style traceback (blank line between frames, colours when enabled). */
function loguruTraceback(frames, excType, excValue) {
  const C = log.color
    ? { intro: '\x1b[33m\x1b[1m', dir: '\x1b[32m', base: '\x1b[32m\x1b[1m', line: '\x1b[33m', fn: '\x1b[35m', type: '\x1b[31m\x1b[1m', value: '\x1b[1m', r: RESET }
    : { intro: '', dir: '', base: '', line: '', fn: '', type: '', value: '', r: '' };
  // an exception that was never raised (no frames) prints as its last line only
  let out = frames.length ? `${C.intro}Traceback (most recent call last):${C.r}\n` : '';
  for (const [file, fn, src] of frames) {
    const full = file.startsWith('/') ? file : site(file);
    const dir = full.slice(0, full.lastIndexOf('/') + 1);
    const base = full.slice(full.lastIndexOf('/') + 1);
    out += `\n  File "${C.dir}${dir}${C.r}${C.base}${base}${C.r}", line ${C.line}${lineNo(file + fn + src)}${C.r}, in ${C.fn}${fn}${C.r}\n    ${src}\n`;
  }
  out += (frames.length ? '\n' : '') + (excValue === null
    ? `${C.type}${excType}${C.r}\n`
    : `${C.type}${excType}${C.r}:${C.value} ${excValue}${C.r}\n`);
  return out;
}

// ---------------------------------------------------------------------------------------
// Release settings and faults
// ---------------------------------------------------------------------------------------

const FAULTS_WITH_S = ['exit-after', 'runner-exit', 'queue-closed', 'closed-resource', 'slow-start'];
const FAULTS_PLAIN = ['none', 'crash-on-start', 'hang', 'http-500', 'isolated'];

function configError(msg) {
  write(`exo-standin: ${msg}\n`);
  process.exit(1);
}

export function parseFault(spec) {
  const s = String(spec ?? 'none').trim();
  if (FAULTS_PLAIN.includes(s)) return { kind: s, seconds: 0 };
  const m = /^([a-z-]+):(\d+(?:\.\d+)?)$/.exec(s);
  if (m && FAULTS_WITH_S.includes(m[1])) return { kind: m[1], seconds: Number(m[2]) };
  return null;
}

function loadRelease() {
  const file = process.env.EXO_STANDIN_RELEASE || path.join(HERE, 'release.json');
  let raw;
  try { raw = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) {
    configError(`cannot read release settings ${file}: ${e.message}`);
  }
  if (!raw || typeof raw !== 'object' || typeof raw.version !== 'string' || raw.version === '') {
    configError(`release settings ${file}: "version" must be a non-empty string`);
  }
  const fault = parseFault(raw.fault);
  if (!fault) {
    configError(`release settings ${file}: unknown fault ${JSON.stringify(raw.fault)} (one of ${[...FAULTS_PLAIN, ...FAULTS_WITH_S.map((f) => f + ':S')].join(', ')})`);
  }
  let faultOn = raw.fault_on ?? [];
  if (typeof faultOn === 'string') faultOn = faultOn.split(',').map((x) => x.trim()).filter(Boolean);
  if (!Array.isArray(faultOn)) configError(`release settings ${file}: "fault_on" must be a list of host names`);
  const model = raw.model === undefined ? DEFAULT_MODEL : raw.model;
  return { file, version: raw.version, fault, faultOn: faultOn.map(String), model };
}

// ---------------------------------------------------------------------------------------
// Model catalogue (a few small public models; sizes as published)
// ---------------------------------------------------------------------------------------

const DEFAULT_MODEL = 'mlx-community/Llama-3.2-1B-Instruct-4bit';

function card(id, nLayers, hidden, kv, tensor, family, quant, base, caps, ctx, bytes, sampling) {
  return {
    modelId: id, storageSize: { inBytes: bytes }, nLayers, hiddenSize: hidden, supportsTensor: tensor,
    numKeyValueHeads: kv, tasks: ['TextGeneration'], components: null, family, quantization: quant,
    baseModel: base, capabilities: caps, backends: ['MlxMetal', 'MlxCuda', 'MlxCpu'], reasoningDialect: 'none',
    contextLength: ctx, usesCfg: false, trustRemoteCode: true, isCustom: false, vision: null,
    samplingDefaults: {
      temperature: null, topP: null, topK: null, minP: null, repetitionPenalty: null, presencePenalty: null,
      frequencyPenalty: null, thinking: null, nonThinking: null, ...sampling,
    },
  };
}

const CATALOGUE = [
  card('mlx-community/Llama-3.2-1B-Instruct-4bit', 16, 2048, 8, true, 'llama', '4bit', 'Llama 3.2 1B', ['text'], 131072, 729808896, { temperature: 0.6, topP: 0.9 }),
  card('mlx-community/Llama-3.2-3B-Instruct-4bit', 28, 3072, 8, true, 'llama', '4bit', 'Llama 3.2 3B', ['text'], 131072, 1863319552, { temperature: 0.6, topP: 0.9 }),
  card('mlx-community/Qwen3-0.6B-4bit', 28, 1024, 8, false, 'qwen', '4bit', 'Qwen3 0.6B', ['text', 'thinking', 'thinking_toggle'], 32768, 342884352, { temperature: 0.6, topP: 0.95, topK: 20, minP: 0 }),
];
const cardFor = (id) => CATALOGUE.find((c) => c.modelId === id) || null;

// ---------------------------------------------------------------------------------------
// Node
// ---------------------------------------------------------------------------------------

const uuid = () => crypto.randomUUID();
const nsHash = (s) => crypto.createHash('sha256').update('exo-standin-namespace\0' + s).digest('hex').slice(0, 16);
const nowIso = () => new Date().toISOString();

function ipv4s() {
  const out = [];
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    for (const a of addrs || []) {
      if (a.family === 'IPv4' || a.family === 4) out.push({ name, ipAddress: a.address, interfaceType: 'unknown' });
    }
  }
  return out;
}

function diskUsage() {
  try {
    if (typeof fs.statfsSync === 'function') {
      const s = fs.statfsSync(os.homedir());
      return { total: { inBytes: s.blocks * s.bsize }, available: { inBytes: s.bavail * s.bsize } };
    }
  } catch { /* fall through */ }
  return { total: { inBytes: 0 }, available: { inBytes: 0 } };
}

class Node {
  constructor(args, release, hostname) {
    this.args = args;
    this.release = release;
    this.hostname = hostname;
    this.nodeId = crypto.randomBytes(16).toString('hex');
    this.namespace = args.namespace ?? release.version;
    const applies = release.faultOn.length === 0 || release.faultOn.includes(hostname);
    this.fault = applies ? release.fault : { kind: 'none', seconds: 0 };
    this.nsHash = this.fault.kind === 'isolated' ? nsHash(`${this.namespace}\0isolated\0${this.nodeId}`) : nsHash(this.namespace);
    this.peersSpec = (process.env.EXO_STANDIN_PEERS || '').split(',').map((s) => s.trim()).filter(Boolean);
    this.bind = process.env.EXO_STANDIN_BIND || '0.0.0.0';
    this.peers = new Map(); // addr -> { nodeId, lastOk, payload }
    this.foreign = new Set(); // addrs answering with another namespace (logged once)
    this.instances = new Map(); // instances this node placed: id -> instance (exo's tagged shape)
    this.runners = new Map(); // runners hosted on this node: id -> status (exo's tagged shape)
    this.failed = null; // set by the runner-exit fault: the RunnerFailed status every hosted runner takes
    this.events = [];
    this.eventIdx = -1;
    this.startedAt = Date.now();
    this.servers = [];
    this.timers = [];
    this.sockets = new Set();
    this.watchdogS = Number(process.env.EXO_STANDIN_WATCHDOG_INTERVAL || 5);
  }

  // --- state -----------------------------------------------------------------------------

  record(type, body) {
    this.events.push({ [type]: { eventId: uuid(), ...body } });
    this.eventIdx += 1;
    if (this.events.length > 1000) this.events.splice(0, this.events.length - 1000);
  }

  seenPeers() {
    const cutoff = Date.now() - 3000;
    return [...this.peers.entries()]
      .filter(([, p]) => p.lastOk >= cutoff && p.nodeId !== this.nodeId)
      .map(([addr, p]) => ({ addr, ...p }));
  }

  localPart() {
    const mem = {
      ramTotal: { inBytes: os.totalmem() }, ramAvailable: { inBytes: os.freemem() },
      swapTotal: { inBytes: 0 }, swapAvailable: { inBytes: 0 },
    };
    const cpu = (os.cpus()[0] || {}).model || 'Unknown';
    const downloads = [];
    const models = new Set();
    if (!this.args.no_worker) {
      for (const inst of this.allInstances().values()) {
        const sa = Object.values(inst)[0].shardAssignments;
        if (sa.nodeToRunner[this.nodeId]) models.add(sa.modelId);
      }
      for (const m of models) {
        const c = cardFor(m);
        if (!c) continue;
        downloads.push({
          DownloadCompleted: {
            nodeId: this.nodeId,
            shardMetadata: { PipelineShardMetadata: shard(c, 0, 1) },
            modelDirectory: path.join(os.homedir(), '.local/share/exo/models', m.replace('/', '--')),
            total: { inBytes: c.storageSize.inBytes }, readOnly: false,
          },
        });
      }
    }
    return {
      nodeId: this.nodeId,
      instances: Object.fromEntries(this.instances),
      runners: Object.fromEntries(this.runnerStatuses()),
      downloads,
      identity: {
        modelId: 'Linux', chipId: cpu, friendlyName: this.hostname,
        osVersion: os.release(), osBuildVersion: os.version ? os.version() : 'Unknown',
      },
      memory: mem,
      disk: diskUsage(),
      system: { gpuUsage: 0.0, temp: 0.0, sysPower: 0.0, pcpuUsage: 0.0, ecpuUsage: 0.0 },
      network: { interfaces: ipv4s() },
      backends: ['MlxCpu'],
    };
  }

  /** Runner statuses for every runner that instances (ours or peers') put on this node. */
  runnerStatuses() {
    const out = new Map();
    if (this.args.no_worker) return out;
    for (const inst of this.allInstances().values()) {
      const rid = Object.values(inst)[0].shardAssignments.nodeToRunner[this.nodeId];
      if (!rid) continue;
      if (!this.runners.has(rid)) {
        this.runners.set(rid, this.failed ?? { RunnerReady: { prefillServerPort: null } });
        this.record('RunnerStatusUpdated', { runnerId: rid, runnerStatus: this.runners.get(rid) });
      }
      out.set(rid, this.runners.get(rid));
    }
    return out;
  }

  /** Instances known cluster-wide: ours plus those of peers we see (whose nodes are all seen). */
  allInstances() {
    const all = new Map(this.instances);
    const seen = this.seenPeers();
    const ids = new Set([this.nodeId, ...seen.map((p) => p.nodeId)]);
    for (const p of seen) {
      for (const [iid, inst] of Object.entries(p.payload.local.instances || {})) {
        const nodes = Object.keys(Object.values(inst)[0].shardAssignments.nodeToRunner);
        if (nodes.every((n) => ids.has(n))) all.set(iid, inst);
      }
    }
    return all;
  }

  state() {
    const seen = this.seenPeers();
    const parts = [this.localPart(), ...seen.map((p) => p.payload.local)];
    const st = {
      instances: {}, runners: {}, downloads: {}, tasks: {}, lastSeen: {},
      topology: { nodes: [], connections: {} }, lastEventAppliedIdx: this.eventIdx,
      nodeIdentities: {}, nodeMemory: {}, nodeDisk: {}, nodeSystem: {}, nodeNetwork: {},
      nodeThunderbolt: {}, nodeThunderboltBridge: {}, nodeRdmaCtl: {}, nodeBackends: {},
      thunderboltBridgeCycles: [], instanceLinks: {}, prefillServerPorts: {}, customModelCards: {},
    };
    for (const [iid, inst] of this.allInstances()) st.instances[iid] = inst;
    for (const lp of parts) {
      Object.assign(st.runners, lp.runners);
      st.downloads[lp.nodeId] = lp.downloads;
      st.nodeIdentities[lp.nodeId] = lp.identity;
      st.nodeMemory[lp.nodeId] = lp.memory;
      st.nodeDisk[lp.nodeId] = lp.disk;
      st.nodeSystem[lp.nodeId] = lp.system;
      st.nodeNetwork[lp.nodeId] = lp.network;
      st.nodeThunderbolt[lp.nodeId] = { interfaces: [] };
      st.nodeRdmaCtl[lp.nodeId] = { enabled: false };
      st.nodeBackends[lp.nodeId] = lp.backends;
      st.topology.nodes.push(lp.nodeId);
    }
    st.lastSeen[this.nodeId] = nowIso();
    for (const p of seen) st.lastSeen[p.nodeId] = new Date(p.lastOk).toISOString();
    // Connections: us <-> each peer we see; peer <-> peer when both are seen and see each other.
    const edge = (host, port) => [{ sinkMultiaddr: { address: `/ip4/${host}/tcp/${port}`, address_type: 'ip4' } }];
    const addConn = (a, b, e) => { (st.topology.connections[a] ??= {})[b] = e; };
    const myHost = (addr) => this.localAddressFor(addr);
    for (const p of seen) {
      const [host] = splitAddr(p.addr);
      addConn(this.nodeId, p.nodeId, edge(host, p.payload.zenohPort));
      addConn(p.nodeId, this.nodeId, edge(myHost(p.addr), this.args.zenoh_port));
      for (const q of seen) {
        if (q.nodeId !== p.nodeId && (p.payload.sees || []).includes(q.nodeId)) {
          addConn(p.nodeId, q.nodeId, edge(splitAddr(q.addr)[0], q.payload.zenohPort));
        }
      }
    }
    return st;
  }

  localAddressFor(peerAddr) {
    const [host] = splitAddr(peerAddr);
    if (host.startsWith('127.')) return '127.0.0.1';
    return this.bind !== '0.0.0.0' ? this.bind : ((ipv4s().find((i) => !i.ipAddress.startsWith('127.')) || {}).ipAddress || '127.0.0.1');
  }

  discovery() {
    return {
      standin: 1, nodeId: this.nodeId, namespaceHash: this.nsHash, hostname: this.hostname,
      apiPort: this.args.api_port, zenohPort: this.args.zenoh_port,
      sees: this.seenPeers().map((p) => p.nodeId), local: this.localPart(),
    };
  }

  // --- discovery over the peers' HTTP API ----------------------------------------------

  pollPeers() {
    for (const addr of this.peersSpec) {
      const [host, port] = splitAddr(addr);
      httpJson('GET', host, port, '/_standin/discovery', null, 900).then((res) => {
        const prev = this.peers.get(addr);
        const b = res.status === 200 ? res.json : null;
        const ok = b && b.standin === 1 && typeof b.nodeId === 'string' && b.nodeId !== this.nodeId && b.namespaceHash === this.nsHash;
        if (!ok) {
          if (b && b.standin === 1 && b.namespaceHash !== this.nsHash && !this.foreign.has(addr)) {
            this.foreign.add(addr);
            logger.debug(`Ignoring peer ${b.nodeId} at ${addr}: another discovery namespace`, 'exo.routing.router:_handle_discovery:2');
          }
          this.peerLost(addr);
          return;
        }
        this.foreign.delete(addr);
        if (prev && prev.nodeId !== b.nodeId) this.peerLost(addr, true);
        const fresh = !this.peers.has(addr) || Date.now() - this.peers.get(addr).lastOk > 3000;
        this.peers.set(addr, { nodeId: b.nodeId, lastOk: Date.now(), payload: b });
        if (fresh) {
          logger.info(`Connected to peer ${b.nodeId} (${b.hostname}) at ${addr}`, 'exo.routing.router:_handle_discovery:1');
          this.record('TopologyEdgeCreated', { conn: { source: this.nodeId, sink: b.nodeId, edge: { sinkMultiaddr: { address: `/ip4/${host}/tcp/${b.zenohPort}`, address_type: 'ip4' } } } });
        }
      }, () => this.peerLost(addr));
    }
    // drop stale entries
    for (const [addr, p] of this.peers) {
      if (Date.now() - p.lastOk > 3000) this.peerLost(addr);
    }
  }

  peerLost(addr, replaced = false) {
    const p = this.peers.get(addr);
    if (!p) return;
    if (!replaced && Date.now() - p.lastOk <= 3000) return; // tolerate a missed poll or two
    this.peers.delete(addr);
    logger.info(`Lost connection to peer ${p.nodeId} at ${addr}`, 'exo.routing.router:_handle_discovery:1');
    this.record('NodeTimedOut', { nodeId: p.nodeId });
  }

  // --- instances ---------------------------------------------------------------------------

  createInstance(c, sharding, meta, nodes) {
    const iid = uuid();
    const runnerToShard = {};
    const nodeToRunner = {};
    const hostsByNode = {};
    const per = Math.ceil(c.nLayers / nodes.length);
    const port = 49153 + crypto.randomInt(16000);
    nodes.forEach((n, rank) => {
      const rid = uuid();
      const start = Math.min(c.nLayers, rank * per);
      const end = Math.min(c.nLayers, (rank + 1) * per);
      const s = sharding === 'Tensor' ? { TensorShardMetadata: shard(c, rank, nodes.length, 0, c.nLayers) } : { PipelineShardMetadata: shard(c, rank, nodes.length, start, end) };
      runnerToShard[rid] = s;
      nodeToRunner[n.nodeId] = rid;
      hostsByNode[n.nodeId] = nodes.map((m) => ({ ip: m.ip, port }));
    });
    const shardAssignments = { modelId: c.modelId, runnerToShard, nodeToRunner };
    const inst = { MlxRingInstance: { instanceId: iid, shardAssignments, hostsByNode, ephemeralPort: port } };
    this.instances.set(iid, inst);
    this.record('InstanceCreated', { instance: inst });
    logger.info(`Instance ${iid} of ${c.modelId} placed on ${nodes.length} node(s)`, 'exo.master.main:_command_processor:1');
    this.runnerStatuses();
    return inst;
  }

  deleteInstance(iid) {
    const inst = this.instances.get(iid);
    if (!inst) return false;
    this.instances.delete(iid);
    this.record('InstanceDeleted', { instanceId: iid });
    logger.info(`Instance ${iid} deleted`, 'exo.master.main:_command_processor:1');
    return true;
  }

  // --- faults ---------------------------------------------------------------------------

  runnerDies() {
    const cause = 'exitcode=1';
    this.failed = { RunnerFailed: { errorMessage: `Terminated (${cause})`, diagnostics: [] } };
    this.runnerStatuses();
    for (const rid of this.runners.keys()) {
      this.runners.set(rid, this.failed);
      this.record('RunnerStatusUpdated', { runnerId: rid, runnerStatus: this.failed });
    }
    const where = 'exo.worker.runner.supervisor:_check_runner';
    const tell = () => {
      logger.info("Checking runner's status", `${where}:1`);
      logger.info('Runner exited with exit code 1', `${where}:2`);
      emit('ERROR', `Runner terminated with ${cause}`, `${where}:3`, loguruTraceback([], 'RuntimeError', 'Runner found to be dead'));
    };
    tell();
    this.every(this.watchdogS * 1000, tell);
  }

  queueClosed() {
    const py = `/nix/store/${[...STORE.slice(11, 43)].reverse().join('')}-python3-3.13.5${PYLIB}`;
    write('Process SpawnProcess-1:\n' + pyTraceback([
      [`${py}/multiprocessing/process.py`, '_bootstrap', 'self.run()'],
      [`${py}/multiprocessing/process.py`, 'run', 'self._target(*self._args, **self._kwargs)'],
      ['exo/worker/runner/bootstrap.py', 'entrypoint', 'event_sender.close()'],
      ['exo/utils/channels.py', 'close', 'self._state.buffer.put(_MpEndOfStream())'],
      [`${py}/multiprocessing/queues.py`, 'put', 'raise ValueError(f"Queue {self!r} is closed")'],
    ], `ValueError: Queue <multiprocessing.queues.Queue object at 0x7f${crypto.randomBytes(5).toString('hex')}> is closed`));
  }

  closedResource() {
    emit('WARNING', 'Error in command processor', 'exo.master.main:_command_processor:1', loguruTraceback([
      ['exo/master/main.py', '_command_processor', 'await self.event_sender.send(event)'],
      ['exo/utils/channels.py', 'send', 'await self._send.send(item)'],
      ['anyio/streams/memory.py', 'send', 'self.send_nowait(item)'],
      ['anyio/streams/memory.py', 'send_nowait', 'raise ClosedResourceError'],
    ], 'anyio.ClosedResourceError', null));
  }

  exitAfter() {
    emit('CRITICAL', 'EXO terminated due to unhandled exception', 'exo.main:main_inner:1', loguruTraceback([
      ['exo/main.py', 'main_inner', 'anyio.run(node.run)'],
      ['exo/worker/main.py', '_forward_info', 'await self.event_sender.send('],
      ['anyio/streams/memory.py', 'send', 'self.send_nowait(item)'],
      ['anyio/streams/memory.py', 'send_nowait', 'raise BrokenResourceError'],
    ], 'anyio.BrokenResourceError', null));
    logger.info('EXO Shutdown complete', 'exo.main:main_inner:2');
    write(pyTraceback([
      [`${STORE}/bin/.exo-wrapped`, '<module>', 'sys.exit(main())'],
      ['exo/main.py', 'main', 'main_inner(args)'],
      ['exo/main.py', 'main_inner', 'anyio.run(node.run)'],
      ['anyio/streams/memory.py', 'send_nowait', 'raise BrokenResourceError'],
    ], 'anyio.BrokenResourceError'));
    process.exit(1);
  }

  after(seconds, fn) { const t = setTimeout(fn, seconds * 1000); this.timers.push(t); return t; }
  every(ms, fn) { const t = setInterval(fn, ms); this.timers.push(t); return t; }

  // --- lifecycle --------------------------------------------------------------------------

  start() {
    const a = this.args;
    const hash = crypto.createHash('sha256').update(this.release.version).digest('hex');
    const b32 = '0123456789abcdfghijklmnpqrsvwxyz';
    STORE = `/nix/store/${[...hash.slice(0, 32)].map((ch) => b32[parseInt(ch, 16) * 2 % 32]).join('')}-exo-${this.release.version}`;

    logger.info(`pid = ${process.pid}`, 'exo.main:main_inner:1');
    logger.info(`EXO_ZENOH_NAMESPACE: ${process.env.EXO_ZENOH_NAMESPACE ?? 'None'}`, 'exo.main:main_inner:2');
    if (a.offline) logger.info('Running in OFFLINE mode — no internet checks, local models only', 'exo.main:main_inner:3');
    if (a.no_batch) logger.info('Continuous batching disabled (--no-batch)', 'exo.main:main_inner:4');
    if (a.fast_synch === true) logger.info('FAST_SYNCH forced ON', 'exo.main:main_inner:5');
    if (a.fast_synch === false) logger.info('FAST_SYNCH forced OFF', 'exo.main:main_inner:5');
    logger.info(
      `exo stand-in: version ${this.release.version}, namespace ${this.namespace}, api port ${a.spawn_api ? a.api_port : 'off'}, zenoh port ${a.zenoh_port}, discovery port ${a.discovery_port}, host ${this.hostname}, fault ${this.fault.kind}${this.fault.seconds ? ':' + this.fault.seconds : ''}`,
      'exo.main:main_inner:6',
    );

    if (a.bootstrap_peers.length) {
      write(pyTraceback([
        [`${STORE}/bin/.exo-wrapped`, '<module>', 'sys.exit(main())'],
        ['exo/main.py', 'main', 'main_inner(args)'],
        ['exo/main.py', 'main_inner', 'raise ValueError("Bootstrap peers has been temporarily removed")'],
      ], 'ValueError: Bootstrap peers has been temporarily removed'));
      process.exit(1);
    }
    if (this.fault.kind === 'crash-on-start') {
      write(pyTraceback([
        [`${STORE}/bin/.exo-wrapped`, '<module>', 'sys.exit(main())'],
        ['exo/main.py', 'main', 'main_inner(args)'],
        ['exo/main.py', 'main_inner', 'node = anyio.run(Node.create, args)'],
        ['anyio/_core/_eventloop.py', 'run', 'return async_backend.run(func, args, {}, backend_options)'],
        ['exo/main.py', 'create', 'router = Router.create('],
      ], "RuntimeError: exo stand-in: injected fault 'crash-on-start'"));
      process.exit(1);
    }

    logger.info(`Starting node ${this.nodeId}`, 'exo.main:create:1');
    if (!a.no_worker && this.release.model) {
      const c = cardFor(this.release.model);
      if (c) this.createInstance(c, 'Pipeline', 'MlxRing', [{ nodeId: this.nodeId, ip: '127.0.0.1' }]);
    }
    if (a.spawn_api) logger.info('Starting API', 'exo.api.main:run:1');

    const f = this.fault;
    const listenAt = f.kind === 'slow-start' ? f.seconds : 0;
    this.after(listenAt, () => this.listen());
    if (f.kind === 'exit-after') this.after(f.seconds, () => this.exitAfter());
    if (f.kind === 'runner-exit') this.after(f.seconds, () => this.runnerDies());
    if (f.kind === 'queue-closed') this.after(f.seconds, () => this.queueClosed());
    if (f.kind === 'closed-resource') this.after(f.seconds, () => this.closedResource());
    if (f.kind !== 'hang') this.every(1000, () => this.pollPeers());

    const stop = (sig) => {
      logger.info(`Received ${sig}, shutting down`, 'exo.main:shutdown:1');
      logger.info('Runner supervisor shutting down', 'exo.worker.runner.supervisor:run:1');
      logger.info('EXO Shutdown complete', 'exo.main:main_inner:7');
      for (const t of this.timers) clearTimeout(t);
      for (const s of this.sockets) s.destroy();
      for (const s of this.servers) s.close();
      process.exit(0);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  }

  listen() {
    const port = this.args.api_port;
    let server;
    if (this.fault.kind === 'hang') {
      // accepts connections, reads requests, never answers
      server = net.createServer((sock) => {
        this.sockets.add(sock);
        sock.on('data', () => {});
        sock.on('error', () => {});
        sock.on('close', () => this.sockets.delete(sock));
      });
    } else {
      server = http.createServer((req, res) => {
        this.handle(req, res).catch((e) => {
          logger.error(`Unhandled error serving ${req.method} ${req.url}: ${e && e.stack}`, 'exo.api.main:_log_requests:1');
          if (!res.headersSent) send(res, 500, 'Internal Server Error', 'text/plain; charset=utf-8');
          else res.end();
        });
      });
      server.keepAliveTimeout = 5000;
      server.on('connection', (sock) => { this.sockets.add(sock); sock.on('close', () => this.sockets.delete(sock)); });
    }
    server.on('error', (e) => {
      // hypercorn failing to bind ends exo with a traceback
      emit('CRITICAL', 'EXO terminated due to unhandled exception', 'exo.main:main_inner:1', loguruTraceback([
        ['exo/api/main.py', 'run_api', 'await serve('],
        ['hypercorn/asyncio/run.py', 'worker_serve', 'server = await loop.create_server('],
      ], 'OSError', `[Errno ${e.errno ?? 98}] error while attempting to bind on address ('${this.bind}', ${port}): ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`));
      logger.info('EXO Shutdown complete', 'exo.main:main_inner:7');
      process.exit(1);
    });
    server.listen(port, this.bind, () => {
      if (this.args.spawn_api) {
        write(`\n  exo stand-in ${this.release.version}: Dashboard & API Ready  http://localhost:${port}\n\n`);
        logger.info(`Running on http://${this.bind}:${port} (CTRL + C to quit)`, 'hypercorn.error:info:1');
      }
    });
    this.servers.push(server);
  }

  // --- HTTP API ---------------------------------------------------------------------------

  async handle(req, res) {
    const url = new URL(req.url || '/', 'http://x');
    const p = decodeURIComponent(url.pathname);
    const m = req.method || 'GET';
    if (!p.startsWith('/_standin/')) logger.debug(`API request: ${m} ${url.pathname}`, 'exo.api.main:_log_requests:1');
    res.setHeader('server', 'hypercorn-h11');
    cors(req, res);
    if (m === 'OPTIONS' && req.headers.origin && req.headers['access-control-request-method']) {
      res.setHeader('access-control-allow-methods', 'DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT');
      res.setHeader('access-control-max-age', '600');
      if (req.headers['access-control-request-headers']) res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers']);
      return send(res, 200, 'OK', 'text/plain; charset=utf-8');
    }

    // stand-in-only routes (replace zenoh / UDP multicast discovery)
    if (p === '/_standin/discovery' && m === 'GET') return sendJson(res, 200, this.discovery());

    if (!this.args.spawn_api) return sendJson(res, 404, { detail: 'Not Found' });

    const http500 = this.fault.kind === 'http-500';
    if (m === 'GET' && p === '/node_id') return sendJson(res, 200, this.nodeId);
    if (m === 'GET' && (p === '/models' || p === '/v1/models')) {
      if (http500) return send(res, 500, 'Internal Server Error', 'text/plain; charset=utf-8');
      return sendJson(res, 200, this.models(url.searchParams.get('status')));
    }
    if (m === 'GET' && (p === '/state' || p.startsWith('/state/'))) {
      if (http500) return send(res, 500, 'Internal Server Error', 'text/plain; charset=utf-8');
      const st = this.state();
      if (p === '/state' || p === '/state/') return sendJson(res, 200, st);
      const sub = p.slice('/state/'.length);
      let x = st;
      try {
        for (const attr of sub.split('/')) {
          if (attr === '') continue;
          if (Array.isArray(x)) {
            if (!/^-?\d+$/.test(attr)) throw new Error('bad index');
            let i = parseInt(attr, 10); if (i < 0) i += x.length;
            if (i < 0 || i >= x.length) throw new Error('out of range');
            x = x[i];
          } else if (x && typeof x === 'object') {
            if (!Object.prototype.hasOwnProperty.call(x, attr)) throw new Error('no key');
            x = x[attr];
          }
        }
      } catch {
        return sendError(res, 404, `unable to find path '${sub.replaceAll('/', '.')}' in state json`);
      }
      return sendJson(res, 200, x);
    }
    if (m === 'POST' && p === '/place_instance') return this.placeInstance(req, res);
    if (m === 'POST' && p === '/instance') {
      await readBody(req);
      return sendJson(res, 501, { detail: 'POST /instance is not implemented by the exo stand-in; use /place_instance' });
    }
    if (m === 'GET' && p === '/instance/previews') return this.previews(url, res);
    const im = /^\/instance\/([^/]+)$/.exec(p);
    if (im && (m === 'GET' || m === 'DELETE')) {
      const iid = im[1];
      const all = this.allInstances();
      if (!all.has(iid)) return sendError(res, 404, 'Instance not found');
      if (m === 'GET') return sendJson(res, 200, all.get(iid));
      if (this.deleteInstance(iid)) {
        return sendJson(res, 200, { message: 'Command received.', command_id: uuid(), instance_id: iid });
      }
      // placed by a peer: the command goes to that peer (exo sends it to the master)
      const owner = this.seenPeers().find((q) => Object.prototype.hasOwnProperty.call(q.payload.local.instances || {}, iid));
      if (!owner) return sendError(res, 404, 'Instance not found');
      const [host, port] = splitAddr(owner.addr);
      const r = await httpJson('DELETE', host, port, `/instance/${encodeURIComponent(iid)}`, null, 3000).catch(() => null);
      if (!r) return sendError(res, 500, 'Failed to reach the node that placed the instance');
      // forget it locally at once so that our /state agrees
      owner.payload.local.instances = { ...owner.payload.local.instances };
      delete owner.payload.local.instances[iid];
      return sendJson(res, r.status, r.json);
    }
    if (m === 'POST' && p === '/v1/chat/completions') return this.chat(req, res);
    if (m === 'GET' && p === '/events') return sendJson(res, 200, this.events);
    if ((m === 'GET' || m === 'HEAD') && (p === '/' || p === '/index.html')) return send(res, 200, this.dashboard(), 'text/html; charset=utf-8');
    // everything else falls through to exo's static-files mount
    if (m === 'GET' || m === 'HEAD') return sendJson(res, 404, { detail: 'Not Found' });
    return sendJson(res, 405, { detail: 'Method Not Allowed' });
  }

  models(status) {
    let cards = CATALOGUE;
    if (status === 'downloaded') {
      const st = this.state();
      const have = new Set();
      for (const list of Object.values(st.downloads)) {
        for (const d of list) if (d.DownloadCompleted) have.add(Object.values(d.DownloadCompleted.shardMetadata)[0].modelCard.modelId);
      }
      cards = cards.filter((c) => have.has(c.modelId));
    }
    const created = Math.floor(Date.now() / 1000);
    return {
      object: 'list',
      data: cards.map((c) => ({
        id: c.modelId, object: 'model', created, owned_by: 'exo', hugging_face_id: c.modelId,
        name: c.modelId.split('/').pop(), description: '', context_length: c.contextLength, tags: [],
        storage_size_megabytes: Math.floor(c.storageSize.inBytes / (1024 * 1024)), supports_tensor: c.supportsTensor,
        tasks: c.tasks, is_custom: false, family: c.family, quantization: c.quantization, base_model: c.baseModel,
        capabilities: c.capabilities, reasoning_dialect: c.reasoningDialect,
      })),
    };
  }

  /** The nodes the master could place on, in order: this node first, then the peers we see. */
  placementNodes() {
    const seen = this.seenPeers().sort((x, y) => (x.nodeId < y.nodeId ? -1 : 1));
    const myIp = seen.length ? this.localAddressFor(seen[0].addr) : '127.0.0.1';
    return [{ nodeId: this.nodeId, ip: myIp }, ...seen.map((q) => ({ nodeId: q.nodeId, ip: splitAddr(q.addr)[0] }))];
  }

  placementError(c, sharding, meta, minNodes) {
    const n = this.args.no_worker ? 0 : this.placementNodes().length;
    if (minNodes > n || minNodes < 1) return 'No cycles found with sufficient memory';
    if (sharding === 'Tensor' && !c.supportsTensor) return `Requested Tensor sharding but this model does not support tensor parallelism: ${c.modelId}`;
    if (meta === 'MlxJaccl') return 'Requested RDMA (MlxJaccl) but no RDMA-connected cycles available';
    return null;
  }

  async placeInstance(req, res) {
    const body = await readJsonBody(req, res);
    if (body === undefined) return;
    const v = validate(body, {
      model_id: { type: 'string', required: true },
      sharding: { enum: ['Pipeline', 'Tensor'], def: 'Pipeline' },
      instance_meta: { enum: ['MlxRing', 'MlxJaccl'], def: 'MlxRing' },
      min_nodes: { type: 'int', def: 1 },
    });
    if (v.errors) return sendJson(res, 422, { detail: v.errors });
    const { model_id: modelId, sharding, instance_meta: meta, min_nodes: minNodes } = v.value;
    const c = cardFor(modelId);
    if (!c) {
      // exo would try to fetch the model card from Hugging Face; the stand-in is offline
      logger.error(`Exception in ASGI application: could not load model card for ${modelId}`, 'hypercorn.error:error:1');
      return send(res, 500, 'Internal Server Error', 'text/plain; charset=utf-8');
    }
    const commandId = uuid();
    sendJson(res, 200, { message: 'Command received.', command_id: commandId, model_card: c });
    // the master processes the command after the API answered, as in exo
    setImmediate(() => {
      const err = this.placementError(c, sharding, meta, minNodes);
      if (err) {
        emit('WARNING', 'Error in command processor', 'exo.master.main:_command_processor:1', loguruTraceback([
          ['exo/master/main.py', '_command_processor', 'placement = place_instance('],
          ['exo/master/placement.py', 'place_instance', `raise ValueError("${err.replaceAll('"', "'")}")`],
        ], 'ValueError', err));
        return;
      }
      this.createInstance(c, sharding, meta, this.placementNodes().slice(0, minNodes));
    });
  }

  previews(url, res) {
    const modelId = url.searchParams.get('model_id');
    if (!modelId) return sendJson(res, 422, { detail: [{ type: 'missing', loc: ['query', 'model_id'], msg: 'Field required', input: null }] });
    const c = cardFor(modelId);
    if (!c) return sendError(res, 400, `Failed to load model card: model ${modelId} is not known to the exo stand-in`);
    const n = this.placementNodes().length;
    const previews = [];
    for (const sharding of ['Pipeline', 'Tensor']) {
      for (const meta of ['MlxRing', 'MlxJaccl']) {
        let failed = false;
        for (let k = 1; k <= n; k++) {
          const err = this.placementError(c, sharding, meta, k);
          if (err) {
            if (!failed) previews.push({ model_id: c.modelId, sharding, instance_meta: meta, instance: null, memory_delta_by_node: null, error: err });
            failed = true;
            continue;
          }
          const nodes = this.placementNodes().slice(0, k);
          const per = Math.floor(c.storageSize.inBytes / k);
          previews.push({
            model_id: c.modelId, sharding, instance_meta: meta, instance: null,
            memory_delta_by_node: Object.fromEntries(nodes.map((x) => [x.nodeId, per])), error: null,
          });
        }
      }
    }
    return sendJson(res, 200, { previews });
  }

  async chat(req, res) {
    const body = await readJsonBody(req, res);
    if (body === undefined) return;
    const v = validate(body, { model: { type: 'string', required: true }, messages: { type: 'array', required: true }, stream: { type: 'bool', def: false } });
    if (v.errors) return sendJson(res, 422, { detail: v.errors });
    const { model, messages, stream } = v.value;
    const st = this.state();
    const inst = Object.values(st.instances).map((i) => Object.values(i)[0]).find((i) => i.shardAssignments.modelId === model);
    if (!inst) return sendError(res, 404, `No instance found for model ${model}`);
    const failed = Object.keys(inst.shardAssignments.runnerToShard).map((r) => st.runners[r]).find((s) => s && s.RunnerFailed);
    const id = `chatcmpl-${uuid()}`;
    const created = Math.floor(Date.now() / 1000);
    const last = [...messages].reverse().find((x) => x && x.role === 'user');
    const prompt = last && typeof last.content === 'string' ? last.content : '';
    const text = `Hello from the exo stand-in on ${this.hostname}.`;
    const pt = Math.max(1, Math.ceil(prompt.length / 4));
    const ct = text.split(' ').length;
    const usage = {
      prompt_tokens: pt, completion_tokens: ct, total_tokens: pt + ct,
      prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 },
    };
    if (failed) {
      return sendError(res, 500, `Runner shutdown before completing command (${failed.RunnerFailed.errorMessage.replace(/^Terminated \((.*)\)$/, '$1')})`);
    }
    if (stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'close', 'x-accel-buffering': 'no' });
      const words = text.split(' ');
      words.forEach((w, i) => {
        const chunk = { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: { role: 'assistant', content: (i ? ' ' : '') + w }, logprobs: null, finish_reason: null }], usage: null };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      });
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: 'stop' }], usage })}\n\n`);
      res.end('data: [DONE]\n\n');
      return;
    }
    return sendJson(res, 200, {
      id, object: 'chat.completion', created, model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: 'stop' }],
      usage, service_tier: null,
    });
  }

  dashboard() {
    const esc = (s) => String(s).replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]);
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>EXO</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;background:#111;color:#eee}code{color:#ffd94d}td,th{padding:.2rem .8rem;text-align:left}</style>
</head><body>
<h1>EXO</h1>
<p>exo stand-in ${esc(this.release.version)} on <code>${esc(this.hostname)}</code>, node <code>${esc(this.nodeId)}</code>, namespace <code>${esc(this.namespace)}</code></p>
<h2>Cluster</h2><table id="nodes"><tr><th>node</th><th>name</th></tr></table>
<h2>Runners</h2><table id="runners"><tr><th>runner</th><th>status</th></tr></table>
<script>
async function refresh(){
  const s = await (await fetch('/state')).json();
  document.getElementById('nodes').innerHTML = '<tr><th>node</th><th>name</th></tr>' + s.topology.nodes.map(n => '<tr><td><code>'+n+'</code></td><td>'+((s.nodeIdentities[n]||{}).friendlyName||'')+'</td></tr>').join('');
  document.getElementById('runners').innerHTML = '<tr><th>runner</th><th>status</th></tr>' + Object.entries(s.runners).map(([r,v]) => '<tr><td><code>'+r+'</code></td><td>'+Object.keys(v)[0]+'</td></tr>').join('');
}
refresh(); setInterval(refresh, 2000);
</script>
</body></html>
`;
  }
}

// ---------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------

function shard(c, rank, world, start = 0, end = c.nLayers) {
  return {
    modelCard: c, deviceRank: rank, worldSize: world, immediateException: false, shouldTimeout: null,
    startLayer: start, endLayer: end, nLayers: c.nLayers,
  };
}

function splitAddr(addr) {
  const i = addr.lastIndexOf(':');
  let host = i > 0 ? addr.slice(0, i) : addr;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return [host, i > 0 ? Number(addr.slice(i + 1)) : 52415];
}

function cors(req, res) {
  const origin = req.headers.origin;
  if (!origin) return;
  res.setHeader('access-control-allow-origin', req.headers.cookie ? origin : '*');
  res.setHeader('access-control-allow-credentials', 'true');
  if (req.headers.cookie) res.setHeader('vary', 'Origin');
}

function send(res, status, body, type) {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'content-type': type, 'content-length': buf.length });
  res.end(buf);
}
function sendJson(res, status, obj) { send(res, status, JSON.stringify(obj), 'application/json'); }

const PHRASES = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 422: 'Unprocessable Entity', 500: 'Internal Server Error', 501: 'Not Implemented' };
/** exo's HTTPException handler: {"error": {"message", "type", "param", "code"}}. */
function sendError(res, status, message) {
  sendJson(res, status, { error: { message, type: PHRASES[status] || 'Error', param: null, code: status } });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => { size += c.length; if (size > 4 * 1024 * 1024) { req.destroy(); reject(new Error('body too large')); } else chunks.push(c); });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** FastAPI-style: invalid JSON or a non-object body is a 422 with a "detail" list. */
async function readJsonBody(req, res) {
  const text = await readBody(req);
  if (text.trim() === '') {
    sendJson(res, 422, { detail: [{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }] });
    return undefined;
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      sendJson(res, 422, { detail: [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: v }] });
      return undefined;
    }
    return v;
  } catch (e) {
    sendJson(res, 422, { detail: [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {}, ctx: { error: String(e.message) } }] });
    return undefined;
  }
}

function validate(body, schema) {
  const errors = [];
  const value = {};
  for (const [k, s] of Object.entries(schema)) {
    const present = Object.prototype.hasOwnProperty.call(body, k);
    if (!present) {
      if (s.required) errors.push({ type: 'missing', loc: ['body', k], msg: 'Field required', input: body });
      else value[k] = s.def;
      continue;
    }
    const x = body[k];
    if (s.enum && !s.enum.includes(x)) {
      errors.push({ type: 'enum', loc: ['body', k], msg: `Input should be ${s.enum.map((e) => `'${e}'`).join(' or ')}`, input: x, ctx: { expected: s.enum.map((e) => `'${e}'`).join(' or ') } });
    } else if (s.type === 'string' && typeof x !== 'string') {
      errors.push({ type: 'string_type', loc: ['body', k], msg: 'Input should be a valid string', input: x });
    } else if (s.type === 'int' && !(Number.isInteger(x) || (typeof x === 'string' && /^-?\d+$/.test(x)))) {
      errors.push({ type: 'int_parsing', loc: ['body', k], msg: 'Input should be a valid integer, unable to parse string as an integer', input: x });
    } else if (s.type === 'array' && !Array.isArray(x)) {
      errors.push({ type: 'list_type', loc: ['body', k], msg: 'Input should be a valid list', input: x });
    } else if (s.type === 'bool' && typeof x !== 'boolean') {
      errors.push({ type: 'bool_type', loc: ['body', k], msg: 'Input should be a valid boolean', input: x });
    } else {
      value[k] = s.type === 'int' ? Number(x) : x;
    }
  }
  return errors.length ? { errors } : { value };
}

function httpJson(method, host, port, urlPath, body, timeoutMs) {
  return new Promise((resolve, reject) => {
    const data = body == null ? null : Buffer.from(JSON.stringify(body));
    const req = http.request({
      host, port, path: urlPath, method, agent: false,
      headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, json, text });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => { req.destroy(new Error('timeout')); }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (data) req.write(data);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.legacy_daemon) {
    argError('argument --legacy-daemon: not supported by the exo stand-in (run exo in the foreground under systemd)');
  }
  log.verbosity = args.verbosity;
  const release = loadRelease();
  const hostname = process.env.EXO_STANDIN_HOSTNAME || os.hostname();
  const node = new Node(args, release, hostname);
  node.start();
}

main();
