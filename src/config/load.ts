// Reads exo-deploy.toml: TOML errors with file, line and column; schema errors with the key
// path. Both are usage errors (exit 2) raised before anything is done.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { usageError } from '../errors.js';
import { addressOf, CONFIRMS_PER_TIMEOUT, resolveHost, type Host } from './host.js';
import { formatDuration } from './duration.js';
import { ConfigFile, IPV4_ONLY, isIpv6Url } from './schema.js';

export interface Config {
  file: string | undefined;
  /** The folder that relative paths in the file are relative to. */
  dir: string;
  /** An absolute path to the config flake, or a flake reference that is not a path. */
  flake: string;
  flakeIsPath: boolean;
  reportsDir: string;
  stateDir: string;
  hosts: Host[];
  health: ConfigFile['health'];
  backup: ConfigFile['backup'];
  programs: ConfigFile['programs'];
  build: ConfigFile['build'];
  timeouts: ConfigFile['timeouts'];
  defaults: ConfigFile['defaults'];
  rollout: ConfigFile['rollout'];
  hooks: ConfigFile['hooks'];
  smoke: ConfigFile['smoke'];
}

export const DEFAULT_CONFIG_NAME = 'exo-deploy.toml';

export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw usageError(
      `cannot read the config file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      `run in your config repo (where ${DEFAULT_CONFIG_NAME} is), or pass --config PATH; --local needs no file`,
    );
  }
  // Loaded here, not at the top: --local (the module's health timer) reads no file.
  const { default: TOML } = await import('@iarna/toml');
  let raw: unknown;
  try {
    raw = TOML.parse(text);
  } catch (error) {
    const e = error as { line?: number; col?: number; message: string };
    const where = e.line === undefined ? '' : `:${e.line + 1}:${(e.col ?? 0) + 1}`;
    throw usageError(
      `${file}${where}: TOML syntax error: ${e.message.split('\n')[0]}`,
      'fix the file; nothing was changed',
    );
  }
  const config = await fromParsed(raw, path.dirname(path.resolve(file)), file);
  if (config.flakeIsPath) await requireFlake(config.flake, file);
  return config;
}

/** The config for `--local`: defaults, plus the overrides the command line gives (one host, target local). */
export function localConfig(overrides: Record<string, unknown>): Promise<Config> {
  return fromParsed(overrides, process.cwd(), undefined);
}

async function fromParsed(raw: unknown, dir: string, file: string | undefined): Promise<Config> {
  const parsed = ConfigFile.safeParse(raw);
  if (!parsed.success)
    throw usageError(formatIssues(parsed.error.issues, file), 'fix the file; nothing was changed');
  const c = parsed.data;
  if (c.rollout.canary && !(c.rollout.canary in c.hosts)) {
    throw usageError(
      `${file ?? 'configuration'}: rollout.canary: no host is named "${c.rollout.canary}"`,
      `hosts: ${Object.keys(c.hosts).join(', ')}`,
    );
  }
  const hosts = Object.entries(c.hosts).map(([name, entry]) =>
    resolveHost(name, entry, c.defaults),
  );
  const ipv6 = hosts.filter((h) => isIpv6Url(h.api));
  if (ipv6.length) {
    const lines = ipv6.map(
      (h) =>
        `hosts.${h.name}.api: not set, so it is the target's address, ${addressOf(h.target)}, an IPv6 one; ${IPV4_ONLY}`,
    );
    throw usageError(
      `${file ?? 'configuration'}: invalid configuration:\n  ${lines.join('\n  ')}`,
      'set api = "http://IPv4:52415" for these hosts',
    );
  }
  // The deployer confirms every third of confirm_timeout, and one confirmation may take a whole
  // ssh connect: with less, a host could revert while everything is well.
  const hasty = hosts.filter(
    (h) => !h.local && h.confirmTimeoutMs < CONFIRMS_PER_TIMEOUT * c.timeouts.ssh_connect,
  );
  if (hasty.length) {
    const lines = hasty.map(
      (h) =>
        `hosts.${h.name}: confirm_timeout ${formatDuration(h.confirmTimeoutMs)} is less than ${CONFIRMS_PER_TIMEOUT} × timeouts.ssh_connect (${formatDuration(c.timeouts.ssh_connect)}): the host could put itself back while the deployer still reaches it`,
    );
    throw usageError(
      `${file ?? 'configuration'}: invalid configuration:\n  ${lines.join('\n  ')}`,
      `raise confirm_timeout to at least ${formatDuration(CONFIRMS_PER_TIMEOUT * c.timeouts.ssh_connect)} or lower timeouts.ssh_connect`,
    );
  }
  const flakeIsPath = !/^[a-z+]+:/.test(c.flake);
  return {
    file,
    dir,
    flake: flakeIsPath ? path.resolve(dir, c.flake) : c.flake,
    flakeIsPath,
    reportsDir: path.resolve(dir, c.reports_dir),
    stateDir: path.resolve(dir, c.state_dir),
    hosts,
    health: c.health,
    backup: c.backup,
    programs: resolvePrograms(c.programs, dir),
    build: c.build,
    timeouts: c.timeouts,
    defaults: c.defaults,
    rollout: c.rollout,
    hooks: c.hooks,
    smoke: c.smoke,
  };
}

/** A program given as a relative path ("./bin/x") is relative to the config's folder. */
function resolvePrograms(programs: ConfigFile['programs'], dir: string): ConfigFile['programs'] {
  const resolve = (p: string) => (p.includes('/') ? path.resolve(dir, p) : p);
  return Object.fromEntries(
    Object.entries(programs).map(([k, v]) => [k, resolve(v)]),
  ) as ConfigFile['programs'];
}

function formatIssues(issues: z.core.$ZodIssue[], file: string | undefined): string {
  const lines = issues.map((issue) => {
    const keyPath = issue.path.map(String).join('.') || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? `${keyPath}.` : '';
      return `${issue.keys.map((k) => `${where}${k}`).join(', ')}: unknown key (check the spelling; see README "Configuration")`;
    }
    if (issue.code === 'invalid_key')
      return `${keyPath}: ${issue.issues[0]?.message ?? issue.message}`;
    return `${keyPath}: ${issue.message}`;
  });
  return `${file ?? 'configuration'}: invalid configuration:\n  ${lines.join('\n  ')}`;
}

async function requireFlake(flake: string, file: string): Promise<void> {
  const found = await stat(path.join(flake, 'flake.nix')).then(
    () => true,
    () => false,
  );
  if (!found)
    throw usageError(
      `${file}: flake: no flake.nix in ${flake}`,
      'set "flake" to the folder of your config flake, relative to the config file',
    );
}
