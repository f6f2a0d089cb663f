// What differs between exo's two networking eras, apart from the command line (args.mjs):
// "libp2p" = release v1.0.71 (nixpkgs' exo), "zenoh" = exo main since the zenoh switch.

import crypto from 'node:crypto';

export const ERAS = ['libp2p', 'zenoh'];

/** The era a release defaults to: 1.0.x releases are libp2p, everything else zenoh. */
export function defaultEra(version) {
  return /^1\.0\./.test(String(version)) ? 'libp2p' : 'zenoh';
}

/** exo's Python package version (pyproject.toml; 0.3.70 at v1.0.71 and on main). */
export const DEFAULT_PACKAGE_VERSION = '0.3.70';

/** The libp2p network version key used without EXO_LIBP2P_NAMESPACE (rust/networking/src/swarm.rs). */
export const LIBP2P_NETWORK_VERSION = 'v0.0.1';

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
function base58(buf) {
  let n = BigInt(`0x${buf.toString('hex')}`);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of buf) {
    if (b !== 0) break;
    out = `1${out}`;
  }
  return out;
}

/**
 * A new node id, fresh at every start in both eras. libp2p: the base58 peer id of a new
 * ed25519 key ("12D3KooW…", src/exo/routing/router.py get_node_id_keypair + keypair.to_node_id);
 * zenoh: os.urandom(16).hex().lstrip("0") (src/exo/routing/router.py get_node_zid).
 */
export function newNodeId(era) {
  if (era === 'libp2p') {
    // identity multihash of the protobuf-encoded ed25519 public key
    return base58(
      Buffer.concat([Buffer.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]), crypto.randomBytes(32)]),
    );
  }
  return crypto.randomBytes(16).toString('hex').replace(/^0+/, '');
}

/** Runner statuses as tagged JSON (src/exo/shared/types/worker/runners.py of each era). */
export const status = {
  idle: () => ({ RunnerIdle: {} }),
  connecting: () => ({ RunnerConnecting: {} }),
  connected: () => ({ RunnerConnected: {} }),
  loading: (loaded, total) => ({ RunnerLoading: { layersLoaded: loaded, totalLayers: total } }),
  loaded: () => ({ RunnerLoaded: {} }),
  warmingUp: () => ({ RunnerWarmingUp: {} }),
  // v1.0.71's RunnerReady has no fields; main added prefill_server_port
  ready: (era) =>
    era === 'libp2p' ? { RunnerReady: {} } : { RunnerReady: { prefillServerPort: null } },
  running: () => ({ RunnerRunning: {} }),
  shuttingDown: () => ({ RunnerShuttingDown: {} }),
  // v1.0.71's RunnerFailed has only error_message; main added diagnostics
  failed: (era, message) =>
    era === 'libp2p'
      ? { RunnerFailed: { errorMessage: message } }
      : { RunnerFailed: { errorMessage: message, diagnostics: [] } },
};

export const tagOf = (s) => (s ? Object.keys(s)[0] : null);

/** exo's startup banner (src/exo/utils/banner.py), printed to stderr when the API starts. */
export function banner(era, port) {
  const url = `http://localhost:${port}`;
  const ready =
    era === 'libp2p'
      ? '║  🌐 Dashboard & API Ready                                             ║'
      : '║  Dashboard & API Ready                                                ║';
  return `
╔═══════════════════════════════════════════════════════════════════════╗
║                                                                       ║
║   ███████╗██╗  ██╗ ██████╗                                            ║
║   ██╔════╝╚██╗██╔╝██╔═══██╗                                           ║
║   █████╗   ╚███╔╝ ██║   ██║                                           ║
║   ██╔══╝   ██╔██╗ ██║   ██║                                           ║
║   ███████╗██╔╝ ██╗╚██████╔╝                                           ║
║   ╚══════╝╚═╝  ╚═╝ ╚═════╝                                            ║
║                                                                       ║
║   Distributed AI Inference Cluster                                    ║
║                                                                       ║
╚═══════════════════════════════════════════════════════════════════════╝

╔═══════════════════════════════════════════════════════════════════════╗
║                                                                       ║
${ready}
║                                                                       ║
║  ${url}${' '.repeat(Math.max(0, 69 - url.length))}║
║                                                                       ║
║  Click the URL above to open the dashboard in your browser            ║
║                                                                       ║
╚═══════════════════════════════════════════════════════════════════════╝


`;
}

/** The /state keys of each era (src/exo/shared/types/state.py). */
export function emptyState(era) {
  const st = {
    instances: {},
    runners: {},
    downloads: {},
    tasks: {},
    lastSeen: {},
    topology: { nodes: [], connections: {} },
    lastEventAppliedIdx: -1,
    nodeIdentities: {},
    nodeMemory: {},
    nodeDisk: {},
    nodeSystem: {},
    nodeNetwork: {},
    nodeThunderbolt: {},
    nodeThunderboltBridge: {},
    nodeRdmaCtl: {},
  };
  if (era === 'libp2p') return { ...st, thunderboltBridgeCycles: [] };
  return {
    ...st,
    nodeBackends: {},
    thunderboltBridgeCycles: [],
    instanceLinks: {},
    prefillServerPorts: {},
    customModelCards: {},
  };
}
