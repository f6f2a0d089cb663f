#!/usr/bin/env node
// The entry point: parse, dispatch to one command module, print, exit. Only this file exits.
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { ExitCode, ExoDeployError, InterruptedError, usageError } from './errors.js';
import { COMMANDS, helpText, type CommandSpec } from './options.js';
import { parseCommandLine } from './parse-args.js';
import type { Outcome } from './output/outcome.js';

const version = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

async function main(argv: string[]): Promise<number> {
  let json = argv.includes('--json');
  const controller = new AbortController();
  // Every running child listens on this one signal; a check of a fleet runs many at once.
  setMaxListeners(0, controller.signal);
  // First Ctrl-C: cancel what runs and let the command leave a consistent, reported state;
  // a second one ends at once. The handler stays installed (not `once`): execa's exit hook
  // re-raises a signal that no other listener handles, which would kill us mid-cleanup.
  let interrupts = 0;
  const onSignal = () => {
    interrupts += 1;
    if (interrupts === 1) controller.abort(new InterruptedError());
    else process.exit(ExitCode.interrupted);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let close = async () => {};
  try {
    const args = parseCommandLine(argv);
    json = Boolean(args.options.json);
    if (args.options.version) return print(`${version}\n`);
    if (args.options.help) return print(`${helpText(version)}\n`);
    if (!args.command) throw usageError('no command given', 'see `exo-deploy --help`');
    const [{ createContext }, { execaRunner }, { stderrLog }, command] = await Promise.all([
      import('./context.js'),
      import('./run/process.js'),
      import('./output/log.js'),
      import(`./commands/${args.command}.js`) as Promise<{
        run: (ctx: import('./context.js').Context) => Promise<Outcome>;
      }>,
    ]);
    const log = stderrLog({ verbose: Boolean(args.options.verbose), json });
    const spec: CommandSpec = COMMANDS[args.command];
    const options = spec.ownConfig ? { ...args.options, local: true } : args.options;
    const ctx = await createContext(options, args.positionals, {
      runner: execaRunner(controller.signal),
      cleanupRunner: execaRunner(),
      log,
      signal: controller.signal,
    });
    close = ctx.close;
    const outcome = await command.run(ctx);
    print(json ? `${JSON.stringify(outcome.data, null, 2)}\n` : `${outcome.text}\n`);
    return outcome.exitCode;
  } catch (caught) {
    const error =
      controller.signal.aborted && !(caught instanceof ExoDeployError)
        ? new InterruptedError()
        : caught;
    if (error instanceof InterruptedError) {
      process.stderr.write('interrupted\n');
      return error.exitCode;
    }
    return reportError(error, json);
  } finally {
    await close();
  }
}

function print(text: string): number {
  process.stdout.write(text);
  return ExitCode.ok;
}

function reportError(error: unknown, json: boolean): number {
  const known = error instanceof ExoDeployError ? error : undefined;
  const exitCode = known?.exitCode ?? ExitCode.failed;
  const message =
    known?.message ?? (error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.stderr.write(
    `error: ${message}\n${known?.details.hint ? `hint: ${known.details.hint}\n` : ''}`,
  );
  if (json)
    process.stdout.write(
      `${JSON.stringify({ ok: false, error: { message, exitCode, host: known?.details.host, hint: known?.details.hint } }, null, 2)}\n`,
    );
  return exitCode;
}

const code = await main(process.argv.slice(2));
// Flush stdout before exiting: a pipe may still hold the JSON document.
process.stdout.write('', () => process.exit(code));
