// One table of options drives parsing, the help text and the types the commands receive.
import { REBOOT_POLICIES } from './config/reboot.js';
import { STRATEGIES } from './config/strategy.js';

type OptionKind = 'boolean' | 'string' | 'integer' | 'duration' | 'list' | 'choice';

export interface OptionSpec {
  kind: OptionKind;
  short?: string;
  arg?: string;
  /** kind 'choice': the values it takes, checked when the command line is read. */
  choices?: readonly string[];
  description: string;
}

export const GLOBAL_OPTIONS = {
  config: {
    kind: 'string',
    short: 'c',
    arg: 'PATH',
    description: 'the config file (default: ./exo-deploy.toml)',
  },
  hosts: {
    kind: 'list',
    arg: 'a,b',
    description: 'only these hosts (default: all hosts in the config)',
  },
  local: {
    kind: 'boolean',
    description:
      "act on this machine with defaults and no config file (what the module's timers run)",
  },
  json: { kind: 'boolean', description: 'print one JSON document on stdout' },
  verbose: { kind: 'boolean', short: 'v', description: 'show each program run, with its duration' },
  'dry-run': {
    kind: 'boolean',
    short: 'n',
    description: 'print what would change the hosts, and change nothing',
  },
  help: { kind: 'boolean', short: 'h', description: 'show help' },
  version: { kind: 'boolean', description: 'show the version' },
} as const satisfies Record<string, OptionSpec>;

/** Options that only some commands take; each command lists which. */
export const COMMAND_OPTIONS = {
  since: {
    kind: 'duration',
    arg: 'DURATION',
    description: 'look at the journal this far back (default: 10m)',
  },
  api: {
    kind: 'string',
    arg: 'URL',
    description: "exo's API (--local; default http://127.0.0.1:52415)",
  },
  unit: {
    kind: 'string',
    arg: 'NAME',
    description: "exo's systemd unit (--local; default exo.service)",
  },
  'expect-nodes': {
    kind: 'integer',
    arg: 'N',
    description: 'how many nodes /state should show (default: the hosts checked together)',
  },
  'state-dir': {
    kind: 'string',
    arg: 'PATH',
    description: "exo's state folder (--local; default /var/lib/exo)",
  },
  'status-file': {
    kind: 'string',
    arg: 'PATH',
    description: 'also write the result as JSON to this file (atomically)',
  },
  textfile: {
    kind: 'string',
    arg: 'PATH',
    description: 'also write a Prometheus textfile for node-exporter (atomically)',
  },
  commit: {
    kind: 'boolean',
    description: 'commit flake.lock with a message that lists the changes',
  },
  branch: {
    kind: 'string',
    arg: 'NAME',
    description:
      'update: commit flake.lock on a new branch NAME made from HEAD, for review (the branch checked out and the working tree are left as they are); pull: the branch to follow (default main)',
  },
  url: {
    kind: 'string',
    arg: 'URL',
    description: "the config repository's git URL (ssh, https, git or file)",
  },
  'host-name': {
    kind: 'string',
    arg: 'NAME',
    description:
      "this host's name in the repository's exo-deploy.toml and nixosConfigurations (default: the machine's host name)",
  },
  'repo-config': {
    kind: 'string',
    arg: 'PATH',
    description: 'the exo-deploy.toml in the repository, from its top (default exo-deploy.toml)',
  },
  'allowed-signers': {
    kind: 'string',
    arg: 'FILE',
    description:
      "git's allowed-signers file: only commits that one of its SSH keys signed are deployed",
  },
  'pull-dir': {
    kind: 'string',
    arg: 'PATH',
    description:
      'where pull keeps its state, mirror, journal and reports (default /var/lib/exo-deploy/pull)',
  },
  to: {
    kind: 'integer',
    arg: 'N',
    description: 'the generation to activate (default: the one before the current)',
  },
  last: {
    kind: 'boolean',
    description: 'return every host the last deploy touched to the system it ran before',
  },
  dir: {
    kind: 'string',
    arg: 'PATH',
    description: 'the backup folder on the host (--local; default /var/backups/exo)',
  },
  keep: {
    kind: 'integer',
    arg: 'N',
    description: 'how many backups prune keeps (default from the config: 10)',
  },
  models: { kind: 'boolean', description: "also archive exo's models (large; off by default)" },
  yes: { kind: 'boolean', short: 'y', description: 'do not ask for confirmation' },
  strategy: {
    kind: 'choice',
    choices: STRATEGIES,
    arg: 'NAME',
    description: 'lockstep (default), rolling or canary; overrides [rollout] strategy',
  },
  reboot: {
    kind: 'choice',
    arg: 'POLICY',
    choices: REBOOT_POLICIES,
    description:
      'auto (default: reboot the hosts whose new system needs it), never (refuse such a release) or always (reboot every host that changes); overrides [rollout] reboot',
  },
  model: {
    kind: 'string',
    arg: 'ID',
    description: 'the model to place (default from [smoke] model)',
  },
  'min-nodes': {
    kind: 'integer',
    arg: 'N',
    description: 'nodes the instance must span (default: the hosts selected)',
  },
  'ready-timeout': {
    kind: 'duration',
    arg: 'DURATION',
    description:
      "how long the instance's runners may take to download, load and be ready (default from [smoke] ready_timeout: 10m)",
  },
  out: {
    kind: 'string',
    arg: 'FILE',
    description: 'where to write the bundle (default: reports/bundle-ID.tar.gz)',
  },
  force: {
    kind: 'boolean',
    description: 'roll out one batch at a time even where that splits an exo cluster',
  },
  'over-unresolved': {
    kind: 'boolean',
    description:
      'deploy although the last deploy left hosts on an ungated system or a failed rollback (see `status`)',
  },
} as const satisfies Record<string, OptionSpec>;

