#!/usr/bin/env node
// npm run demo: a 3-host sandbox fleet, a healthy release deployed, then a release whose
// runners die on one host: the health gate catches it and every host is rolled back.
// Needs root (systemd-nspawn, network namespaces). Tears everything down at the end.
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { $, chalk } from 'zx';
import { down, nixEnv, release, REPO, up } from './fleet.mjs';

const dir = await mkdtemp(path.join(os.tmpdir(), 'exo-deploy-demo-'));
const config = path.join(dir, 'config', 'exo-deploy.toml');
const cli = path.join(REPO, 'dist/cli/cli.js');
const say = (text) => console.log(`\n${chalk.bold.cyan('==>')} ${chalk.bold(text)}`);
const exoDeploy = (...args) =>
  $({ env: nixEnv(), nothrow: true, stdio: 'inherit' })`node ${cli} --config ${config} ${args}`;

const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
try {
  say(
    'Bringing up 3 sandbox hosts (systemd-nspawn, sshd, Nix) and deploying exo 0.1.0 with exo-deploy',
  );
  await up({ dir, hosts: 3, signal: stop.signal });

  say('exo-deploy check');
  await exoDeploy('check');

  say('A new, healthy release: exo 0.2.0. exo-deploy update exo --commit, then deploy');
  await release({ dir, version: '0.2.0' });
  await exoDeploy('update', 'exo', '--commit');
  const healthy = await exoDeploy('deploy', '--yes');
  console.log(chalk.dim(`exit code ${healthy.exitCode}`));

  say('A broken release: exo 0.3.0, whose runners die 3 s after start on h2');
  await release({ dir, version: '0.3.0', fault: 'runner-exit:3', faultOn: ['h2'] });
  await exoDeploy('update', 'exo', '--commit');
  const broken = await exoDeploy('deploy', '--yes');
  console.log(chalk.dim(`exit code ${broken.exitCode} (1: failed, every host rolled back)`));

  say('exo-deploy generations --hosts h2: the fleet runs 0.2.0 again');
  await exoDeploy('generations', '--hosts', 'h2');

  const reports = path.join(dir, 'config', 'reports');
  const files = (await $`ls -1 ${reports}`).stdout.trim().split('\n');
  say(`Reports (Markdown for people, JSON for programs) in ${reports}:`);
  for (const f of files) console.log(`  ${f}`);
  const last = files.filter((f) => f.endsWith('.md')).at(-1);
  if (last) {
    const text = await readFile(path.join(reports, last), 'utf8');
    console.log(chalk.dim(text.split('\n## Steps')[0]));
  }
  if (healthy.exitCode !== 0 || broken.exitCode !== 1) process.exitCode = 1;
} finally {
  say('Tearing the sandbox down');
  await down({ dir });
}
