// argv → command, positionals and typed options, from the table in options.ts.
import { parseArgs } from 'node:util';
import { parseDuration } from './config/duration.js';
import { usageError } from './errors.js';
import {
  COMMAND_OPTIONS,
  COMMANDS,
  GLOBAL_OPTIONS,
  type CommandSpec,
  type CommandName,
  type OptionSpec,
  type ParsedOptions,
} from './options.js';

export interface ParsedArgs {
  command: CommandName | undefined;
  positionals: string[];
  options: ParsedOptions;
}

const ALL: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS };

export function parseCommandLine(argv: readonly string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        Object.entries(ALL).map(([name, spec]) => [
          name,
          {
            type: spec.kind === 'boolean' ? 'boolean' : 'string',
            ...(spec.short ? { short: spec.short } : {}),
          },
        ]),
      ),
    });
  } catch (error) {
    throw usageError((error as Error).message.split('\n')[0] as string, 'see `exo-deploy --help`');
  }
  const [first, ...positionals] = parsed.positionals;
  if (first !== undefined && !(first in COMMANDS))
    throw usageError(`unknown command "${first}"`, `commands: ${Object.keys(COMMANDS).join(', ')}`);
  const command = first as CommandName | undefined;
  const options: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(parsed.values)) {
    if (raw === undefined) continue;
    if (
      name in COMMAND_OPTIONS &&
      command &&
      !(COMMANDS[command].options as readonly string[]).includes(name)
    ) {
      throw usageError(
        `--${name} is not an option of "${command}"`,
        `see \`exo-deploy ${command} --help\``,
      );
    }
    options[name] = convert(name, ALL[name] as OptionSpec, raw as string | boolean);
  }
  const spec: CommandSpec | undefined = command ? COMMANDS[command] : undefined;
  if (spec?.ownConfig) {
    const given = (['local', 'config', 'hosts', 'dry-run'] as const).filter(
      (o) => options[o] !== undefined,
    );
    if (given.length)
      throw usageError(
        `${command} takes no ${given.map((o) => `--${o}`).join(', ')}: it acts on this machine alone, with the config it finds in the repository it follows`,
        `see \`exo-deploy ${command} --help\``,
      );
  } else if (options.local && command && !COMMANDS[command].local) {
    throw usageError(
      `${command} does not take --local: it works on the hosts of a config`,
      'run it in your config repo, or pass --config PATH',
    );
  }
  return { command, positionals, options: options as ParsedOptions };
}

function convert(name: string, spec: OptionSpec, raw: string | boolean): unknown {
  if (spec.kind === 'boolean') return raw;
  const text = String(raw);
  switch (spec.kind) {
    case 'integer':
      if (!/^\d+$/.test(text)) throw usageError(`--${name} takes a whole number, not "${text}"`);
      return Number(text);
    case 'duration': {
      const ms = parseDuration(text);
      if (ms === undefined)
        throw usageError(`--${name} takes a duration such as "10m" or "30s", not "${text}"`);
      return ms;
    }
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    case 'choice':
      if (!spec.choices?.includes(text))
        throw usageError(
          `--${name} takes one of ${spec.choices?.join(', ')}, not "${text}"`,
          'nothing was done',
        );
      return text;
    default:
      return text;
  }
}
