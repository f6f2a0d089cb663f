// exo-deploy bundle: one .tar.gz support archive, a folder per host: the unit's journal,
// systemctl status, /state, check --json, generations, and the last deploy's journal.
// Token-like values are redacted; environment files and keys are never collected.
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { redact } from '../bundle/redact.js';
import type { Host } from '../config/host.js';
import type { Context } from '../context.js';
import { journalFile, latestDeploy } from '../deploy/journal.js';
import { ExitCode, ExoDeployError } from '../errors.js';
import { checkHost } from '../health/check.js';
import { checkOptions } from '../steps/check-hosts.js';
import { probe } from '../health/probes.js';
import type { Outcome } from '../output/outcome.js';
import { readSystemState } from '../system/generations.js';
import { timestampId } from '../time-id.js';
import { DEFAULT_SINCE_MS } from './check.js';

export async function run(ctx: Context): Promise<Outcome> {
  const id = timestampId(new Date(ctx.now()));
  const out = path.resolve(
    ctx.options.out ?? path.join(ctx.config.reportsDir, `bundle-${id}.tar.gz`),
  );
  const sinceMs = ctx.now() - (ctx.options.since ?? DEFAULT_SINCE_MS);
  const staging = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-bundle-'));
  const root = path.join(staging, `exo-deploy-bundle-${id}`);
  try {
    const collected = await Promise.all(
      ctx.hosts.map((h) => collectHost(ctx, h, path.join(root, h.name), sinceMs)),
    );
    const last = await latestDeploy(ctx.config.stateDir);
    if (last)
      await save(
        root,
        'deploy-journal.jsonl',
        await readFile(journalFile(ctx.config.stateDir, last.id), 'utf8'),
      );
    await save(
      root,
      'README.txt',
      `exo-deploy support bundle ${id}\nhosts: ${ctx.hosts.map((h) => h.name).join(', ')}\njournal since ${new Date(sinceMs).toISOString()}\nsecrets: token-like values are redacted; environment files and keys are not collected\n`,
    );
    await mkdir(path.dirname(out), { recursive: true });
    const temp = `${out}.${process.pid}.tmp`;
    await ctx.deployer.must(['tar', '-czf', temp, '-C', staging, path.basename(root)]);
    await rename(temp, out);
    const files = collected.flat();
    return {
      exitCode: ExitCode.ok,
      data: { bundle: out, hosts: ctx.hosts.map((h) => h.name), files },
      text: `wrote ${out}\n${files.map((f) => `  ${f}`).join('\n')}`,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function save(dir: string, name: string, content: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, name), redact(content));
  return name;
}

/** Every piece is best effort: an unreachable host still gets a folder saying why. */
async function collectHost(
  ctx: Context,
  host: Host,
  dir: string,
  sinceMs: number,
): Promise<string[]> {
  const exec = ctx.executor(host);
  const saved: string[] = [];
  const keep = async (name: string, get: () => Promise<string>) => {
    try {
      saved.push(`${host.name}/${await save(dir, name, await get())}`);
    } catch (error) {
      const why = error instanceof ExoDeployError ? error.message : String(error);
      saved.push(`${host.name}/${await save(dir, `${name}.error`, `${why}\n`)}`);
    }
  };
  await keep(
    'journal.txt',
    async () =>
      (
        await exec.must(
          [
            'journalctl',
            '--unit',
            host.unit,
            '--since',
            `@${Math.floor(sinceMs / 1000)}`,
            '--no-pager',
            '--output',
            'short-iso',
            '--all',
          ],
          { root: true, timeoutMs: ctx.config.timeouts.command },
        )
      ).stdout,
  );
  await keep(
    'systemctl-status.txt',
    async () => (await exec.run(['systemctl', 'status', '--no-pager', '--full', host.unit])).stdout,
  );
  await keep('state.json', async () => {
    const p = await probe(host.api, '/state', ctx.config.health.timeout, ctx.fetch);
    if (!p.ok) throw new Error(`${host.api}/state: ${p.error}`);
    return `${JSON.stringify(p.body, null, 2)}\n`;
  });
  await keep(
    'check.json',
    async () =>
      `${JSON.stringify(await checkHost(exec, checkOptions(ctx, { sinceMs })), null, 2)}\n`,
  );
  await keep(
    'generations.json',
    async () => `${JSON.stringify(await readSystemState(exec), null, 2)}\n`,
  );
  return saved;
}