type CommandOptionName = keyof typeof COMMAND_OPTIONS;

export interface CommandSpec {
  summary: string;
  usage: string;
  options: readonly CommandOptionName[];
  /** Whether the command can run with --local (on this machine, no config). */
  local: boolean;
  /** The command reads no config file here: it runs on this machine and finds its config itself. */
  ownConfig?: boolean;
}

export const COMMANDS = {
  check: {
    summary:
      "health of each host: systemd, exo's API, journal, cluster size, resources, compatibility",
    usage: 'check [--hosts a,b] [--since 10m]',
    options: ['since', 'api', 'unit', 'expect-nodes', 'state-dir', 'status-file', 'textfile'],
    local: true,
  },
  update: {
    summary: 'update flake inputs (all, or the named ones) and show what moved',
    usage: 'update [INPUT…] [--commit | --branch NAME]',
    options: ['commit', 'branch'],
    local: false,
  },
  deploy: {
    summary: "build, activate with `test`, gate on exo's health, then switch; roll back on failure",
    usage:
      'deploy [--hosts a,b|@tag] [--strategy lockstep|rolling|canary] [--reboot auto|never|always] [--yes]',
    options: ['yes', 'strategy', 'reboot', 'force', 'over-unresolved'],
    local: false,
  },
  generations: {
    summary: 'system generations of each host, newest first, with the exo version in each',
    usage: 'generations [--hosts a,b]',
    options: [],
    local: true,
  },
  rollback: {
    summary:
      'activate the previous generation, or generation N, then check; --last undoes the last deploy',
    usage: 'rollback [--hosts a,b] [--to N | --last]',
    options: ['to', 'last'],
    local: true,
  },
  bundle: {
    summary:
      'one support archive: journal, systemctl status, /state, check, generations per host; secrets redacted',
    usage: 'bundle [--hosts a,b] [--since 1h] [--out FILE]',
    options: ['since', 'out'],
    local: false,
  },
  smoke: {
    summary:
      "place an instance through exo's API, wait until its runners are ready, ask one chat completion, remove it",
    usage: 'smoke [--model ID] [--min-nodes N] [--ready-timeout 10m]',
    options: ['model', 'min-nodes', 'ready-timeout'],
    local: false,
  },
  status: {
    summary:
      "the fleet at a glance: generation, exo version, test activations, exo's state, last deploy",
    usage: 'status [--hosts a,b]',
    options: [],
    local: false,
  },
  pull: {
    summary:
      "on the host itself: fetch the config repository's branch, and when it moved forward, build this host's system and deploy it here behind the same gate",
    usage:
      'pull --url URL [--branch main] [--host-name NAME] [--allowed-signers FILE] [--textfile PATH]',
    options: [
      'url',
      'branch',
      'host-name',
      'repo-config',
      'allowed-signers',
      'pull-dir',
      'textfile',
    ],
    local: false,
    ownConfig: true,
  },
  backup: {
    summary:
      "backup create | list | prune | restore ID: system generation, flake.lock and exo's state",
    usage: 'backup create|list|prune|restore [ID] [--hosts a,b]',
    options: ['dir', 'keep', 'models', 'state-dir'],
    local: true,
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

type ValueOf<K extends OptionKind> = K extends 'boolean'
  ? boolean
  : K extends 'integer' | 'duration'
    ? number
    : K extends 'list'
      ? string[]
      : string;
type AllOptions = typeof GLOBAL_OPTIONS & typeof COMMAND_OPTIONS;
export type ParsedOptions = {
  -readonly [K in keyof AllOptions]?: AllOptions[K] extends { choices: readonly (infer C)[] }
    ? C
    : ValueOf<AllOptions[K]['kind']>;
};

export function helpText(version: string): string {
  const width = 26;
  const line = (name: string, spec: OptionSpec) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.arg ? ` ${spec.arg}` : ''}`;
    return `  ${flag.padEnd(width)} ${spec.description}`;
  };
  const commands = Object.values(COMMANDS).map((c: CommandSpec) => {
    const opts = (c.options as readonly CommandOptionName[])
      .map((o) => line(o, COMMAND_OPTIONS[o]))
      .join('\n');
    return `  ${c.usage}\n      ${c.summary}${opts ? `\n${opts}` : ''}`;
  });
  return [
    `exo-deploy ${version}: health-gated NixOS deployments for exo`,
    '',
    'Usage: exo-deploy [options] <command> [arguments]',
    '',
    'Commands:',
    commands.join('\n\n'),
    '',
    'Options (before or after the command):',
    ...Object.entries(GLOBAL_OPTIONS).map(([n, s]) => line(n, s)),
    '',
    'Exit codes: 0 ok/healthy; 1 failed or unhealthy; 2 usage or configuration error, nothing done;',
    '3 failed and the rollback failed too: a person must act; 4 another deploy holds the lock; 130 interrupted.',
  ].join('\n');
}
