// The shape of exo-deploy.toml. Strict objects everywhere: an unknown key is an error,
// because a misspelt safety setting must never be silently ignored.
import * as z from 'zod';
import { parseDuration } from './duration.js';
import { parseRebootWindow, REBOOT_POLICIES } from './reboot.js';
import { STRATEGIES } from './strategy.js';
import { HOST_NAME, SAFE_ABS_PATH, SSH_TARGET, TAG, UNIT_NAME } from './patterns.js';

const duration = z
  .string()
  .refine((text) => parseDuration(text) !== undefined, {
    message: 'expected a duration with a unit, such as "500ms", "30s", "5m" or "2h"',
  })
  .transform((text) => parseDuration(text) as number);

const plainText = z
  .string()
  .min(1)
  .regex(/^[^\0\n\r]*$/, 'must not contain NUL or line breaks');
const absPath = z
  .string()
  .regex(SAFE_ABS_PATH, 'expected an absolute path of letters, digits and ._+@%/-');
const program = plainText.refine((p) => !p.startsWith('-'), 'must not start with "-"');

/** The lines real exo writes when something fails, in both eras (libp2p 1.0 releases and
 * zenoh main). A pattern is a substring, or /a regex/. Not among them: "Runner exited with exit
 * code N", an INFO line printed for a clean exit (0) too. */
export const DEFAULT_JOURNAL_PATTERNS = [
  // every non-zero exit of a runner (ERROR), by exit code or by signal (the OOM killer's 9)
  'Runner terminated with exitcode=',
  'Runner terminated with signal=',
  // the watchdog found a runner process gone (the traceback under the line above)
  'Runner found to be dead',
  'crashed with critical exception',
  'Runner communication closed unexpectedly',
  'runner closed communication',
  'Event sender already closed, unable to report runner failure',
  // a runner failed five times: exo deletes its instance ("Instance X exceeded 5 retries, …")
  'retries, requesting deletion',
  'EXO terminated due to unhandled exception',
  // anyio's errors at the end of a traceback (anyio.ClosedResourceError, …)
  'ClosedResourceError',
  'BrokenResourceError',
  // what exo prints where older builds raised "ValueError: Queue <…> is closed"
  'Unreachable code path - let me know!',
  '/Queue .* is closed/',
];

/** An http(s) URL whose host is an IPv6 literal ("http://[fd00::5]:52415"). */
export const isIpv6Url = (url: string) => new URL(url).hostname.startsWith('[');
export const IPV4_ONLY = "exo's API listens on IPv4 only (0.0.0.0)";

/** Settings a host inherits from [defaults] and may override. */
const hostSettings = {
  ssh_options: z.array(plainText),
  sudo: z.boolean(),
  system_profile: absPath,
  current_system: absPath,
  unit: z.string().regex(UNIT_NAME, 'expected a systemd service name such as "exo.service"'),
  exo_state_dir: absPath,
  api_port: z.number().int().min(1).max(65535),
  substitute_on_target: z.boolean(),
  confirm_timeout: duration.refine(
    (ms) => ms >= 10_000 && ms <= 3_600_000,
    'expected a duration from "10s" to "1h"',
  ),
  build_on: z.enum(['deployer', 'target']),
};

const Defaults = z.strictObject({
  ssh_options: hostSettings.ssh_options.default([]),
  sudo: hostSettings.sudo.default(false),
  system_profile: hostSettings.system_profile.default('/nix/var/nix/profiles/system'),
  current_system: hostSettings.current_system.default('/run/current-system'),
  unit: hostSettings.unit.default('exo.service'),
  exo_state_dir: hostSettings.exo_state_dir.default('/var/lib/exo'),
  api_port: hostSettings.api_port.default(52415),
  // `nix copy --substitute-on-destination`: the target fetches what its own binary caches
  // have (GPU closures are many GB) instead of taking every byte from this machine
  substitute_on_target: hostSettings.substitute_on_target.default(true),
  // From before `test` until after `switch`, a host puts itself back on the system it ran
  // unless the deployer confirms within this time, over a new ssh connection, that it still
  // reaches the host: a release that cuts sshd, the firewall or the network reverts itself.
  confirm_timeout: hostSettings.confirm_timeout.default(60_000),
  // "target": the host evaluates and builds its own system (the flake is copied to it), for a
  // deployer that cannot build for it (another system, a laptop's memory)
  build_on: hostSettings.build_on.default('deployer'),
});

