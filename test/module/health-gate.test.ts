// modules/exo-health-gate.sh, the counter around `exo-deploy check` in the health unit: run
// with bash, a fake check command and a fake systemctl that records its arguments.
import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from './nix-eval.js';

const gate = path.join(repoRoot, 'modules/exo-health-gate.sh');
let dir: string;
let state: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'exo-gate-'));
  state = path.join(dir, 'run');
  await writeFile(path.join(dir, 'systemctl'), `#!/bin/sh\necho "$@" >> "${dir}/systemctl.log"\n`);
  await chmod(path.join(dir, 'systemctl'), 0o755);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Run the gate around a check that exits with `checkExit`. */
async function run(checkExit: number, env: Record<string, string> = {}) {
  const r = await execa('bash', [gate, 'sh', '-c', `exit ${checkExit}`], {
    reject: false,
    env: {
      PATH: `${dir}:${process.env.PATH}`,
      EXO_HEALTH_STATE_DIR: state,
      EXO_HEALTH_THRESHOLD: '3',
      EXO_HEALTH_RESTART: '1',
      EXO_HEALTH_RESTART_INTERVAL: '1800',
      EXO_HEALTH_UNIT: 'exo.service',
      ...env,
    },
  });
  return r.exitCode;
}
const failures = async () => (existsSync(`${state}/health-failures`) ? (await readFile(`${state}/health-failures`, 'utf8')).trim() : null);
const restarts = async () =>
  existsSync(`${dir}/systemctl.log`) ? (await readFile(`${dir}/systemctl.log`, 'utf8')).trim().split('\n') : [];

describe('exo-health-gate', () => {
  it('passes a healthy check and clears the counter', async () => {
    expect(await run(1)).toBe(0);
    expect(await failures()).toBe('1');
    expect(await run(0)).toBe(0);
    expect(await failures()).toBeNull();
    expect(await restarts()).toEqual([]);
  });

  it('records failures below the threshold without failing the unit', async () => {
    expect(await run(1)).toBe(0);
    expect(await run(1)).toBe(0);
    expect(await failures()).toBe('2');
    expect(await restarts()).toEqual([]);
  });

  it('at N consecutive failures restarts exo (try-restart, no block) and fails the unit', async () => {
    await run(1);
    await run(1);
    expect(await run(1)).toBe(1);
    expect(await restarts()).toEqual(['try-restart --no-block exo.service']);
    expect(await failures()).toBeNull(); // counting starts again after a restart
  });

  it('rate-limits restarts but keeps failing the unit while exo stays unhealthy', async () => {
    for (let i = 0; i < 3; i++) await run(1);
    for (let i = 0; i < 3; i++) await run(1);
    expect(await run(1)).toBe(1);
    expect(await restarts()).toHaveLength(1);
  });

  it('restarts again once the interval has passed', async () => {
    const env = { EXO_HEALTH_THRESHOLD: '1', EXO_HEALTH_RESTART_INTERVAL: '0' };
    expect(await run(1, env)).toBe(1);
    expect(await run(1, env)).toBe(1);
    expect(await restarts()).toHaveLength(2);
  });

  it('only fails when restarts are disabled', async () => {
    expect(await run(1, { EXO_HEALTH_THRESHOLD: '1', EXO_HEALTH_RESTART: '0' })).toBe(1);
    expect(await restarts()).toEqual([]);
  });

  it('passes a usage error (exit 2) through without counting it or touching exo', async () => {
    expect(await run(2, { EXO_HEALTH_THRESHOLD: '1' })).toBe(2);
    expect(await failures()).toBeNull();
    expect(await restarts()).toEqual([]);
  });

  it('treats a garbled counter file as zero', async () => {
    await run(1);
    await writeFile(`${state}/health-failures`, 'garbage\n');
    expect(await run(1)).toBe(0);
    expect(await failures()).toBe('1');
  });

  it('refuses to run without a check command', async () => {
    const r = await execa('bash', [gate], { reject: false, env: { EXO_HEALTH_STATE_DIR: state } });
    expect(r.exitCode).toBe(2);
  });
});
