// A host as the commands see it: config defaults applied, API address derived.
import type { ConfigFile } from './schema.js';

export interface Host {
  name: string;
  /** "local" (this machine, no ssh) or "[user@]address". */
  target: string;
  local: boolean;
  api: string;
  tags: string[];
  sshOptions: string[];
  sudo: boolean;
  systemProfile: string;
  currentSystem: string;
  unit: string;
  exoStateDir: string;
  /** The target substitutes from its own binary caches what it can when a system is copied. */
  substituteOnTarget: boolean;
  /** How long the host waits for the deployer's confirmation before it reverts itself. */
  confirmTimeoutMs: number;
  /** Where the host's system is evaluated and built. */
  buildOn: 'deployer' | 'target';
}

/** The deployer confirms a host's revert timer this many times per confirm_timeout. */
export const CONFIRMS_PER_TIMEOUT = 3;

type Defaults = ConfigFile['defaults'];
type Entry = ConfigFile['hosts'][string];

export function addressOf(target: string): string {
  if (target === 'local') return '127.0.0.1';
  return target.includes('@') ? target.slice(target.indexOf('@') + 1) : target;
}

function defaultApi(target: string, port: number): string {
  const address = addressOf(target);
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export function resolveHost(name: string, entry: Entry, defaults: Defaults): Host {
  return {
    name,
    target: entry.target,
    local: entry.target === 'local',
    api: (entry.api ?? defaultApi(entry.target, entry.api_port ?? defaults.api_port)).replace(
      /\/+$/,
      '',
    ),
    tags: entry.tags,
    sshOptions: entry.ssh_options ?? defaults.ssh_options,
    sudo: entry.sudo ?? defaults.sudo,
    systemProfile: entry.system_profile ?? defaults.system_profile,
    currentSystem: entry.current_system ?? defaults.current_system,
    unit: entry.unit ?? defaults.unit,
    exoStateDir: entry.exo_state_dir ?? defaults.exo_state_dir,
    substituteOnTarget: entry.substitute_on_target ?? defaults.substitute_on_target,
    confirmTimeoutMs: entry.confirm_timeout ?? defaults.confirm_timeout,
    // this machine is a local host's target
    buildOn: entry.target === 'local' ? 'deployer' : (entry.build_on ?? defaults.build_on),
  };
}
