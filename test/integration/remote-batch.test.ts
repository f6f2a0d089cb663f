// The batch of reads that share one ssh session, run by the real shells a host may have
// (dash is Debian's sh, NixOS's sh is bash): each command's stdout, stderr and exit status
// come back apart and whole, whatever they contain.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { execaRunner } from '../../src/run/process.js';
import { batchArgv, newMarker, parseBatchOutput } from '../../src/run/remote-batch.js';

const shells = ['sh', 'bash', 'dash'].filter((s) => {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', s]);
    return true;
  } catch {
    return false;
  }
});

const commands: string[][] = [
  ['printf', '%s', 'no newline at the end'],
  ['sh', '-c', 'echo out; echo err >&2; exit 3'],
  ['printf', '%s\n\n', 'it\'s "quoted" — ünïcödé, $HOME `id` ;|&'],
  ['sh', '-c', 'sleep 0.3; echo slow'],
  ['true'],
  ['no-such-program-here'],
];

describe.each(shells)('the batch script in %s', (shell) => {
  it("returns each command's stdout, stderr and exit status, in order", async () => {
    const marker = await newMarker();
    const argv = batchArgv(commands, marker);
    const whole = await execaRunner()({ argv: [shell, ...argv.slice(1)], timeoutMs: 10_000 });
    expect(whole.exitCode).toBe(0);
    const results = parseBatchOutput(whole, marker, commands);
    expect(results.map((r) => [r.stdout, r.stderr, r.exitCode])).toEqual([
      ['no newline at the end', '', 0],
      ['out\n', 'err\n', 3],
      ['it\'s "quoted" — ünïcödé, $HOME `id` ;|&\n\n', '', 0],
      ['slow\n', '', 0],
      ['', '', 0],
      ['', expect.stringContaining('no-such-program-here'), 127],
    ]);
  });

  it("gives the commands it did not finish the session's failure, and leaves none running", async () => {
    const marker = await newMarker();
    const slow = [['true'], ['sleep', '7.25']];
    const whole = await execaRunner()({
      argv: [shell, ...batchArgv(slow, marker).slice(1)],
      timeoutMs: 500,
    });
    const [first, second] = parseBatchOutput(whole, marker, slow);
    expect(whole.timedOut).toBe(true);
    expect(first).toMatchObject({ exitCode: 0, timedOut: false });
    expect(second).toMatchObject({ timedOut: true });
    expect(second!.exitCode).not.toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toContain('sleep 7.25');
  });
});
