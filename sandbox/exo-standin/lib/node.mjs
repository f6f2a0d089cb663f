// One exo node: its identity, startup and shutdown, the cluster it sees (discovery over the
// peers' HTTP API instead of libp2p/zenoh), the replicated state it serves at /state, the
// master's bookkeeping (placement, node time-outs), and the faults that hit the whole process.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Api } from './api.mjs';
import { LIBP2P_NETWORK_VERSION, banner, emptyState, newNodeId } from './era.mjs';
import { splitAddr, httpJson, sendText500 } from './http.mjs';
import {
  emit,
  entryFrames,
  logger,
  loguruTraceback,
  pyListRepr,
  pyTraceback,
  writeErr,
} from './log.mjs';
import { cardFor, shard } from './models.mjs';
import { faultText } from './release.mjs';
import { Worker } from './runners.mjs';

const uuid = () => crypto.randomUUID();

const envSeconds = (name, def) => {
  const v = Number(process.env[name]);
  return process.env[name] !== undefined && process.env[name] !== '' && v > 0 ? v : def;
};

// src/exo/master/main.py _plan: a node is timed out after more than 30 s without news, checked
// every 10 s. The environment shortens both for the stand-in's own tests.
const NODE_TIMEOUT_S = () => envSeconds('EXO_STANDIN_NODE_TIMEOUT', 30);
const TIMEOUT_CHECK_S = () => envSeconds('EXO_STANDIN_NODE_TIMEOUT_CHECK', 10);
const POLL_MS = 1000; // discovery polls; exo's zenoh discovery says hello every second
const EDGE_FRESH_MS = 3000; // an edge stays while its sink answered lately (exo re-probes every 10 s)

function ipv4s() {
  const out = [];
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    for (const a of addrs || []) {
      if (a.family === 'IPv4' || a.family === 4)
        out.push({ name, ipAddress: a.address, interfaceType: 'unknown' });
    }
  }
  return out;
}

function diskUsage() {
  try {
    if (typeof fs.statfsSync === 'function') {
      const s = fs.statfsSync(os.homedir());
      return { total: { inBytes: s.blocks * s.bsize }, available: { inBytes: s.bavail * s.bsize } };
    }
  } catch {
    /* fall through */
  }
  return { total: { inBytes: 0 }, available: { inBytes: 0 } };
}

