// A fake of the run layer for unit tests of logic: it records every argument array and answers
// from rules. Integration and e2e tests run the real programs instead.
import type { ProcessResult, ProcessRunner, ProcessSpec } from '../../src/run/process.js';
import { batchCommands, formatBatchOutput } from '../../src/run/remote-batch.js';
import { shellUnquote } from '../../src/run/shell-quote.js';

type Answer = Partial<Pick<ProcessResult, 'exitCode' | 'stdout' | 'stderr' | 'timedOut'>>;
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
    // Reads batched into one process (an ssh session, or a local shell) are answered (and
    // recorded) one by one, as if each ran alone; ssh failing (255) fails the whole session.
    const remote = spec.argv[0] === 'ssh' ? shellUnquote(spec.argv.at(-1) ?? '') : null;
    const batch = batchCommands(remote ?? spec.argv);
    if (batch) {
      const alone = (command: string) =>
        remote ? [...spec.argv.slice(0, -1), command] : shellUnquote(command);
      const results = await Promise.all(
        batch.commands.map((command) => runner({ ...spec, argv: alone(command) })),
      );
      const sshFailed = results.find((r) => r.exitCode === 255);
      return sshFailed
        ? { ...sshFailed, argv: spec.argv }
        : {
            argv: spec.argv,
            exitCode: 0,
            stdout: formatBatchOutput(batch.marker, results),
            stderr: '',
            durationMs: 1,
            timedOut: false,
          };
    }
    calls.push(spec);
    const answer = rules.map((rule) => rule(spec.argv, spec)).find((a) => a !== undefined) ?? {
      exitCode: 127,
      stderr: `fake: no rule for ${spec.argv.join(' ')}`,
    };
    return {
      argv: spec.argv,
      exitCode: answer.exitCode ?? 0,
      stdout: answer.stdout ?? '',
      stderr: answer.stderr ?? '',
      durationMs: 1,
      timedOut: answer.timedOut ?? false,
    };
  };
  return { runner, calls, lines: () => calls.map((c) => c.argv.join(' ')) };
}
