// What every command receives: the config, the selected hosts, and the ways to reach them.
import os from 'node:os';
import pLimit from 'p-limit';
import path from 'node:path';
import { DEFAULT_CONFIG_NAME, loadConfig, localConfig, type Config } from './config/load.js';
import { resolveHost, type Host } from './config/host.js';
import { usageError } from './errors.js';
import { httpFetch, type Fetch } from './health/http.js';
import type { ParsedOptions } from './options.js';
import type { Log } from './output/log.js';
import { createExecutor, type Executor } from './run/executor.js';
import type { ProcessRunner } from './run/process.js';

const PROCESSES_AT_ONCE = 96;

export interface Context {
  config: Config;
  options: ParsedOptions;
  positionals: string[];
  /** The hosts this run acts on (--hosts, or all). */
  hosts: Host[];
  /** --dry-run: build and copy, change nothing on a host. */
  dryRun: boolean;
  /** --local: this machine only, without a config file. */
  local: boolean;
  /** The exo cluster the selected hosts' checks judge them in. */
  cluster: ClusterView;
  log: Log;
  signal: AbortSignal;
  runner: ProcessRunner;
  fetch: Fetch;
  now(): number;
  executor(host: Host): Executor;
  /** This machine, where nix builds and nixos-rebuild run. */
  deployer: Executor;
  /** The same run (its programs, log and Ctrl-C) on another config and its hosts: for a command
   * that finds its config only once it runs (pull, from the commit it fetched). */
  withConfig(config: Config): Context;
  close(): Promise<void>;
}

interface ClusterView {
  /** How many nodes each host must see in exo's /state; null: not checked. */
  expectedNodes: number | null;
  /** Whether the config's hosts are one exo cluster, so that each must see the others' current
   * node ids: cluster_size 0 (the hosts in the config) or at least their number. A smaller
   * cluster_size says they are several clusters or lone nodes, and only the count is checked.
   * --local knows no other host's id: it checks the count (--expect-nodes) only. */
  one: boolean;
}

/** --expect-nodes, else the config's cluster_size, else the config's hosts (--local knows no
 * other node, so nothing). */
function clusterView(config: Config, options: ParsedOptions): ClusterView {
  const size = config.health.cluster_size;
  const expectedNodes =
    options['expect-nodes'] ?? (size > 0 ? size : options.local ? null : config.hosts.length);
  return {
    expectedNodes,
    one: !options.local && (size === 0 || size >= config.hosts.length),
  };
}

export interface ContextDeps {
  runner: ProcessRunner;
  /** Runs cleanup (closing ssh connections) even after Ctrl-C; default: runner. */
  cleanupRunner?: ProcessRunner;
  log: Log;
  signal: AbortSignal;
  fetch?: Fetch;
  now?: () => number;
}

export async function createContext(
  options: ParsedOptions,
  positionals: string[],
  deps: ContextDeps,
): Promise<Context> {
  const config = options.local
    ? await localConfig(localOverrides(options))
    : await loadConfig(path.resolve(options.config ?? DEFAULT_CONFIG_NAME));
  if (!options.local) applyCommandLineOverrides(config, options);
  return contextFor(config, options, positionals, deps);
}

function contextFor(
  config: Config,
  options: ParsedOptions,
  positionals: string[],
  deps: ContextDeps,
): Context {
  const hosts = selectHosts(config.hosts, options.hosts);
  const executors = new Map<string, Executor>();
  // A fleet's checks and rollbacks fan out to every host: at most PROCESSES_AT_ONCE programs
  // (ssh sessions mostly) run at once, below a default limit of 1,024 open files (each takes
  // three pipes) and far from a fork storm. Their timeouts start when they start.
  const processes = pLimit(Math.max(PROCESSES_AT_ONCE, 2 * config.rollout.max_parallel));
  const runner: ProcessRunner = (spec) => processes(() => deps.runner(spec));
  const executorContext = {
    runner,
    cleanupRunner: deps.cleanupRunner ?? deps.runner,
    log: deps.log,
    dryRun: Boolean(options['dry-run']),
    defaultTimeoutMs: config.timeouts.command,
    sshConnectTimeoutMs: config.timeouts.ssh_connect,
    sshProgram: config.programs.ssh,
  };
  const executor = (host: Host) => {
    let e = executors.get(host.name);
    if (!e) {
      e = createExecutor(host, executorContext);
      executors.set(host.name, e);
    }
    return e;
  };
  const deployer = createExecutor(
    resolveHost(os.hostname(), { target: 'local', tags: [] }, { ...config.defaults, sudo: false }),
    executorContext,
  );
  return {
    config,
    options,
    positionals,
    hosts,
    dryRun: Boolean(options['dry-run']),
    local: Boolean(options.local),
    cluster: clusterView(config, options),
    log: deps.log,
    signal: deps.signal,
    runner,
    fetch: deps.fetch ?? httpFetch,
    now: deps.now ?? Date.now,
    executor,
    deployer,
    withConfig: (other) => contextFor(other, options, positionals, deps),
    close: async () => {
      await Promise.all([...executors.values()].map((e) => e.close()));
    },
  };
}

/** --local: this machine only; a few flags stand in for the config file. */
function localOverrides(options: ParsedOptions): Record<string, unknown> {
  const host: Record<string, unknown> = { target: 'local' };
  if (options.api) host.api = options.api;
  if (options.unit) host.unit = options.unit;
  if (options['state-dir']) host.exo_state_dir = options['state-dir'];
  const backup: Record<string, unknown> = {};
  if (options.dir) backup.dir = options.dir;
  if (options.keep !== undefined) backup.keep = options.keep;
  return { hosts: { local: host }, backup };
}

function applyCommandLineOverrides(config: Config, options: ParsedOptions): void {
  if (options.keep !== undefined) config.backup.keep = options.keep;
  if (options.dir || options.api || options.unit || options['state-dir']) {
    throw usageError(
      '--dir, --api, --unit and --state-dir go with --local; for configured hosts set them in the config file',
    );
  }
}

/** Names, or @tag for every host with that tag. */
function selectHosts(all: Host[], wanted: string[] | undefined): Host[] {
  if (!wanted || wanted.length === 0) return all;
  const chosen = new Map<string, Host>();
  for (const item of wanted) {
    const matches = item.startsWith('@')
      ? all.filter((h) => h.tags.includes(item.slice(1)))
      : all.filter((h) => h.name === item);
    if (matches.length === 0) {
      throw usageError(
        `--hosts: no host ${item.startsWith('@') ? 'has the tag ' : 'is named '}"${item.replace(/^@/, '')}"`,
        `hosts in the config: ${all.map((h) => h.name).join(', ') || '(none)'}`,
      );
    }
    for (const h of matches) chosen.set(h.name, h);
  }
  return [...chosen.values()];
}