const HostEntry = z.strictObject({
  target: z.union([
    z.literal('local'),
    z.string().regex(SSH_TARGET, 'expected "local" or "[user@]host" (a DNS name or an IP address)'),
  ]),
  api: z
    .url({ protocol: /^https?$/, error: 'expected an http(s) URL such as "http://10.0.0.2:52415"' })
    .refine(
      (url) => !isIpv6Url(url),
      `${IPV4_ONLY}: use the host's IPv4 address or a name that resolves to it`,
    )
    .optional(),
  tags: z.array(z.string().regex(TAG, 'expected letters, digits and _.-')).default([]),
  ssh_options: hostSettings.ssh_options.optional(),
  sudo: hostSettings.sudo.optional(),
  system_profile: hostSettings.system_profile.optional(),
  current_system: hostSettings.current_system.optional(),
  unit: hostSettings.unit.optional(),
  exo_state_dir: hostSettings.exo_state_dir.optional(),
  api_port: hostSettings.api_port.optional(),
  substitute_on_target: hostSettings.substitute_on_target.optional(),
  confirm_timeout: hostSettings.confirm_timeout.optional(),
  build_on: hostSettings.build_on.optional(),
});

const Health = z.strictObject({
  probes: z
    .array(z.string().regex(/^\/[A-Za-z0-9/_.?=&-]*$/, 'expected an API path such as "/models"'))
    .default(['/node_id', '/models', '/state']),
  journal_patterns: z.array(plainText).default(DEFAULT_JOURNAL_PATTERNS),
  soak: duration.default(30_000),
  timeout: duration.default(5_000),
  ready_timeout: duration.default(120_000),
  interval: duration.default(1_000),
  cluster_size: z.number().int().min(0).default(0),
});

const Backup = z.strictObject({
  dir: absPath.default('/var/backups/exo'),
  keep: z.number().int().min(1).default(10),
  models: z.boolean().default(false),
});

const Programs = z.strictObject({
  nixos_rebuild: program.default('nixos-rebuild'),
  nix: program.default('nix'),
  ssh: program.default('ssh'),
  git: program.default('git'),
});

/** Evaluation is the costly part of a build (seconds and gigabytes per host on a real NixOS
 * configuration): each Nix process evaluates and builds up to hosts_per_evaluation hosts, one
 * after the other, and at most max_evaluations such processes run at once. */
const Build = z.strictObject({
  hosts_per_evaluation: z.number().int().min(1).max(1000).default(16),
  max_evaluations: z.number().int().min(1).max(64).default(1),
});

const Timeouts = z.strictObject({
  command: duration.default(60_000),
  build: duration.default(1_800_000),
  activate: duration.default(600_000),
  ssh_connect: duration.default(10_000),
  /** How long a rebooting host has to come back and answer ssh (servers with GPUs can take
   * minutes in firmware alone). */
  reboot: duration.default(900_000),
});

const Rollout = z.strictObject({
  strategy: z.enum(STRATEGIES).default('lockstep'),
  max_parallel: z.number().int().min(1).default(10),
  batch_size: z.number().int().min(1).default(1),
  canary: z.string().regex(HOST_NAME, 'expected a host name').optional(),
  rollback_scope: z.enum(['all', 'failed']).default('all'),
  reboot: z.enum(REBOOT_POLICIES).default('auto'),
  reboot_window: z
    .string()
    .transform((text, ctx) => {
      const window = parseRebootWindow(text);
      if (typeof window !== 'string') return window;
      ctx.addIssue({ code: 'custom', message: window });
      return z.NEVER;
    })
    .optional(),
});

/** A hook is an argument array (no shell): ["notify-send", "exo"], or ["sh", "-c", "…"]. */
const hookArgv = z.array(plainText).min(1).optional();
const Hooks = z.strictObject({
  pre_deploy: hookArgv,
  post_deploy: hookArgv,
  timeout: duration.default(60_000),
});

/** The smoke test needs a model on the nodes, so it is off in the gate unless asked. timeout
 * bounds each request and the placement; ready_timeout the wait for the runners, which
 * download and load the model first: minutes for a real one. */
const Smoke = z.strictObject({
  gate: z.boolean().default(false),
  model: plainText.default('mlx-community/Llama-3.2-1B-Instruct-4bit'),
  min_nodes: z.number().int().min(0).default(0),
  chat: z.boolean().default(true),
  timeout: duration.default(180_000),
  ready_timeout: duration.default(600_000),
});

export const ConfigFile = z.strictObject({
  flake: plainText.default('.'),
  reports_dir: plainText.default('reports'),
  state_dir: plainText.default('.exo-deploy'),
  defaults: Defaults.prefault({}),
  health: Health.prefault({}),
  backup: Backup.prefault({}),
  hosts: z
    .record(
      z
        .string()
        .regex(HOST_NAME, 'a host name must be letters, digits and _.- and not start with "-"'),
      HostEntry,
    )
    .default({}),
  programs: Programs.prefault({}),
  build: Build.prefault({}),
  timeouts: Timeouts.prefault({}),
  rollout: Rollout.prefault({}),
  hooks: Hooks.prefault({}),
  smoke: Smoke.prefault({}),
});

export type ConfigFile = z.output<typeof ConfigFile>;
export type Timeouts = ConfigFile['timeouts'];
export type RolloutSettings = ConfigFile['rollout'];
export type { Strategy } from './strategy.js';
