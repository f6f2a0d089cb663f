import { describe, expect, it } from 'vitest';
import { readRunner } from '../../src/health/cluster.js';
import { findFailures } from '../../src/health/journal-patterns.js';
import { DEFAULT_JOURNAL_PATTERNS } from '../../src/config/schema.js';
import { parseDf, parseMeminfo, parseReadFiles } from '../../src/programs/coreutils.js';
import { parseJournal } from '../../src/programs/journalctl.js';
import { parseGenerations } from '../../src/programs/nix-env.js';
import {
  formatGitLog,
  formatSignature,
  gitError,
  parseGitLog,
  parseSignature,
} from '../../src/programs/git.js';
import { formatBuildOutputs, parseBuildOutputs } from '../../src/programs/nix.js';
import { hasStorePath } from '../../src/programs/nixos-rebuild.js';
import {
  formatFailedUnits,
  formatInvocations,
  parseFailedUnits,
  parseInvocations,
  parseUnitState,
} from '../../src/programs/systemctl.js';
import { reportedFailedUnits } from '../../src/system/failed-units.js';
import { diffLocks, parseLock } from '../../src/flake/lock.js';
import { parseConfigRevision, parseRelease } from '../../src/system/generations.js';
import { BackupMeta } from '../../src/backup/layout.js';

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

describe('nix build --json', () => {
  it('reads the outputs in the order of the installables, as Nix 2.8 prints them, and its inverse', () => {
    const out =
      '[{"drvPath":"/nix/store/h0q-a.drv","outputs":{"out":"/nix/store/ggb-a"}},{"drvPath":"/nix/store/g7n-b.drv","outputs":{"out":"/nix/store/gi2-b"}}]';
    expect(parseBuildOutputs(out)).toEqual(['/nix/store/ggb-a', '/nix/store/gi2-b']);
    expect(parseBuildOutputs(formatBuildOutputs(['/nix/store/x-s1', '/nix/store/y-s2']))).toEqual([
      '/nix/store/x-s1',
      '/nix/store/y-s2',
    ]);
    expect(() => parseBuildOutputs('[{"drvPath":"/nix/store/h0q-a.drv"}]')).toThrow(
      /without outputs.out/,
    );
  });
  it('tells a nixos-rebuild that activates a store path by its --help', () => {
    expect(
      hasStorePath('  --store-path STORE_PATH  activate this system instead of building one'),
    ).toBe(true);
    expect(hasStorePath('usage: nixos-rebuild [--flake FLAKE] [--target-host HOST]')).toBe(false);
  });
});

describe('failed units', () => {
  it('reads `list-units --state=failed --plain` as systemd 252 prints it, and its inverse', () => {
    const out =
      "exo-backup.service      loaded failed failed Backup of exo's state\nexo-healthcheck.service loaded failed failed Health check of exo\n";
    expect(parseFailedUnits(out)).toEqual(['exo-backup.service', 'exo-healthcheck.service']);
    expect(parseFailedUnits(formatFailedUnits(['a@b.service', 'x.timer']))).toEqual([
      'a@b.service',
      'x.timer',
    ]);
    expect(parseFailedUnits('')).toEqual([]);
  });
  it("reads each unit's run (InvocationID) from `systemctl show` blocks, and its inverse", () => {
    const out =
      'Id=exo-backup.service\nInvocationID=4f1c2d\nActiveState=failed\n\nId=exo.service\nInvocationID=\nActiveState=inactive\n';
    const units = parseInvocations(out);
    expect([...units]).toEqual([
      ['exo-backup.service', { invocation: '4f1c2d', activeState: 'failed' }],
      ['exo.service', { invocation: '', activeState: 'inactive' }],
    ]);
    expect(parseInvocations(formatInvocations(units))).toEqual(units);
  });
  it("reads the units switch-to-configuration names, through nixos-rebuild-ng's output", () => {
    const out =
      "activating the configuration...\nwarning: the following units failed: exo-backup.service, exo-healthcheck.service\n\n× exo-backup.service - Backup\nCommand '…' returned non-zero exit status 4.\n";
    expect(reportedFailedUnits(out)).toEqual(['exo-backup.service', 'exo-healthcheck.service']);
    expect(
      reportedFailedUnits('warning: error(s) occurred while switching to the new configuration\n'),
    ).toEqual([]);
  });
});

