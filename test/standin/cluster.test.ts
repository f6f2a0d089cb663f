// Clusters of stand-ins: peers seen only when they answer and share the discovery namespace.
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, get, killAll, ready, start, topologyNodes, until, untilSees, type StandIn } from './harness.js';

afterEach(() => killAll());

/** Wait until `s` has logged (at DEBUG) that it ignored each of `ids` for another namespace. */
async function untilRejected(s: StandIn, ids: string[]): Promise<void> {
  await until(`${s.name} to reject ${ids.join(',')}`, () =>
    ids.every((id) => s.log().includes(`Ignoring peer ${id} at `) && s.log().includes('another discovery namespace')),
  );
}

describe('exo stand-in clusters', () => {
  it('three nodes on one version see each other; a killed node drops out', async () => {
    const ports = await freePorts(3);
    const nodes = ports.map((port, i) =>
      start({ name: `h${i + 1}`, port, release: { version: '1.0.3' }, peers: ports.filter((p) => p !== port) }),
    );
    const ids = await Promise.all(nodes.map((n) => ready(n)));
    await Promise.all(nodes.map((n) => untilSees(n, ids)));

    const st = (await get(nodes[0]!.port, '/state')).json;
    expect(Object.keys(st.nodeIdentities).sort()).toEqual([...ids].sort());
    expect(Object.keys(st.runners)).toHaveLength(3); // one per node, cluster-wide like exo's global state
    expect(Object.keys(st.topology.connections[ids[0]!]).sort()).toEqual([ids[1]!, ids[2]!].sort());
    expect(st.topology.connections[ids[0]!][ids[1]!][0].sinkMultiaddr.address).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/);
    expect(nodes[0]!.log()).toContain(`Connected to peer ${ids[1]} (h2) at 127.0.0.1:${ports[1]}`);

    process.kill(nodes[2]!.proc.pid!, 'SIGKILL');
    await untilSees(nodes[0]!, [ids[0]!, ids[1]!]);
    await untilSees(nodes[1]!, [ids[0]!, ids[1]!]);
  });

  it('a node on another version is in another namespace: not seen, and sees nobody', async () => {
    const ports = await freePorts(3);
    const versions = ['1.0.3', '1.0.3', '1.0.4'];
    const nodes = ports.map((port, i) =>
      start({ name: `v${i + 1}`, port, release: { version: versions[i]! }, peers: ports.filter((p) => p !== port), args: ['-v'] }),
    );
    const ids = await Promise.all(nodes.map((n) => ready(n)));
    await untilSees(nodes[0]!, [ids[0]!, ids[1]!]);
    await untilSees(nodes[1]!, [ids[0]!, ids[1]!]);
    // every node has polled the others and rejected the foreign namespace (a positive signal)
    await untilRejected(nodes[2]!, [ids[0]!, ids[1]!]);
    await untilRejected(nodes[0]!, [ids[2]!]);
    await untilRejected(nodes[1]!, [ids[2]!]);
    expect(await topologyNodes(nodes[2]!)).toEqual([ids[2]]);
    expect((await topologyNodes(nodes[0]!)).sort()).toEqual([ids[0]!, ids[1]!].sort());
  });

  it('a pinned --namespace joins nodes on different versions', async () => {
    const ports = await freePorts(2);
    const a = start({ name: 'n1', port: ports[0]!, release: { version: '1.0.3' }, peers: [ports[1]!], args: ['--namespace', 'prod'] });
    const b = start({ name: 'n2', port: ports[1]!, release: { version: '1.0.4' }, peers: [ports[0]!], args: ['--namespace', 'prod'] });
    const ids = [await ready(a), await ready(b)];
    await untilSees(a, ids);
    await untilSees(b, ids);
  });

  it('isolated: the faulty host sees no peers and no peer sees it', async () => {
    const ports = await freePorts(3);
    const release = { version: '1.0.3', fault: 'isolated', fault_on: ['i3'] };
    const nodes = ports.map((port, i) => start({ name: `i${i + 1}`, port, release, peers: ports.filter((p) => p !== port), args: ['-v'] }));
    const ids = await Promise.all(nodes.map((n) => ready(n)));
    await untilSees(nodes[0]!, [ids[0]!, ids[1]!]);
    await untilSees(nodes[1]!, [ids[0]!, ids[1]!]);
    await untilRejected(nodes[2]!, [ids[0]!, ids[1]!]);
    await untilRejected(nodes[0]!, [ids[2]!]);
    expect(await topologyNodes(nodes[2]!)).toEqual([ids[2]]);
    expect((await topologyNodes(nodes[0]!)).sort()).toEqual([ids[0]!, ids[1]!].sort());
  });
});
