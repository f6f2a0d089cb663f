import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/parse-args.js';
import { helpText, COMMANDS, COMMAND_OPTIONS, GLOBAL_OPTIONS } from '../../src/options.js';
import { ExitCode } from '../../src/errors.js';

describe('command line', () => {
  it('accepts global options before and after the command', () => {
    const a = parseCommandLine(['--json', '--hosts', 'a,b', 'check', '--since', '5m']);
    const b = parseCommandLine(['check', '--since', '5m', '--hosts', 'a,b', '--json']);
    expect(a).toEqual(b);
    expect(a).toEqual({
      command: 'check',
      positionals: [],
      options: { json: true, hosts: ['a', 'b'], since: 300_000 },
    });
  });

  it('keeps positionals for the command', () => {
    expect(parseCommandLine(['update', 'exo', 'nixpkgs', '--commit'])).toMatchObject({
      command: 'update',
      positionals: ['exo', 'nixpkgs'],
      options: { commit: true },
    });
    expect(
      parseCommandLine(['backup', 'restore', '20261128-031500-123', '--hosts', 'h1']).positionals,
    ).toEqual(['restore', '20261128-031500-123']);
  });

  it.each([
    [['deploy', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['launch'], /unknown command "launch"/],
    [['deploy', '--since', '5m'], /--since is not an option of "deploy"/],
    [['rollback', '--to', 'two'], /--to takes a whole number, not "two"/],
    [['check', '--since', 'ten'], /--since takes a duration/],
    [['deploy', '--local'], /deploy does not take --local/],
    // a value from a fixed set is checked before anything is built
    [
      ['deploy', '--strategy', 'lockstp'],
      /--strategy takes one of lockstep, rolling, canary, not "lockstp"/,
    ],
  ])('refuses %j with exit 2', (argv, message) => {
    let thrown: unknown;
    try {
      parseCommandLine(argv);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toMatchObject({ exitCode: ExitCode.usage });
    expect((thrown as Error).message).toMatch(message);
  });

  it('documents every option and command in the help text from the one table', () => {
    const help = helpText('9.9.9');
    for (const name of [...Object.keys(GLOBAL_OPTIONS), ...Object.keys(COMMAND_OPTIONS)])
      expect(help).toContain(`--${name}`);
    for (const c of Object.values(COMMANDS)) expect(help).toContain(c.usage);
  });
});