describe('systemctl show', () => {
  it('reads state, restarts, PID, start time and memory', () => {
    const s = parseUnitState(
      'LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nNRestarts=2\nMainPID=4242\nExecMainStartTimestamp=@1764300000\nMemoryCurrent=123456\n',
    );
    expect(s).toEqual({
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      result: 'success',
      restarts: 2,
      mainPid: 4242,
      startedAt: 1_764_300_000_000,
      memoryBytes: 123456,
    });
  });
  it('reads the start time to the microsecond (--timestamp=us+utc), as the check asks', () => {
    const s = parseUnitState(
      'ActiveState=active\nExecMainStartTimestamp=Sat 2026-11-28 06:51:34.977505 UTC\n',
    );
    expect(s.startedAt).toBe(Date.UTC(2026, 10, 28, 6, 51, 34, 977));
    expect(parseUnitState('ExecMainStartTimestamp=Sat 2026-11-28 06:51:34 UTC\n').startedAt).toBe(
      Date.UTC(2026, 10, 28, 6, 51, 34),
    );
  });
  it('treats [not set] memory and an unset start time as unknown', () => {
    const s = parseUnitState(
      'LoadState=not-found\nActiveState=inactive\nMemoryCurrent=[not set]\nExecMainStartTimestamp=\n',
    );
    expect(s.memoryBytes).toBeUndefined();
    expect(s.startedAt).toBeUndefined();
    expect(s.loadState).toBe('not-found');
  });
});

describe('journal', () => {
  it("decodes byte-array messages and strips exo's colour codes before matching", () => {
    const coloured = Buffer.from(
      '\x1b[31m[ 03:00:46 | ERROR ] Runner terminated with exitcode=1\x1b[0m',
    );
    const out = [
      JSON.stringify({ __REALTIME_TIMESTAMP: '1764300000000000', MESSAGE: [...coloured] }),
      JSON.stringify({
        __REALTIME_TIMESTAMP: '1764300001000000',
        MESSAGE: 'RuntimeError: Runner found to be dead',
      }),
      '{"truncated',
    ].join('\n');
    const lines = parseJournal(out);
    expect(lines).toHaveLength(2);
    expect(lines[0]?.message).toBe('[ 03:00:46 | ERROR ] Runner terminated with exitcode=1');
    const matches = findFailures(lines, DEFAULT_JOURNAL_PATTERNS);
    expect(matches.map((m) => m.pattern)).toEqual([
      'Runner terminated with exitcode=',
      'Runner found to be dead',
    ]);
  });

  it('matches /regex/ patterns', () => {
    const lines = [
      { at: 0, message: 'INFO Starting API' },
      { at: 0, message: 'DEBUG other' },
    ];
    expect(findFailures(lines, ['/^INFO .*api$/i'])).toHaveLength(1);
  });
});

// exo's stderr sink (shared/logging.py, verbosity 0): "[ {time:hh:mm:ss.SSSSA} | <level>{level: <8}</level>]
// <level>{message}</level>", coloured by loguru (ERROR red and bold). journald gives the whole
// line as MESSAGE, as bytes when it holds escape codes; traceback lines and print() come bare.
const ANSI_LEVEL: Record<string, string> = {
  INFO: '\x1b[1m',
  WARNING: '\x1b[33m\x1b[1m',
  ERROR: '\x1b[31m\x1b[1m',
  CRITICAL: '\x1b[41m\x1b[1m',
};
const loguru = (level: keyof typeof ANSI_LEVEL, message: string) => {
  const c = ANSI_LEVEL[level];
  return `[ 03:04:05.1234PM | ${c}${level.padEnd(8)}\x1b[0m] ${c}${message}\x1b[0m`;
};
const journalOf = (messages: readonly string[]) =>
  parseJournal(
    messages
      .map((m, i) =>
        JSON.stringify({
          __REALTIME_TIMESTAMP: String((1_764_300_000 + i) * 1_000_000),
          MESSAGE: [...Buffer.from(m)],
        }),
      )
      .join('\n'),
  );

