import { describe, expect, it } from 'vitest';
import { readClusterView } from '../../src/health/cluster.js';
import { findFailures } from '../../src/health/journal-patterns.js';
import { DEFAULT_JOURNAL_PATTERNS } from '../../src/config/schema.js';
import { parseDf, parseMeminfo, parseReadFiles } from '../../src/programs/coreutils.js';
import { parseJournal } from '../../src/programs/journalctl.js';
import { parseGenerations } from '../../src/programs/nix-env.js';
import { parseUnitState } from '../../src/programs/systemctl.js';
import { diffLocks, parseLock } from '../../src/flake/lock.js';
import { parseRelease } from '../../src/system/generations.js';

describe('nix-env --list-generations', () => {
  it('reads numbers, dates and the current marker', () => {
    const out = '   1   2026-11-01 10:00:00   \n   2   2026-11-20 11:30:05   (current)\n';
    expect(parseGenerations(out)).toEqual([
      { number: 1, date: '2026-11-01 10:00:00', current: false },
      { number: 2, date: '2026-11-20 11:30:05', current: true },
    ]);
    expect(parseGenerations('')).toEqual([]);
  });
});

describe('systemctl show', () => {
  it('reads state, restarts, PID, start time and memory', () => {
    const s = parseUnitState('LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nNRestarts=2\nMainPID=4242\nExecMainStartTimestamp=@1764300000\nMemoryCurrent=123456\n');
    expect(s).toEqual({ loadState: 'loaded', activeState: 'active', subState: 'running', result: 'success', restarts: 2, mainPid: 4242, startedAt: 1_764_300_000_000, memoryBytes: 123456 });
  });
  it('reads the start time to the microsecond (--timestamp=us+utc), as the check asks', () => {
    const s = parseUnitState('ActiveState=active\nExecMainStartTimestamp=Sat 2026-11-28 06:51:34.977505 UTC\n');
    expect(s.startedAt).toBe(Date.UTC(2026, 10, 28, 6, 51, 34, 977));
    expect(parseUnitState('ExecMainStartTimestamp=Sat 2026-11-28 06:51:34 UTC\n').startedAt).toBe(Date.UTC(2026, 10, 28, 6, 51, 34));
  });
  it('treats [not set] memory and an unset start time as unknown', () => {
    const s = parseUnitState('LoadState=not-found\nActiveState=inactive\nMemoryCurrent=[not set]\nExecMainStartTimestamp=\n');
    expect(s.memoryBytes).toBeUndefined();
    expect(s.startedAt).toBeUndefined();
    expect(s.loadState).toBe('not-found');
  });
});

describe('journal', () => {
  it('decodes byte-array messages and strips exo\'s colour codes before matching', () => {
    const coloured = Buffer.from('\x1b[31m[ 03:00:46 | ERROR ] Runner terminated with exitcode=1\x1b[0m');
    const out = [
      JSON.stringify({ __REALTIME_TIMESTAMP: '1764300000000000', MESSAGE: [...coloured] }),
      JSON.stringify({ __REALTIME_TIMESTAMP: '1764300001000000', MESSAGE: 'RuntimeError: Runner found to be dead' }),
      '{"truncated',
    ].join('\n');
    const lines = parseJournal(out);
    expect(lines).toHaveLength(2);
    expect(lines[0]?.message).toBe('[ 03:00:46 | ERROR ] Runner terminated with exitcode=1');
    const matches = findFailures(lines, DEFAULT_JOURNAL_PATTERNS);
    expect(matches.map((m) => m.pattern)).toEqual(['Runner found to be dead']);
  });

  it('matches exo\'s failure strings and /regex/ patterns, not healthy lines', () => {
    const at = 0;
    const lines = [
      { at, message: 'ValueError: Queue <multiprocessing.queues.Queue object at 0x7f3a> is closed' },
      { at, message: 'anyio.ClosedResourceError' },
      { at, message: 'INFO Starting API' },
    ];
    expect(findFailures(lines, DEFAULT_JOURNAL_PATTERNS)).toHaveLength(2);
    expect(findFailures(lines, ['/^INFO .*api$/i'])).toHaveLength(1);
  });
});

describe('/state', () => {
  it('counts topology nodes in list or map form and finds failed runners', () => {
    expect(readClusterView({ topology: { nodes: ['a', 'b'] }, runners: {} }).nodes).toEqual(['a', 'b']);
    expect(readClusterView({ topology: { nodes: [{ nodeId: 'a' }, { nodeId: 'b' }, { nodeId: 'c' }] } }).nodes).toHaveLength(3);
    expect(readClusterView({ topology: { nodes: { a: {}, b: {} } } }).nodes).toEqual(['a', 'b']);
    const v = readClusterView({ topology: { nodes: ['a'] }, runners: { r1: { RunnerReady: {} }, r2: { RunnerFailed: { errorMessage: 'Terminated (exitcode=1)' } } } });
    expect(v.failedRunners).toEqual([{ runner: 'r2', error: 'Terminated (exitcode=1)' }]);
    expect(readClusterView(null).nodes).toEqual([]);
  });
});

describe('host file reads', () => {
  it('df, meminfo and NUL-separated file reads', () => {
    const df = parseDf('Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 1000 400 600 40% /\n', ['/nix/store']);
    expect(df).toEqual([{ path: '/nix/store', mount: '/', totalBytes: 1024000, availableBytes: 614400, usedPercent: 40 }]);
    expect(parseMeminfo('MemTotal:       1000 kB\nMemFree: 1 kB\nMemAvailable:    500 kB\n')).toEqual({ totalBytes: 1024000, availableBytes: 512000 });
    expect([...parseReadFiles('/a\0one\0/b\0\0')]).toEqual([['/a', 'one'], ['/b', '']]);
  });
  it('reads the exo version from the module\'s release.json and from a flat one', () => {
    expect(parseRelease('{"schemaVersion":1,"exo":{"version":"1.0.71"},"namespace":null}')).toEqual({ version: '1.0.71', namespace: null });
    expect(parseRelease('{"schemaVersion":1,"exo":{"version":"1.0.71"},"namespace":"home-lab"}')).toEqual({ version: '1.0.71', namespace: 'home-lab' });
    expect(parseRelease('{"version":"1.0.3"}')).toEqual({ version: '1.0.3', namespace: null });
    expect(parseRelease('')).toBeUndefined();
  });
});

describe('flake.lock diff', () => {
  const lock = (rev: string, modified: number) => parseLock(JSON.stringify({
    version: 7,
    root: 'root',
    nodes: {
      root: { inputs: { exo: 'exo', nixpkgs: 'nixpkgs', follows: ['exo', 'nixpkgs'] } },
      exo: { locked: { type: 'git', url: 'file:///src/exo', rev, lastModified: modified, narHash: `sha256-${rev}` } },
      nixpkgs: { locked: { type: 'github', owner: 'NixOS', repo: 'nixpkgs', rev: 'n1', lastModified: 1, narHash: 'sha256-n' } },
    },
  }));
  it('names each moved input with its old and new revision and date', () => {
    const changes = diffLocks(lock('aaaaaaa111', 1764000000), lock('bbbbbbb222', 1764300000));
    expect(changes.map((c) => [c.name, c.before?.rev, c.after?.rev, c.after?.date])).toEqual([['exo', 'aaaaaaa111', 'bbbbbbb222', '2025-11-28']]);
  });
  it('finds nothing when nothing moved', () => {
    expect(diffLocks(lock('a', 1), lock('a', 1))).toEqual([]);
  });
});
