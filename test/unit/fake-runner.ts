// A fake of the run layer for unit tests of logic: it records every argument array and answers
// from rules. Integration and e2e tests run the real programs instead.
import type { ProcessResult, ProcessRunner, ProcessSpec } from '../../src/run/process.js';
import { batchCommands, formatBatchOutput } from '../../src/run/remote-batch.js';
import { shellUnquote } from '../../src/run/shell-quote.js';

export type Answer = Partial<Pick<ProcessResult, 'exitCode' | 'stdout' | 'stderr' | 'timedOut'>>;
export type Rule = (argv: readonly string[], spec: ProcessSpec) => Answer | undefined;

export interface FakeRunner {
  runner: ProcessRunner;
  calls: ProcessSpec[];
  /** The argv of every call, joined with spaces, for readable assertions. */
  lines(): string[];
}

export function fakeRunner(...rules: Rule[]): FakeRunner {
  const calls: ProcessSpec[] = [];
  const runner: ProcessRunner = async (spec) => {
    // Reads batched into one ssh session are answered (and recorded) one by one, as if each
    // had its own session; ssh failing (255) fails the whole session.
    const batch = spec.argv[0] === 'ssh' ? batchCommands(shellUnquote(spec.argv.at(-1) ?? '')) : null;
    if (batch) {
      const results = await Promise.all(batch.commands.map((command) => runner({ ...spec, argv: [...spec.argv.slice(0, -1), command] })));
      const sshFailed = results.find((r) => r.exitCode === 255);
      return sshFailed ? { ...sshFailed, argv: spec.argv } : { argv: spec.argv, exitCode: 0, stdout: formatBatchOutput(batch.marker, results), stderr: '', durationMs: 1, timedOut: false };
    }
    calls.push(spec);
    const answer = rules.map((rule) => rule(spec.argv, spec)).find((a) => a !== undefined) ?? { exitCode: 127, stderr: `fake: no rule for ${spec.argv.join(' ')}` };
    return { argv: spec.argv, exitCode: answer.exitCode ?? 0, stdout: answer.stdout ?? '', stderr: answer.stderr ?? '', durationMs: 1, timedOut: answer.timedOut ?? false };
  };
  return { runner, calls, lines: () => calls.map((c) => c.argv.join(' ')) };
}