describe('the default journal patterns, against the lines exo writes', () => {
  const failures: [pattern: string, line: string][] = [
    ['Runner terminated with exitcode=', loguru('ERROR', 'Runner terminated with exitcode=1')],
    ['Runner terminated with signal=', loguru('ERROR', 'Runner terminated with signal=9 (Killed)')],
    ['Runner found to be dead', 'RuntimeError: Runner found to be dead'],
    [
      'crashed with critical exception',
      loguru(
        'WARNING',
        'Runner 7f3e1b2a-0c4d-4e5f-8a9b-0c1d2e3f4a5b crashed with critical exception CUDA error: out of memory',
      ),
    ],
    [
      'Runner communication closed unexpectedly',
      loguru('WARNING', 'Runner communication closed unexpectedly'),
    ],
    [
      'runner closed communication',
      loguru('WARNING', 'Task TextGeneration(task_id=9a1b) dropped, runner closed communication.'),
    ],
    [
      'Event sender already closed, unable to report runner failure',
      loguru('WARNING', 'Event sender already closed, unable to report runner failure'),
    ],
    [
      'retries, requesting deletion',
      loguru(
        'WARNING',
        'Instance 2c9d4e6f-1a2b-4c3d-9e8f-7a6b5c4d3e2f exceeded 5 retries, requesting deletion',
      ),
    ],
    [
      'EXO terminated due to unhandled exception',
      loguru('CRITICAL', 'EXO terminated due to unhandled exception'),
    ],
    ['ClosedResourceError', 'anyio.ClosedResourceError'],
    ['BrokenResourceError', 'anyio.BrokenResourceError'],
    ['Unreachable code path - let me know!', 'Unreachable code path - let me know!'],
    [
      '/Queue .* is closed/',
      'ValueError: Queue <multiprocessing.queues.Queue object at 0x7f3a2c1b9d50> is closed',
    ],
  ];

  it('lists exactly these patterns', () => {
    expect([...DEFAULT_JOURNAL_PATTERNS].sort()).toEqual(failures.map(([p]) => p).sort());
  });

  it.each(failures)("%s matches exo's line, coloured as exo writes it", (pattern, line) => {
    const matches = findFailures(journalOf([line]), DEFAULT_JOURNAL_PATTERNS);
    expect(matches.map((m) => m.pattern)).toEqual([pattern]);
    expect(matches[0]?.message).not.toContain('\x1b');
  });

  it('leaves healthy exo lines alone, a clean runner exit among them', () => {
    const healthy = [
      loguru('INFO', 'Runner exited with exit code 0'),
      loguru('INFO', 'Runner exited with exit code 1'),
      loguru('INFO', "Checking runner's status"),
      loguru('INFO', 'Worker plan: CreateRunner'),
      loguru('INFO', 'Worker plan: Shutdown'),
      loguru('INFO', 'Starting API on 0.0.0.0:52415'),
      loguru('WARNING', 'Runner stderr: Fetching 7 files: 100%'),
    ];
    expect(findFailures(journalOf(healthy), DEFAULT_JOURNAL_PATTERNS)).toEqual([]);
  });
});

