// Who sees whom: nodes of one era see each other iff their namespaces are equal, whatever their
// versions; the two eras never do. And the topology's timing, as exo's master keeps it: a node
// is in it from when it is first seen until it has been silent for more than the time-out.
import { afterEach, describe, expect, it } from 'vitest';
import {
  FAST,
  RELEASES,
  freePorts,
  get,
  killAll,
  ready,
  request,
  start,
  topologyNodes,
  until,
  untilSees,
  type Release,
  type StandIn,
} from './harness.js';

afterEach(() => killAll());

/** Wait until `s` has logged (at DEBUG) that it ignored the node `id`. */
async function untilIgnored(s: StandIn, id: string, why: RegExp): Promise<void> {
  await until(`${s.name} to ignore ${id}`, () => {
    const line = s
      .log()
      .split('\n')
      .find((l) => l.includes(`exo stand-in: ignoring node ${id} at `));
    return line !== undefined && why.test(line);
  });
}

interface Spec {
  name: string;
  release: Release;
  args?: string[];
  env?: Record<string, string>;
}

/** Start nodes that all list each other as peers; resolves their ids. */
async function cluster(specs: Spec[]): Promise<{ nodes: StandIn[]; ids: string[] }> {
  const ports = await freePorts(specs.length);
  const nodes = specs.map((sp, i) =>
    start({
      name: sp.name,
      port: ports[i]!,
      release: sp.release,
      peers: ports.filter((_, j) => j !== i),
      args: ['-v', ...(sp.args ?? [])],
      env: { EXO_STANDIN_COLOR: '0', ...sp.env },
    }),
  );
  return { nodes, ids: await Promise.all(nodes.map((n) => ready(n))) };
}

describe('namespaces and eras', () => {
  it('zenoh: different releases share the default namespace (the package version) and join', async () => {
    const { nodes, ids } = await cluster([
      { name: 'a', release: { version: '0.9.0' } },
      { name: 'b', release: { version: '0.10.0' } },
      { name: 'c', release: { version: '1.2.0' } },
    ]);
    await Promise.all(nodes.map((n) => untilSees(n, ids)));
    const st = (await get(nodes[0]!.port, '/state')).json;
    expect(Object.keys(st.nodeIdentities).sort()).toEqual([...ids].sort());
    expect(Object.keys(st.topology.connections[ids[0]!]).sort()).toEqual([ids[1]!, ids[2]!].sort());
    expect(st.topology.connections[ids[0]!][ids[1]!][0].sinkMultiaddr).toEqual({
      address: `/ip4/127.0.0.1/tcp/${nodes[1]!.port}`,
      address_type: 'ip4',
    });
  });

  it('libp2p: 1.0.70 and 1.0.71 share the hard-coded network key and join', async () => {
    const { nodes, ids } = await cluster([
      { name: 'a', release: { version: '1.0.70' } },
      { name: 'b', release: { version: '1.0.71' } },
    ]);
    await Promise.all(nodes.map((n) => untilSees(n, ids)));
  });

  it('different namespaces never join: --namespace (zenoh), EXO_LIBP2P_NAMESPACE (libp2p)', async () => {
    const z = await cluster([
      { name: 'z1', release: RELEASES.zenoh, args: ['--namespace', 'blue'] },
      { name: 'z2', release: RELEASES.zenoh, args: ['--namespace', 'green'] },
      { name: 'z3', release: { version: '0.8.0' }, args: ['--namespace', 'green'] },
    ]);
    await untilSees(z.nodes[1]!, [z.ids[1]!, z.ids[2]!]);
    await untilIgnored(z.nodes[0]!, z.ids[1]!, /another namespace$/);
    await untilIgnored(z.nodes[1]!, z.ids[0]!, /another namespace$/);
    expect(await topologyNodes(z.nodes[0]!)).toEqual([z.ids[0]]);

    const l = await cluster([
      { name: 'l1', release: RELEASES.libp2p, env: { EXO_LIBP2P_NAMESPACE: 'blue' } },
      { name: 'l2', release: RELEASES.libp2p },
    ]);
    await untilIgnored(l.nodes[0]!, l.ids[1]!, /another namespace$/);
    expect(await topologyNodes(l.nodes[1]!)).toEqual([l.ids[1]]);
  });

  it('the eras never join, even in the "same" namespace', async () => {
    const { nodes, ids } = await cluster([
      { name: 'l', release: RELEASES.libp2p, env: { EXO_LIBP2P_NAMESPACE: 'lab' } },
      { name: 'z', release: RELEASES.zenoh, args: ['--namespace', 'lab'] },
      { name: 'z2', release: { version: '0.9.1' }, args: ['--namespace', 'lab'] },
    ]);
    await untilSees(nodes[1]!, [ids[1]!, ids[2]!]);
    await untilIgnored(nodes[0]!, ids[1]!, /zenoh era$/);
    await untilIgnored(nodes[1]!, ids[0]!, /libp2p era$/);
    expect(await topologyNodes(nodes[0]!)).toEqual([ids[0]]);
  });

  it('isolated: the faulty host sees no peers and no peer sees it', async () => {
    const release = { ...RELEASES.zenoh, fault: 'isolated', fault_on: ['i3'] };
    const { nodes, ids } = await cluster([
      { name: 'i1', release },
      { name: 'i2', release },
      { name: 'i3', release },
    ]);
    await untilSees(nodes[0]!, [ids[0]!, ids[1]!]);
    await untilSees(nodes[1]!, [ids[0]!, ids[1]!]);
    await untilIgnored(nodes[2]!, ids[0]!, /another namespace$/);
    await untilIgnored(nodes[0]!, ids[2]!, /another namespace$/);
    expect(await topologyNodes(nodes[2]!)).toEqual([ids[2]]);
  });

  it("a --no-worker node gathers no info: it is in nobody's topology, its own included", async () => {
    const { nodes, ids } = await cluster([
      { name: 'w', release: RELEASES.zenoh },
      { name: 'nw', release: RELEASES.zenoh, args: ['--no-worker'] },
    ]);
    await untilSees(nodes[1]!, [ids[0]!]);
    await until('w to have polled nw', () =>
      nodes[0]!.log().includes(`exo stand-in: node ${ids[1]} (nw) found at`),
    );
    expect(await topologyNodes(nodes[0]!)).toEqual([ids[0]]);
  });
});