export class Node {
  constructor(args, release, hostname, fault) {
    this.args = args;
    this.release = release;
    this.era = release.era;
    this.hostname = hostname;
    this.fault = fault;
    this.nodeId = newNodeId(this.era);
    // libp2p: the network key comes from EXO_LIBP2P_NAMESPACE when it is set at all, else the
    // hard-coded network version; zenoh: --namespace, defaulting to the Python package version.
    this.namespace =
      this.era === 'libp2p'
        ? process.env.EXO_LIBP2P_NAMESPACE !== undefined
          ? process.env.EXO_LIBP2P_NAMESPACE
          : LIBP2P_NETWORK_VERSION
        : (args.namespace ?? release.packageVersion);
    // nodes of different eras never connect, whatever their namespaces
    this.nsHash =
      fault.kind === 'isolated'
        ? crypto.randomBytes(8).toString('hex')
        : crypto
            .createHash('sha256')
            .update(`${this.era}\0${this.namespace}`)
            .digest('hex')
            .slice(0, 16);
    this.peersSpec = (process.env.EXO_STANDIN_PEERS || '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    this.bind = process.env.EXO_STANDIN_BIND || '0.0.0.0';
    this.peers = new Map(); // node id -> { addr, payload, firstSeen, lastSeen }
    this.ignored = new Set(); // "addr node-id" pairs already logged as ignored
    this.instances = new Map(); // instances this node placed (it is their master)
    this.worker = args.no_worker ? null : new Worker(this);
    this.api = new Api(this);
    this.events = [];
    this.eventIdx = -1;
    this.timers = [];
    this.servers = [];
    this.sockets = new Set();
  }

  after(seconds, fn) {
    const t = setTimeout(fn, seconds * 1000);
    this.timers.push(t);
    return t;
  }
  every(ms, fn) {
    const t = setInterval(fn, ms);
    this.timers.push(t);
    return t;
  }

  record(type, body) {
    this.events.push({ [type]: { eventId: uuid(), ...body } });
    this.eventIdx += 1;
    if (this.events.length > 1000) this.events.splice(0, this.events.length - 1000);
  }

  // --- the cluster this node sees --------------------------------------------------------------

  /** Peers in the topology: seen once, not yet timed out. */
  topologyPeers() {
    return [...this.peers.entries()]
      .filter(([, p]) => p.payload.worker)
      .map(([id, p]) => ({ nodeId: id, ...p }));
  }

  /** Peers that answered lately (exo's worker keeps an edge while its probe succeeds). */
  reachablePeers() {
    const cutoff = Date.now() - EDGE_FRESH_MS;
    return this.topologyPeers().filter((p) => p.lastSeen >= cutoff);
  }

  localInfo() {
    const downloads = [];
    const models = new Set();
    if (this.worker) {
      for (const inst of this.allInstances().values()) {
        const sa = Object.values(inst)[0].shardAssignments;
        if (sa.nodeToRunner[this.nodeId]) models.add(sa.modelId);
      }
      for (const m of models) {
        const c = cardFor(m);
        if (!c) continue;
        downloads.push({
          DownloadCompleted: {
            nodeId: this.nodeId,
            shardMetadata: { PipelineShardMetadata: shard(c, 0, 1) },
            modelDirectory: path.join(
              os.homedir(),
              '.local/share/exo/models',
              m.replace('/', '--'),
            ),
            total: { inBytes: c.storageSize.inBytes },
            readOnly: false,
          },
        });
      }
    }
    return {
      identity: {
        modelId: 'Linux',
        chipId: os.cpus()[0]?.model || 'Unknown',
        friendlyName: this.hostname,
        osVersion: os.release(),
        osBuildVersion: os.version ? os.version() : 'Unknown',
      },
      memory: {
        ramTotal: { inBytes: os.totalmem() },
        ramAvailable: { inBytes: os.freemem() },
        swapTotal: { inBytes: 0 },
        swapAvailable: { inBytes: 0 },
      },
      disk: diskUsage(),
      system: { gpuUsage: 0.0, temp: 0.0, sysPower: 0.0, pcpuUsage: 0.0, ecpuUsage: 0.0 },
      network: { interfaces: ipv4s() },
      backends: ['MlxCpu'],
      downloads,
    };
  }

  /** What this node tells the peers that poll it (the stand-in's discovery "hello"). */
  discovery() {
    return {
      standin: 2,
      era: this.era,
      namespaceHash: this.nsHash,
      nodeId: this.nodeId,
      hostname: this.hostname,
      apiPort: this.args.api_port,
      worker: !!this.worker,
      pid: process.pid,
      sees: this.topologyPeers().map((p) => p.nodeId),
      reaches: this.reachablePeers().map((p) => p.nodeId),
      instances: Object.fromEntries(this.instances),
      runners: this.worker ? Object.fromEntries(this.worker.statuses) : {},
      runnerFailures: this.worker ? Object.fromEntries(this.worker.failures) : {},
      processes: this.worker ? this.worker.processes() : {},
      info: this.worker ? this.localInfo() : null,
    };
  }

  pollPeers() {
    for (const addr of this.peersSpec) {
      const [host, port] = splitAddr(addr);
      httpJson('GET', host, port, '/_standin/discovery', null, 900).then(
        (res) => {
          const b = res.status === 200 ? res.json : null;
          if (b?.standin !== 2 || typeof b.nodeId !== 'string' || b.nodeId === this.nodeId) return;
          if (b.era !== this.era || b.namespaceHash !== this.nsHash) {
            const key = `${addr} ${b.nodeId}`;
            if (!this.ignored.has(key)) {
              this.ignored.add(key);
              logger.debug(
                `exo stand-in: ignoring node ${b.nodeId} at ${addr}: ${b.era !== this.era ? `${b.era} era` : 'another namespace'}`,
                'exo.routing.router:_networking_recv:1',
              );
            }
            return;
          }
          const now = Date.now();
          const known = this.peers.get(b.nodeId);
          if (!known) {
            logger.debug(
              `exo stand-in: node ${b.nodeId} (${b.hostname}) found at ${addr}`,
              'exo.routing.router:_networking_recv:1',
            );
            if (b.worker)
              this.record('TopologyEdgeCreated', {
                conn: {
                  source: this.nodeId,
                  sink: b.nodeId,
                  edge: {
                    sinkMultiaddr: {
                      address: `/ip4/${host}/tcp/${b.apiPort}`,
                      address_type: 'ip4',
                    },
                  },
                },
              });
          }
          this.peers.set(b.nodeId, {
            addr,
            payload: b,
            firstSeen: known ? known.firstSeen : now,
            lastSeen: now,
          });
        },
        () => {
          /* no answer: the peer's last news ages */
        },
      );
    }
  }

  /**
   * The master's plan loop (src/exo/master/main.py _plan, every 10 s): first delete instances
   * with a node outside the topology, then time out nodes silent for more than 30 s. A
   * restarted node has a new id, so its old id lingers here until it times out.
   */
  masterPlan() {
    const inTopology = new Set([
      ...(this.worker ? [this.nodeId] : []),
      ...this.topologyPeers().map((p) => p.nodeId),
    ]);
    for (const [iid, inst] of this.instances) {
      if (
        Object.keys(Object.values(inst)[0].shardAssignments.nodeToRunner).some(
          (n) => !inTopology.has(n),
        )
      )
        this.deleteInstance(iid);
    }
    const limit = NODE_TIMEOUT_S() * 1000;
    for (const [id, p] of this.peers) {
      if (Date.now() - p.lastSeen > limit) {
        if (p.payload.worker)
          logger.info(
            `Manually removing node ${id} due to inactivity`,
            'exo.master.main:_plan:487',
          );
        this.peers.delete(id);
        this.record('NodeTimedOut', { nodeId: id });
      }
    }
  }

  /** Instances in this node's state: its own and those of the peers it knows. */
  allInstances() {
    const all = new Map();
    for (const p of this.peers.values())
      for (const [iid, inst] of Object.entries(p.payload.instances || {})) all.set(iid, inst);
    for (const [iid, inst] of this.instances) all.set(iid, inst);
    return all;
  }

  /** Runner statuses in this node's state: the peers' reports, then its own. */
  allRunnerStatuses() {
    const out = {};
    for (const p of this.peers.values()) Object.assign(out, p.payload.runners || {});
    if (this.worker) for (const [rid, s] of this.worker.statuses) out[rid] = s;
    return out;
  }

  /** How many times each runner was reported Failed, as far as this node knows. */
  allRunnerFailures() {
    const out = {};
    for (const p of this.peers.values()) Object.assign(out, p.payload.runnerFailures || {});
    if (this.worker) for (const [rid, n] of this.worker.failures) out[rid] = n;
    return out;
  }

  /** Whether a runner's process is alive, as far as this node knows. */
  runnerProcessAlive(rid) {
    if (this.worker?.supervisors.has(rid)) {
      const s = this.worker.supervisors.get(rid);
      return s.alive && !s.ended;
    }
    for (const p of this.peers.values()) {
      const pr = p.payload.processes?.[rid];
      if (pr) return pr.alive && Date.now() - p.lastSeen < EDGE_FRESH_MS;
    }
    return false;
  }

  localAddressFor(peerAddr) {
    const [host] = splitAddr(peerAddr);
    if (host.startsWith('127.')) return this.bind !== '0.0.0.0' ? this.bind : '127.0.0.1';
    return this.bind !== '0.0.0.0'
      ? this.bind
      : ipv4s().find((i) => !i.ipAddress.startsWith('127.'))?.ipAddress || '127.0.0.1';
  }

  state() {
    const st = emptyState(this.era);
    st.lastEventAppliedIdx = this.eventIdx;
    for (const [iid, inst] of this.allInstances()) st.instances[iid] = inst;
    st.runners = this.allRunnerStatuses();
    const nodes = [];
    if (this.worker)
      nodes.push({ nodeId: this.nodeId, info: this.localInfo(), lastSeen: Date.now() });
    for (const p of this.topologyPeers())
      if (p.payload.info)
        nodes.push({ nodeId: p.nodeId, info: p.payload.info, lastSeen: p.lastSeen });
    for (const n of nodes) {
      st.topology.nodes.push(n.nodeId);
      st.lastSeen[n.nodeId] = new Date(n.lastSeen).toISOString();
      st.downloads[n.nodeId] = n.info.downloads;
      st.nodeIdentities[n.nodeId] = n.info.identity;
      st.nodeMemory[n.nodeId] = n.info.memory;
      st.nodeDisk[n.nodeId] = n.info.disk;
      st.nodeSystem[n.nodeId] = n.info.system;
      st.nodeNetwork[n.nodeId] = n.info.network;
      st.nodeThunderbolt[n.nodeId] = { interfaces: [] };
      st.nodeRdmaCtl[n.nodeId] = { enabled: false };
      if (st.nodeBackends) st.nodeBackends[n.nodeId] = n.info.backends;
    }
    // Edges as exo's workers make them: a node that answers /node_id gets an edge to it at
    // /ip4/ADDR/tcp/API_PORT. Here: this node and the peers it reaches, and between peers what
    // they report reaching.
    const edge = (host, port) => [
      { sinkMultiaddr: { address: `/ip4/${host}/tcp/${port}`, address_type: 'ip4' } },
    ];
    const add = (a, b, e) => {
      st.topology.connections[a] ??= {};
      st.topology.connections[a][b] = e;
    };
    const reach = this.worker ? this.reachablePeers() : [];
    const byId = new Map(this.topologyPeers().map((p) => [p.nodeId, p]));
    for (const p of reach)
      add(this.nodeId, p.nodeId, edge(splitAddr(p.addr)[0], p.payload.apiPort));
    for (const p of byId.values()) {
      for (const q of p.payload.reaches || []) {
        if (q === this.nodeId && this.worker)
          add(p.nodeId, q, edge(this.localAddressFor(p.addr), this.args.api_port));
        else if (byId.has(q))
          add(p.nodeId, q, edge(splitAddr(byId.get(q).addr)[0], byId.get(q).payload.apiPort));
      }
    }
    return st;
  }

  // --- instances (this node as their master) --------------------------------------------

  /** The nodes a placement can use: this node first, then the peers it reaches, by id. */
  placementNodes() {
    const seen = this.reachablePeers().sort((x, y) => (x.nodeId < y.nodeId ? -1 : 1));
    const me = this.worker
      ? [
          {
            nodeId: this.nodeId,
            ip: seen.length ? this.localAddressFor(seen[0].addr) : '127.0.0.1',
          },
        ]
      : [];
    return [...me, ...seen.map((q) => ({ nodeId: q.nodeId, ip: splitAddr(q.addr)[0] }))];
  }

  placementError(c, sharding, meta, minNodes) {
    const n = this.placementNodes().length;
    if (minNodes > n || minNodes < 1) return 'No cycles found with sufficient memory';
    if (sharding === 'Tensor' && !c.supportsTensor)
      return `Requested Tensor sharding but this model does not support tensor parallelism: ${c.modelId}`;
    if (meta === 'MlxJaccl')
      return 'Requested RDMA (MlxJaccl) but no RDMA-connected cycles available';
    return null;
  }

  createInstance(c, sharding, _meta, nodes) {
    const iid = uuid();
    const runnerToShard = {};
    const nodeToRunner = {};
    const hostsByNode = {};
    const per = Math.ceil(c.nLayers / nodes.length);
    const port = 49153 + crypto.randomInt(16000);
    nodes.forEach((n, rank) => {
      const rid = uuid();
      const start = Math.min(c.nLayers, rank * per);
      const end = Math.min(c.nLayers, (rank + 1) * per);
      runnerToShard[rid] =
        sharding === 'Tensor'
          ? { TensorShardMetadata: shard(c, rank, nodes.length, 0, c.nLayers) }
          : { PipelineShardMetadata: shard(c, rank, nodes.length, start, end) };
      nodeToRunner[n.nodeId] = rid;
      hostsByNode[n.nodeId] = nodes.map((m) => ({ ip: m.ip, port }));
    });
    const inst = {
      MlxRingInstance: {
        instanceId: iid,
        shardAssignments: { modelId: c.modelId, runnerToShard, nodeToRunner },
        hostsByNode,
        ephemeralPort: port,
      },
    };
    this.instances.set(iid, inst);
    this.record('InstanceCreated', { instance: inst });
    logger.debug(
      `exo stand-in: instance ${iid} of ${c.modelId} on ${nodes.length} node(s)`,
      'exo.master.main:_command_processor:1',
    );
    return inst;
  }

  deleteInstance(iid) {
    if (!this.instances.has(iid)) return false;
    this.instances.delete(iid);
    this.record('InstanceDeleted', { instanceId: iid });
    if (this.worker) this.worker.instanceDeleted(iid);
    return true;
  }

  /** A DeleteInstance command: handled here when this node placed the instance, else sent on. */
  async requestDeleteInstance(iid) {
    if (this.deleteInstance(iid)) return { status: 200 };
    const owner = [...this.peers.values()].find((q) =>
      Object.hasOwn(q.payload.instances || {}, iid),
    );
    if (!owner) return { status: 404 };
    const [host, port] = splitAddr(owner.addr);
    const r = await httpJson(
      'DELETE',
      host,
      port,
      `/instance/${encodeURIComponent(iid)}`,
      null,
      3000,
    ).catch(() => null);
    if (r && r.status === 200) {
      // forget it at once so that this node's state agrees
      owner.payload = { ...owner.payload, instances: { ...owner.payload.instances } };
      delete owner.payload.instances[iid];
    }
    return r || { status: 500 };
  }

  // --- faults of the whole process ----------------------------------------------------------

  closedResource() {
    emit(
      'WARNING',
      'Error in command processor',
      'exo.master.main:_command_processor:468',
      loguruTraceback(
        [
          ['exo/master/main.py', '_command_processor', 'await self.event_sender.send(event)'],
          ['exo/utils/channels.py', 'send', 'await self._send.send(item)'],
          ['anyio/streams/memory.py', 'send', 'self.send_nowait(item)'],
          ['anyio/streams/memory.py', 'send_nowait', 'raise ClosedResourceError'],
        ],
        'anyio.ClosedResourceError',
        null,
      ),
    );
  }

  exitAfter() {
    const mainLine = this.era === 'libp2p' ? 300 : 369;
    emit(
      'CRITICAL',
      'EXO terminated due to unhandled exception',
      `exo.main:${this.era === 'libp2p' ? 'main' : 'main_inner'}:${mainLine + 2}`,
      loguruTraceback(
        [
          [
            'exo/main.py',
            this.era === 'libp2p' ? 'main' : 'main_inner',
            'anyio.run(node.run)',
            mainLine,
          ],
          ['exo/worker/main.py', '_forward_info', 'await self.event_sender.send('],
          ['anyio/streams/memory.py', 'send', 'self.send_nowait(item)'],
          ['anyio/streams/memory.py', 'send_nowait', 'raise BrokenResourceError'],
        ],
        'anyio.BrokenResourceError',
        null,
      ),
    );
    logger.info('EXO Shutdown complete', `exo.main:main_inner:${mainLine + 7}`);
    writeErr(
      pyTraceback(
        [
          ...entryFrames(),
          ...(this.era === 'zenoh' ? [['exo/main.py', 'main', 'main_inner(args)', 327]] : []),
          [
            'exo/main.py',
            this.era === 'libp2p' ? 'main' : 'main_inner',
            'anyio.run(node.run)',
            mainLine,
          ],
          ['anyio/streams/memory.py', 'send_nowait', 'raise BrokenResourceError'],
        ],
        'anyio.BrokenResourceError',
      ),
    );
    process.exit(1);
  }

  // --- lifecycle ------------------------------------------------------------------------------

  /** An uncaught exception before the node runs: a plain Python traceback, exit 1. */
  crash(frames, final) {
    writeErr(pyTraceback([...entryFrames(), ...frames], final));
    process.exit(1);
  }

  start() {
    const a = this.args;
    const where = (line) => `exo.main:${this.era === 'libp2p' ? 'main' : 'main_inner'}:${line}`;
    const mainFrames =
      this.era === 'libp2p' ? [] : [['exo/main.py', 'main', 'main_inner(args)', 327]];
    const fn = this.era === 'libp2p' ? 'main' : 'main_inner';

    // main() / main_inner() of each era, up to Node.create
    if (this.era === 'libp2p') {
      logger.info('='.repeat(40), where(275));
      logger.info(`Starting EXO | pid=${process.pid}`, where(276));
      logger.info('='.repeat(40), where(277));
      logger.info(
        `EXO_LIBP2P_NAMESPACE: ${process.env.EXO_LIBP2P_NAMESPACE ?? 'None'}`,
        where(278),
      );
      if (a.offline)
        logger.info('Running in OFFLINE mode — no internet checks, local models only', where(281));
      if (a.bootstrap_peers.length)
        logger.info(`Bootstrap peers: ${pyListRepr(a.bootstrap_peers)}`, where(284));
    } else {
      logger.info(`pid = ${process.pid}`, where(342));
      if (process.env.EXO_LIBP2P_NAMESPACE) {
        this.crash(
          [...mainFrames, ['exo/main.py', fn, 'raise ValueError(', 344]],
          'ValueError: EXO_LIBP2P_NAMESPACE has been removed - use EXO_ZENOH_NAMESPACE instead',
        );
      }
      logger.info(`EXO_ZENOH_NAMESPACE: ${process.env.EXO_ZENOH_NAMESPACE ?? 'None'}`, where(347));
      if (a.offline)
        logger.info('Running in OFFLINE mode — no internet checks, local models only', where(350));
      if (a.bootstrap_peers.length) {
        this.crash(
          [
            ...mainFrames,
            [
              'exo/main.py',
              fn,
              'raise ValueError("Bootstrap peers has been temporarily removed")',
              353,
            ],
          ],
          'ValueError: Bootstrap peers has been temporarily removed',
        );
      }
    }
    if (a.no_batch)
      logger.info(
        'Continuous batching disabled (--no-batch)',
        where(this.era === 'libp2p' ? 288 : 357),
      );
    if (a.fast_synch === true)
      logger.info('FAST_SYNCH forced ON', where(this.era === 'libp2p' ? 293 : 362));
    if (a.fast_synch === false)
      logger.info('FAST_SYNCH forced OFF', where(this.era === 'libp2p' ? 296 : 365));
    logger.info(
      `exo stand-in: exo ${this.release.version} (${this.era} era, package ${this.release.packageVersion}), namespace ${this.namespace}, ` +
        `api port ${a.spawn_api ? a.api_port : 'off'}, ${this.era === 'libp2p' ? `libp2p port ${a.libp2p_port}` : `zenoh port ${a.zenoh_port}, discovery port ${a.discovery_port}`}, ` +
        `host ${this.hostname}, fault ${faultText(this.fault)}`,
      where(1),
    );

    // Node.create: the networking layer takes the ports as Rust u16s
    const createFrames = [
      ...mainFrames,
      ['exo/main.py', fn, 'node = anyio.run(Node.create, args)'],
      [
        'anyio/_core/_eventloop.py',
        'run',
        'return async_backend.run(func, args, {}, backend_options)',
      ],
      ['exo/main.py', 'create', 'router = Router.create('],
    ];
    const ports = this.era === 'libp2p' ? [a.libp2p_port] : [a.zenoh_port, a.discovery_port];
    if (ports.some((p) => p < 0 || p > 65535))
      this.crash(createFrames, 'OverflowError: out of range integral type conversion attempted');
    if (this.era === 'zenoh' && a.zenoh_port === 0) {
      writeErr(
        "\nthread '<unnamed>' panicked at rust/networking/src/lib.rs:25:5:\nmust used defined listen port\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
      );
      this.crash(createFrames, 'pyo3_runtime.PanicException: must used defined listen port');
    }
    if (this.fault.kind === 'crash-on-start')
      this.crash(createFrames, "RuntimeError: exo stand-in: injected fault 'crash-on-start'");

    logger.info(
      `Starting node ${this.nodeId}`,
      `exo.main:create:${this.era === 'libp2p' ? 69 : 74}`,
    );
    if (this.worker) {
      // the stand-in's starting instance: one single-node instance of the release's model
      const c = this.release.model ? cardFor(this.release.model) : null;
      if (c)
        this.createInstance(c, 'Pipeline', 'MlxRing', [{ nodeId: this.nodeId, ip: '127.0.0.1' }]);
      this.worker.start();
    }
    logger.info('Starting Master', 'exo.master.main:run:151');
    if (a.spawn_api) logger.info('Starting API', 'exo.api.main:run:1915');

    const f = this.fault;
    this.after(f.kind === 'slow-start' ? f.seconds : 0, () => this.listen());
    if (f.kind === 'exit-after') this.after(f.seconds, () => this.exitAfter());
    if (f.kind === 'closed-resource') this.after(f.seconds, () => this.closedResource());
    if (f.kind !== 'hang') this.every(POLL_MS, () => this.pollPeers());
    this.every(TIMEOUT_CHECK_S() * 1000, () => this.masterPlan());

    const stop = () => {
      if (this.worker) this.worker.stop();
      logger.info('EXO Shutdown complete', where(this.era === 'libp2p' ? 307 : 376));
      for (const t of this.timers) clearTimeout(t);
      for (const s of this.sockets) s.destroy();
      for (const s of this.servers) s.close();
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  }

  listen() {
    const port = this.args.api_port;
    let server;
    if (this.fault.kind === 'hang') {
      // accepts connections, reads requests, never answers
      server = net.createServer((sock) => {
        this.sockets.add(sock);
        sock.on('data', () => {});
        sock.on('error', () => {});
        sock.on('close', () => this.sockets.delete(sock));
      });
    } else {
      server = http.createServer((req, res) => {
        this.api.handle(req, res).catch((e) => {
          logger.error(
            `exo stand-in: error serving ${req.method} ${req.url}: ${e?.stack}`,
            'hypercorn.error:error:1',
          );
          if (!res.headersSent) sendText500(res);
          else res.destroy();
        });
      });
      server.keepAliveTimeout = 5000;
      server.on('connection', (sock) => {
        this.sockets.add(sock);
        sock.on('close', () => this.sockets.delete(sock));
      });
    }
    server.on('error', (e) => {
      // hypercorn failing to bind ends exo with a traceback
      emit(
        'CRITICAL',
        'EXO terminated due to unhandled exception',
        'exo.main:main_inner:371',
        loguruTraceback(
          [
            ['exo/api/main.py', 'run_api', 'await serve('],
            ['hypercorn/asyncio/run.py', 'worker_serve', 'server = await loop.create_server('],
          ],
          'OSError',
          `[Errno ${e.errno ? Math.abs(e.errno) : 98}] error while attempting to bind on address ('${this.bind}', ${port}): ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`,
        ),
      );
      logger.info('EXO Shutdown complete', 'exo.main:main_inner:376');
      process.exit(1);
    });
    server.listen(port, this.bind, () => {
      if (this.args.spawn_api) {
        writeErr(banner(this.era, port));
        logger.info(
          `Running on http://${this.bind}:${port} (CTRL + C to quit)`,
          'hypercorn.error:info:1',
        );
      }
    });
    this.servers.push(server);
  }
}
