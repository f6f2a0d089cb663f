#!/usr/bin/env node
// exo stand-in: a test fixture that behaves like exo (github.com/exo-explore/exo) wherever a
// deployment tool can observe it, in either of exo's networking eras (libp2p: release v1.0.71;
// zenoh: exo main). Plain ESM, node: built-ins only, Node 18 and 20. See README.md.
//
//   node exo.mjs [exo's flags]      (the sandbox's bin/exo runs this)

import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/args.mjs';
import { logConfig, setStore } from './lib/log.mjs';
import { Node } from './lib/node.mjs';
import { effectiveFault, loadRelease } from './lib/release.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DAEMON_CHILD = 'EXO_STANDIN_DAEMON_CHILD'; // set in the process --legacy-daemon detaches

function main() {
  // exo parses its command line first: --help and bad flags need nothing else
  const release = loadRelease(HERE);
  setStore(release.version);
  const args = parseArgs(process.argv.slice(2), release.era);

  if (args.legacy_daemon && !process.env[DAEMON_CHILD]) {
    // zenoh era: python-daemon's DaemonContext(detach_process=True) forks, the parent exits 0
    // and the daemon runs on with its stdio on /dev/null (exo then logs to its log file only).
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      {
        detached: true,
        stdio: 'ignore',
        env: { ...process.env, [DAEMON_CHILD]: '1' },
      },
    );
    child.unref();
    process.exit(0);
  }

  logConfig.verbosity = args.verbosity;
  const hostname = process.env.EXO_STANDIN_HOSTNAME || os.hostname();
  const node = new Node(args, release, hostname, effectiveFault(release, hostname));
  node.start();
}

main();
