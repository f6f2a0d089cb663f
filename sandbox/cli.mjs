#!/usr/bin/env node
// npm run sandbox -- up --hosts N --dir DIR [--no-deploy] [--via nixos-rebuild] [--pull [--interval S]]
// npm run sandbox -- release --dir DIR --version V [--fault F] [--fault-on h2,h3] [--era E]
//                    [--package-version P] [--load-seconds S] [--declared-era E]
//                    [--needs-reboot]
// npm run sandbox -- down --dir DIR
// npm run sandbox -- rootfs            (build or find the cached base root file system)
import { minimist } from 'zx';
import { up, down, release, deployFirstRelease } from './fleet.mjs';
import { ensureRootfs } from './rootfs.mjs';

const usage = `usage: sandbox up --hosts N --dir DIR [--no-deploy] [--via exo-deploy|nixos-rebuild]
                  [--pull [--interval S]]
       sandbox release --dir DIR --version V [--fault F] [--fault-on h2,h3] [--era libp2p|zenoh]
                       [--package-version P] [--load-seconds S] [--declared-era libp2p|zenoh]
                       [--needs-reboot]
       sandbox down --dir DIR
       sandbox rootfs`;

const argv = minimist(process.argv.slice(2), {
  string: [
    'dir',
    'version',
    'fault',
    'fault-on',
    'via',
    'era',
    'package-version',
    'load-seconds',
    'declared-era',
    'interval',
  ],
  boolean: ['deploy', 'help', 'needs-reboot', 'pull'],
  default: { deploy: true, hosts: 3, interval: '30' },
});
const [command] = argv._;
const fail = (msg) => {
  console.error(msg);
  process.exit(2);
};

if (argv.help || !command) {
  console.log(usage);
  process.exit(command ? 0 : 2);
}
if (process.getuid?.() !== 0 && command !== 'release')
  fail('sandbox: run as root (it creates network namespaces and containers)');

try {
  if (command === 'up') {
    if (!argv.dir) fail(usage);
    // Ctrl-C (or SIGTERM) during up: up stops at its next step and removes what it made;
    // during the first deploy, the hosts are taken down once the deploy has stopped.
    const abort = new AbortController();
    const onSignal = () => {
      console.error('[sandbox] interrupted: cleaning up');
      abort.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const via = argv.via ?? 'exo-deploy';
    const state = await up({
      dir: argv.dir,
      hosts: Number(argv.hosts),
      deploy: false,
      // the hosts follow DIR/config's main branch themselves once the first release is deployed
      pull: argv.pull ? { interval: Number(argv.interval) } : null,
      signal: abort.signal,
    });
    if (argv.deploy && !abort.signal.aborted) {
      try {
        await deployFirstRelease(argv.dir, { via });
      } catch (e) {
        if (!abort.signal.aborted) {
          console.error(
            `[sandbox] the first deploy failed: ${e.message}\n[sandbox] the hosts stay up; \`sandbox down --dir ${argv.dir}\` removes them`,
          );
          process.exit(1);
        }
      }
    }
    if (abort.signal.aborted) {
      await down({ dir: argv.dir });
      process.exit(130);
    }
    console.log(`sandbox up: ${state.hosts.map((h) => `${h.name}=${h.address}`).join(' ')}`);
    console.log(`config: ${state.deployConfig}`);
    if (state.pull)
      console.log(
        `pull:   the hosts follow ${state.pull.url} (main) every ${state.pull.interval} s: commit in ${state.config}`,
      );
    console.log(`try:    npx exo-deploy --config ${state.deployConfig} check`);
    console.log(`down:   npm run sandbox -- down --dir ${argv.dir}`);
    process.exit(0);
  } else if (command === 'release') {
    if (!argv.dir || !argv.version) fail(usage);
    const faultOn = argv['fault-on']
      ? String(argv['fault-on'])
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
    // --era: the stand-in's era (default: 1.0.x libp2p, else zenoh); --declared-era: the era the
    // hosts' configuration claims for the release (default: the real one)
    const loadSeconds =
      argv['load-seconds'] === undefined ? undefined : Number(argv['load-seconds']);
    if (loadSeconds !== undefined && !(loadSeconds >= 0))
      fail(`sandbox release: --load-seconds must be a number >= 0, got ${argv['load-seconds']}`);
    const r = await release({
      dir: argv.dir,
      version: String(argv.version),
      fault: argv.fault ?? 'none',
      faultOn,
      era: argv.era,
      packageVersion: argv['package-version'],
      loadSeconds,
      declaredEra: argv['declared-era'],
      needsReboot: argv['needs-reboot'],
    });
    console.log(r.rev);
  } else if (command === 'down') {
    if (!argv.dir) fail(usage);
    await down({ dir: argv.dir });
  } else if (command === 'rootfs') {
    const r = await ensureRootfs();
    console.log(`${r.path} (${r.cached ? 'cached' : `built in ${Math.round(r.seconds)} s`})`);
  } else {
    fail(usage);
  }
} catch (e) {
  console.error(`sandbox ${command}: ${e.message}`);
  process.exit(1);
}
