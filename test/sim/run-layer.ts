// A fake of the run layer for unit tests of logic (and the simulated fleet of the scale
// benchmark): it answers from rules, and records every argument array. Integration and e2e
// tests run the real programs instead.
import type { ProcessResult, ProcessRunner, ProcessSpec } from '../../src/run/process.js';
import { batchCommands, formatBatchOutput } from '../../src/run/remote-batch.js';
import { shellUnquote } from '../../src/run/shell-quote.js';

type Answer = Partial<Pick<ProcessResult, 'exitCode' | 'stdout' | 'stderr' | 'timedOut'>>;
/** An answer, or undefined for the next rule; a promise for one that takes time. */
export type Rule = (
  argv: readonly string[],
  spec: ProcessSpec,
) => Answer | undefined | Promise<Answer | undefined>;

export interface FakeRunner {
  runner: ProcessRunner;
  calls: ProcessSpec[];
  /** The argv of every call, joined with spaces, for readable assertions. */
  lines(): string[];
}

export function fakeRunner(...rules: Rule[]): FakeRunner {
  return runnerOf(rules, true);
}

/**
 * The same without the record of calls: a fleet of 1,000 hosts makes tens of thousands. The
 * scale benchmark's (bench/sim/fleet-module.mjs bundles it).
 * @public
 */
export function answeringRunner(...rules: Rule[]): ProcessRunner {
  return runnerOf(rules, false).runner;
}

function runnerOf(rules: Rule[], record: boolean): FakeRunner {
  const calls: ProcessSpec[] = [];
  /** The first rule's answer, at once unless a rule takes time. */
  const answerOf = (spec: ProcessSpec, from = 0): Answer | Promise<Answer> => {
    for (let i = from; i < rules.length; i++) {
      const answer = rules[i]!(spec.argv, spec);
      if (answer instanceof Promise) return answer.then((a) => a ?? answerOf(spec, i + 1));
      if (answer !== undefined) return answer;
    }
    return { exitCode: 127, stderr: `fake: no rule for ${spec.argv.join(' ')}` };
  };
  const result = (argv: readonly string[], answer: Answer): ProcessResult => ({
    argv,
    exitCode: answer.exitCode ?? 0,
    stdout: answer.stdout ?? '',
    stderr: answer.stderr ?? '',
    durationMs: 1,
    timedOut: answer.timedOut ?? false,
  });
  const runner: ProcessRunner = async (spec) => {
    // Reads batched into one process (an ssh session, or a local shell) are answered (and
    // recorded) one by one, as if each ran alone; ssh failing (255) fails the whole session.
    // Only a command line that starts with sh can be a batch: the others are unquoted once.
    const last = spec.argv.at(-1) ?? '';
    const remote = spec.argv[0] === 'ssh' && last.startsWith('sh ') ? shellUnquote(last) : null;
    const batch = batchCommands(remote ?? spec.argv);
    const session = remote ? spec.argv.slice(0, -1) : [];
    const alone = batch
      ? batch.commands.map((command) => ({
          ...spec,
          argv: remote ? [...session, command] : shellUnquote(command),
        }))
      : [spec];
    if (record) calls.push(...alone);
    const pending = alone.map((one) => answerOf(one));
    const answers = pending.some((a) => a instanceof Promise)
      ? await Promise.all(pending)
      : (pending as Answer[]);
    const results = answers.map((answer, i) => result(alone[i]!.argv, answer));
    if (!batch) return results[0]!;
    const sshFailed = results.find((r) => r.exitCode === 255);
    return sshFailed
      ? { ...sshFailed, argv: spec.argv }
      : result(spec.argv, { stdout: formatBatchOutput(batch.marker, results) });
  };
  return { runner, calls, lines: () => calls.map((c) => c.argv.join(' ')) };
}
