import { describe, expect, it } from 'vitest';
import { transientUnitArgv } from '../../src/programs/systemd-run.js';

describe('activation in a transient unit', () => {
  it('escapes every $ of its script as $$, since systemd expands variables in unit command lines', () => {
    const argv = transientUnitArgv('u', '/run/exo-deploy/u.status', ['/nix/store/x/bin/switch-to-configuration', 'test']);
    const script = argv[argv.indexOf('-c') + 1] as string;
    // what systemd makes of it ($$ → $) is the script sh must see
    const asSystemdPassesIt = script.replace(/\$\$/g, '$');
    expect(script.replace(/\$\$/g, '')).not.toContain('$');
    expect(asSystemdPassesIt).toContain('status_file=$1');
    // NixOS gives a unit only systemd's programs on its PATH: the script needs shell built-ins only
    expect(asSystemdPassesIt).not.toMatch(/\b(mkdir|cat|tee|env)\b/);
    expect(argv.slice(-4)).toEqual(['sh', '/run/exo-deploy/u.status', '/nix/store/x/bin/switch-to-configuration', 'test']);
  });
});