describe("topology timing (exo's master: silent for more than the time-out, checked periodically)", () => {
  it('a killed node stays in the topology until it times out; a restarted one comes back under a new id', async () => {
    const ports = await freePorts(2);
    const env = { ...FAST, EXO_STANDIN_NODE_TIMEOUT: '3', EXO_STANDIN_COLOR: '0' };
    const release = RELEASES.zenoh;
    const a = start({ name: 'a', port: ports[0]!, release, peers: [ports[1]!], env });
    let b = start({ name: 'b', port: ports[1]!, release, peers: [ports[0]!], env });
    const [ia, ib] = [await ready(a), await ready(b)];
    await untilSees(a, [ia, ib]);

    process.kill(b.proc.pid!, 'SIGKILL');
    await b.exited;
    b = start({ name: 'b', port: ports[1]!, release, peers: [ports[0]!], env });
    const ib2 = await ready(b);
    expect(ib2).not.toBe(ib);
    // the new id joins at once; the old one is still there (exo keeps it for 30-40 s)
    await untilSees(a, [ia, ib, ib2]);
    const st = (await get(a.port, '/state')).json;
    expect(Object.keys(st.lastSeen).sort()).toEqual([ia, ib, ib2].sort());
    // then the old id times out, with the master's line
    await untilSees(a, [ia, ib2], 10_000);
    expect(a.log()).toMatch(
      new RegExp(`\\| INFO    \\] Manually removing node ${ib} due to inactivity$`, 'm'),
    );
    expect(a.log()).not.toContain(`Manually removing node ${ib2}`);
  });

  it("the instances of a timed-out node go with it, on the master's next round", async () => {
    const ports = await freePorts(2);
    const env = { ...FAST, EXO_STANDIN_COLOR: '0' };
    const a = start({
      name: 'a',
      port: ports[0]!,
      release: RELEASES.zenoh,
      peers: [ports[1]!],
      env,
    });
    const b = start({
      name: 'b',
      port: ports[1]!,
      release: RELEASES.zenoh,
      peers: [ports[0]!],
      env,
    });
    const ids = [await ready(a), await ready(b)];
    await untilSees(a, ids);
    const model = 'mlx-community/Qwen3-0.6B-4bit';
    const r = await request(a.port, 'POST', '/place_instance', { model_id: model, min_nodes: 2 });
    expect(r.status).toBe(200);
    const iid = await until('the 2-node instance', async () => {
      const st = (await get(a.port, '/state')).json;
      return Object.keys(st.instances).find(
        (k) => st.instances[k].MlxRingInstance.shardAssignments.modelId === model,
      );
    });
    process.kill(b.proc.pid!, 'SIGKILL');
    await until('b to time out', () =>
      a.log().includes(`Manually removing node ${ids[1]} due to inactivity`),
    );
    await until(
      'the instance to go',
      async () => !(await get(a.port, '/state')).json.instances[iid!],
    );
  });
});
