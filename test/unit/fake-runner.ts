// A fake of the run layer for unit tests of logic: it records every argument array and answers
// from rules. Integration and e2e tests run the real programs instead.
import type { ProcessResult, ProcessRunner, ProcessSpec } from '../../src/run/process.js';

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
    calls.push(spec);
    const answer = rules.map((rule) => rule(spec.argv, spec)).find((a) => a !== undefined) ?? { exitCode: 127, stderr: `fake: no rule for ${spec.argv.join(' ')}` };
    return { argv: spec.argv, exitCode: answer.exitCode ?? 0, stdout: answer.stdout ?? '', stderr: answer.stderr ?? '', durationMs: 1, timedOut: answer.timedOut ?? false };
  };
  return { runner, calls, lines: () => calls.map((c) => c.argv.join(' ')) };
}