describe('host file reads', () => {
  it('df, meminfo and NUL-separated file reads', () => {
    const df = parseDf(
      'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 1000 400 600 40% /\n',
      ['/nix/store'],
    );
    expect(df).toEqual([
      {
        path: '/nix/store',
        mount: '/',
        totalBytes: 1024000,
        availableBytes: 614400,
        usedPercent: 40,
      },
    ]);
    expect(
      parseMeminfo('MemTotal:       1000 kB\nMemFree: 1 kB\nMemAvailable:    500 kB\n'),
    ).toEqual({ totalBytes: 1024000, availableBytes: 512000 });
    expect([...parseReadFiles('/a\0one\0/b\0\0')]).toEqual([
      ['/a', 'one'],
      ['/b', ''],
    ]);
  });
  it("reads which exo a system carries from the module's release.json, schema 2", () => {
    const v2 = (exo: object, namespace: string | null) =>
      JSON.stringify({
        schemaVersion: 2,
        exo,
        namespace,
        ports: { api: 52415, libp2p: null, zenoh: 52414, discovery: 52413 },
        stateDir: '/var/lib/exo',
      });
    const rev = 'b5375f8ce0a1b2c3d4e5f60718293a4b5c6d7e8f';
    expect(
      parseRelease(
        v2(
          {
            version: '1.0.71',
            identity: '1.0.71',
            revision: null,
            package: '/nix/store/abc-exo-1.0.71',
            era: 'libp2p',
          },
          null,
        ),
      ),
    ).toEqual({
      identity: '1.0.71',
      version: '1.0.71',
      revision: null,
      package: '/nix/store/abc-exo-1.0.71',
      era: 'libp2p',
      namespace: null,
      gpuDriver: null,
      rebootGuard: null,
      configRevision: null,
    });
    // exo's own flake builds exo with no version: the identity is what names it
    expect(
      parseRelease(
        v2(
          {
            version: '',
            identity: 'b5375f8ce0a1',
            revision: rev,
            package: '/nix/store/def-exo',
            era: 'zenoh',
          },
          'home-cluster',
        ),
      ),
    ).toEqual({
      identity: 'b5375f8ce0a1',
      version: '',
      revision: rev,
      package: '/nix/store/def-exo',
      era: 'zenoh',
      namespace: 'home-cluster',
      gpuDriver: null,
      rebootGuard: null,
      configRevision: null,
    });
    expect(
      parseRelease(v2({ version: '', identity: 'def-exo', era: 'martian' }, '  ')),
    ).toMatchObject({
      identity: 'def-exo',
      era: null,
      namespace: null,
      revision: null,
      package: null,
    });
  });

  it('reads the GPU driver a CUDA system runs exo with', () => {
    const release = (gpu: unknown) =>
      parseRelease(JSON.stringify({ schemaVersion: 2, exo: { version: '1.0.71' }, gpu }));
    const driver = '/nix/store/n1d1aaaaaaaaaaaaaaaaaaaaaaaaaaaa-nvidia-x11-570.86.16-6.6.52';
    expect(release({ driver })?.gpuDriver).toBe(driver);
    expect(release(null)?.gpuDriver).toBeNull();
    expect(release({ driver: '' })?.gpuDriver).toBeNull();
  });

  it("reads the folder the system's reboot guard arms its timer from", () => {
    const release = (rebootGuard: unknown) =>
      parseRelease(JSON.stringify({ schemaVersion: 2, exo: { version: '1.0.71' }, rebootGuard }));
    expect(release('/var/lib/exo-deploy/reboot-guard')?.rebootGuard).toBe(
      '/var/lib/exo-deploy/reboot-guard',
    );
    expect(release(undefined)?.rebootGuard).toBeNull();
    expect(release(true)?.rebootGuard).toBeNull();
  });

  it('still reads schema 1 and a flat {version}, with the era unknown', () => {
    expect(
      parseRelease('{"schemaVersion":1,"exo":{"version":"1.0.71"},"namespace":"home-lab"}'),
    ).toEqual({
      identity: '1.0.71',
      version: '1.0.71',
      revision: null,
      package: null,
      era: null,
      namespace: 'home-lab',
      gpuDriver: null,
      rebootGuard: null,
      configRevision: null,
    });
    expect(parseRelease('{"version":"1.0.3"}')).toMatchObject({
      identity: '1.0.3',
      era: null,
      namespace: null,
    });
    // a build without a version, before identities: named 'unknown', never ''
    expect(parseRelease('{"schemaVersion":1,"exo":{"version":""}}')).toMatchObject({
      identity: 'unknown',
      version: '',
    });
    for (const bad of ['', 'null', '[]', '{"schemaVersion":2,"exo":{}}', '{"exo":{"version":3}}'])
      expect(parseRelease(bad)).toBeUndefined();
  });
});

describe('backup.json', () => {
  const meta = {
    id: '20261128-031500-123',
    host: 'h1',
    createdAt: '2026-11-28T03:15:00Z',
    reason: 'r',
    systemPath: null,
    generation: 4,
    healthy: true,
    stateDir: '/var/lib/exo',
    files: [],
    models: false,
  };
  it('reads the exo a backup was taken from, also from backups that named it exoVersion', () => {
    expect(BackupMeta.parse({ ...meta, exo: 'b5375f8ce0a1' }).exo).toBe('b5375f8ce0a1');
    expect(BackupMeta.parse({ ...meta, exoVersion: '1.0.70' }).exo).toBe('1.0.70');
    expect(() => BackupMeta.parse(meta)).toThrow();
  });
});

