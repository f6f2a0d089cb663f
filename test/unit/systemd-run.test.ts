import { describe, expect, it } from 'vitest';
import { revertTimerArgv, transientUnitArgv } from '../../src/programs/systemd-run.js';

describe('activation in a transient unit', () => {
  it('escapes every $ of its script as $$, since systemd expands variables in unit command lines', () => {
    const argv = transientUnitArgv('u', '/run/exo-deploy/u.status', [
      '/nix/store/x/bin/switch-to-configuration',
      'test',
    ]);
    const script = argv[argv.indexOf('-c') + 1] as string;
    // what systemd makes of it ($$ → $) is the script sh must see
    const asSystemdPassesIt = script.replace(/\$\$/g, '$');
    expect(script.replace(/\$\$/g, '')).not.toContain('$');
    expect(asSystemdPassesIt).toContain('status_file=$1');
    // NixOS gives a unit only systemd's programs on its PATH: the script needs shell built-ins only
    expect(asSystemdPassesIt).not.toMatch(/\b(mkdir|cat|tee|env)\b/);
    expect(argv.slice(-4)).toEqual([
      'sh',
      '/run/exo-deploy/u.status',
      '/nix/store/x/bin/switch-to-configuration',
      'test',
    ]);
  });
});

describe('the revert timer', () => {
  it('has a command line that systemd can write to its transient unit file and read back at a daemon-reload: nothing to escape, no empty argument', () => {
    const argv = revertTimerArgv('u', 60, '/run/exo-deploy/u.sh', '/run/exo-deploy/u.status', {
      systemProfile: '/nix/var/nix/profiles/system',
      running: '/nix/store/a',
      profilePath: null,
      profileGeneration: null,
      sh: '/nix/store/b/bin/sh',
      nixEnv: '/nix/store/n/bin/nix-env',
    });
    const command = argv.slice(argv.indexOf('--') + 1);
    expect(command.filter((a) => a === '' || /[\s$;\\"'`%]/.test(a))).toEqual([]);
    expect(command.slice(0, 3)).toEqual([
      '/nix/store/b/bin/sh',
      '/run/exo-deploy/u.sh',
      '/run/exo-deploy/u.status',
    ]);
  });
});
