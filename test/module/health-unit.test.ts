// modules/exo-health-counter.sh (the counter around `exo-deploy check`, run as the health
// unit's own user) and modules/exo-health-act.sh (run as root after it: the restart and the
// published results), run with bash as systemd runs them, one after the other, with a fake
// check command and a fake systemctl that records its arguments.
import { execa } from 'execa';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from './nix-eval.js';

const counter = path.join(repoRoot, 'modules/exo-health-counter.sh');
const act = path.join(repoRoot, 'modules/exo-health-act.sh');
let dir: string;
let state: string;
let published: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'exo-health-'));
  state = path.join(dir, 'run');
  published = path.join(dir, 'published');
  await mkdir(published);
  await writeFile(path.join(dir, 'systemctl'), `#!/bin/sh\necho "$@" >> "${dir}/systemctl.log"\n`);
  await chmod(path.join(dir, 'systemctl'), 0o755);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const baseEnv = () => ({
  PATH: `${dir}:${process.env.PATH}`,
  EXO_HEALTH_STATE_DIR: state,
  EXO_HEALTH_THRESHOLD: '3',
  EXO_HEALTH_RESTART: '1',
  EXO_HEALTH_RESTART_INTERVAL: '1800',
  EXO_HEALTH_UNIT: 'exo.service',
});

/** The health unit once: the counter around a check that runs `checkScript` (sh), then the
 * act script, as ExecStart= and ExecStopPost= run. Returns both exit codes. */
async function unit(checkScript: string, env: Record<string, string> = {}) {
  const opts = { reject: false, env: { ...baseEnv(), ...env } };
  const check = await execa('bash', [counter, 'sh', '-c', checkScript], opts);
  const after = await execa('bash', ['-c', `umask 077; exec bash "$0"`, act], opts);
  return { check: check.exitCode, act: after.exitCode, actStderr: after.stderr };
}
/** The unit around a check that exits with `checkExit`; the counter's exit code. */
const run = async (checkExit: number, env: Record<string, string> = {}) =>
  (await unit(`exit ${checkExit}`, env)).check;

const failures = async () =>
  existsSync(`${state}/health-failures`)
    ? (await readFile(`${state}/health-failures`, 'utf8')).trim()
    : null;
const restarts = async () =>
  existsSync(`${dir}/systemctl.log`)
    ? (await readFile(`${dir}/systemctl.log`, 'utf8')).trim().split('\n')
    : [];

describe('the health unit: counter, then act', () => {
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
    const r = await execa('bash', [counter], {
      reject: false,
      env: { EXO_HEALTH_STATE_DIR: state },
    });
    expect(r.exitCode).toBe(2);
  });

  it("publishes the status and the textfile readable by all, under the unit's umask, and does not republish an old one", async () => {
    const env = {
      EXO_HEALTH_STATUS_FILE: `${published}/health.json`,
      EXO_HEALTH_TEXTFILE: `${published}/exo.prom`,
    };
    const write = `mkdir -p "${state}" && echo '{"healthy":true}' > "${state}/health.json" && echo 'exo_healthy 1' > "${state}/health.prom"`;
    expect(await unit(write, env)).toMatchObject({ check: 0, act: 0 });
    expect(await readFile(`${published}/health.json`, 'utf8')).toBe('{"healthy":true}\n');
    expect(await readFile(`${published}/exo.prom`, 'utf8')).toBe('exo_healthy 1\n');
    expect((await stat(`${published}/health.json`)).mode & 0o777).toBe(0o644);
    expect((await stat(`${published}/exo.prom`)).mode & 0o777).toBe(0o644);
    expect(existsSync(`${state}/health.json`)).toBe(false);
    // a check that wrote nothing leaves the published result as it was
    await writeFile(`${published}/health.json`, 'kept\n');
    expect(await unit('exit 1', env)).toMatchObject({ check: 0, act: 0 });
    expect(await readFile(`${published}/health.json`, 'utf8')).toBe('kept\n');
  });

  it('never follows a symbolic link the check left: a secret is not published, the unit fails', async () => {
    await writeFile(path.join(dir, 'secret'), 'root-only\n', { mode: 0o600 });
    const env = { EXO_HEALTH_STATUS_FILE: `${published}/health.json` };
    const r = await unit(
      `mkdir -p "${state}" && ln -s "${dir}/secret" "${state}/health.json"`,
      env,
    );
    expect(r.act).toBe(1);
    expect(r.actStderr).toMatch(/health\.json is not a regular file; not published/);
    expect(existsSync(`${published}/health.json`)).toBe(false);
    expect(existsSync(`${state}/health.json`)).toBe(false);
  });

  it("restarts only the module's unit, whatever the request file holds or points to", async () => {
    // made by the check's user while the check ran
    const r = await unit(`ln -s /etc/passwd "${state}/health-restart-requested"`);
    expect(r.act).toBe(0);
    expect(await restarts()).toEqual(['try-restart --no-block exo.service']);
    expect(await lstat(`${state}/health-restart-requested`).catch(() => null)).toBeNull();
  });

  it('drops a request the act never took: a later healthy run restarts nothing', async () => {
    await mkdir(state, { recursive: true });
    await writeFile(`${state}/health-restart-requested`, '3\n');
    expect(await unit('exit 0')).toMatchObject({ check: 0, act: 0 });
    expect(await restarts()).toEqual([]);
  });

  it('asks again at the next failed run when the act never took the request', async () => {
    const env = { ...baseEnv(), EXO_HEALTH_THRESHOLD: '1' };
    // the check fails, and systemd could not start the act after it
    await execa('bash', [counter, 'sh', '-c', 'exit 1'], { reject: false, env });
    expect(await restarts()).toEqual([]);
    expect(await unit('exit 1', { EXO_HEALTH_THRESHOLD: '1' })).toMatchObject({ check: 1, act: 0 });
    expect(await restarts()).toEqual(['try-restart --no-block exo.service']);
  });

  it('fails the unit when the restart itself fails', async () => {
    await writeFile(path.join(dir, 'systemctl'), '#!/bin/sh\nexit 1\n');
    const r = await unit('exit 1', { EXO_HEALTH_THRESHOLD: '1' });
    expect(r).toMatchObject({ check: 1, act: 1 });
    expect(r.actStderr).toMatch(/restarting exo\.service failed/);
  });
});
