// Shared pieces of the integration tests: the real CLI, real Nix store paths that look like
// NixOS systems, and the exo stand-in on loopback.
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
const cliPath = path.join(repoRoot, 'dist/cli/cli.js');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the built exo-deploy, as a user would. */
export async function cli(args: string[], options: { cwd?: string } = {}): Promise<CliResult> {
  const r = await execa('node', [cliPath, ...args], {
    cwd: options.cwd ?? repoRoot,
    reject: false,
    timeout: 120_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export const tempDir = (prefix: string) => mkdtemp(path.join(os.tmpdir(), `exo-deploy-${prefix}-`));

/** A store path shaped like a NixOS system: etc/exo/release.json (schema 1 with the version,
 * unless given) and a bin/switch-to-configuration that points `currentSystem` at itself, as
 * activation does. */
export async function buildFakeSystem(
  dir: string,
  version: string,
  currentSystem: string,
  release?: object,
): Promise<string> {
  const expr = path.join(dir, 'system.nix');
  await writeFile(
    expr,
    `{ version, current, release }:
derivation {
  name = "nixos-system-test-\${version}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" ''
    mkdir -p $out/bin $out/etc/exo
    printf '%s\\n' "$release" > $out/etc/exo/release.json
    printf '#!/bin/sh\\necho "activating %s ($1)"\\nln -sfn %s %s\\n' "$out" "$out" "$current" > $out/bin/switch-to-configuration
    chmod +x $out/bin/switch-to-configuration
  '' ];
  inherit version current release;
}
`,
  );
  const json = JSON.stringify(release ?? { schemaVersion: 1, exo: { version } });
  const r = await execa('nix-build', [
    expr,
    '--argstr',
    'version',
    version,
    '--argstr',
    'current',
    currentSystem,
    '--argstr',
    'release',
    json,
    '--no-out-link',
  ]);
  return r.stdout.trim();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** The exo stand-in on 127.0.0.1: an exo that answers, for the API side of a check. (The
 * child is wrapped: execa's process is a thenable, and awaiting it would wait for its exit.) */
export async function startStandin(
  port: number,
  peers: number[] = [],
  name = 'it',
): Promise<{ child: ResultPromise }> {
  const child = execa(
    'node',
    [path.join(repoRoot, 'sandbox/exo-standin/exo.mjs'), '--api-port', String(port)],
    {
      env: {
        EXO_STANDIN_BIND: '127.0.0.1',
        EXO_STANDIN_HOSTNAME: name,
        EXO_STANDIN_COLOR: '0',
        EXO_STANDIN_PEERS: peers.map((p) => `127.0.0.1:${p}`).join(','),
      },
      reject: false,
      stdio: 'ignore',
    },
  );
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`http://127.0.0.1:${port}/models`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('the exo stand-in did not answer');
}