describe('flake.lock diff', () => {
  const lock = (rev: string, modified: number) =>
    parseLock(
      JSON.stringify({
        version: 7,
        root: 'root',
        nodes: {
          root: { inputs: { exo: 'exo', nixpkgs: 'nixpkgs', follows: ['exo', 'nixpkgs'] } },
          exo: {
            locked: {
              type: 'git',
              url: 'file:///src/exo',
              rev,
              lastModified: modified,
              narHash: `sha256-${rev}`,
            },
          },
          nixpkgs: {
            locked: {
              type: 'github',
              owner: 'NixOS',
              repo: 'nixpkgs',
              rev: 'n1',
              lastModified: 1,
              narHash: 'sha256-n',
            },
          },
        },
      }),
    );
  it('names each moved input with its old and new revision and date', () => {
    const changes = diffLocks(lock('aaaaaaa111', 1764000000), lock('bbbbbbb222', 1764300000));
    expect(changes.map((c) => [c.name, c.before?.rev, c.after?.rev, c.after?.date])).toEqual([
      ['exo', 'aaaaaaa111', 'bbbbbbb222', '2025-11-28'],
    ]);
  });
  it('finds nothing when nothing moved', () => {
    expect(diffLocks(lock('a', 1), lock('a', 1))).toEqual([]);
  });
});

describe('text from a host is made printable', () => {
  it('drops colours, OSC titles and links, cursor moves and control characters from journal lines and runner errors', () => {
    const nasty =
      '\x1b[31mERROR\x1b[0m \x1b]0;owned\x07title \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ \x1b[2J\x1b[Hcleared\x07\x08 done\tok';
    const [line] = parseJournal(
      `${JSON.stringify({ __REALTIME_TIMESTAMP: '1000000', MESSAGE: nasty })}\n`,
    );
    expect(line?.message).toBe('ERROR title link cleared done\tok');
    expect(
      readRunner({ RunnerFailed: { errorMessage: `Terminated (exitcode=1)\n${nasty}` } }).error,
    ).toBe('Terminated (exitcode=1)\nERROR title link cleared done\tok');
  });
});

describe('git log, one "HASH TAB SUBJECT" line per commit', () => {
  it('reads each commit back, a subject with tabs of its own whole, an empty one empty', () => {
    const commits = [
      { rev: 'a'.repeat(40), subject: 'exo: runner\tfix (see #12)' },
      { rev: 'b'.repeat(40), subject: '' },
    ];
    expect(parseGitLog(formatGitLog(commits))).toEqual(commits);
    expect(parseGitLog('')).toEqual([]);
  });
});

describe("git's judgement of a signature and its errors", () => {
  it('reads %G?, the key and the signer back; an unsigned commit has neither', () => {
    const good = { status: 'G', key: 'SHA256:abc', signer: 'ops@example.org' };
    expect(parseSignature(formatSignature(good))).toEqual(good);
    expect(parseSignature('N\t\t\n')).toEqual({ status: 'N', key: '', signer: '' });
  });

  it("takes git's fatal line, not the advice after it", () => {
    expect(
      gitError(
        "fatal: '/srv/nowhere' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n",
      ),
    ).toBe("'/srv/nowhere' does not appear to be a git repository");
    expect(gitError('warning: something\nthe last line\n')).toBe('the last line');
  });
});

describe('the config revision a system records', () => {
  const A = 'a'.repeat(40);
  it('names a commit, with or without changes on top, or none', () => {
    expect(parseConfigRevision(A)).toEqual({ commit: A, dirty: false });
    expect(parseConfigRevision(`${A}-dirty`)).toEqual({ commit: A, dirty: true });
    expect(parseConfigRevision('dirty')).toEqual({ commit: null, dirty: true });
    // not a whole commit: no commit is read from it
    expect(parseConfigRevision('a'.repeat(39))).toEqual({ commit: null, dirty: false });
    expect(parseConfigRevision(`${A}b`)).toEqual({ commit: null, dirty: false });
  });
});
