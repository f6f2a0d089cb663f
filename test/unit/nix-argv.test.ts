import { describe, expect, it } from 'vitest';
import {
  flakeUpdateArgv,
  parseNixVersion,
  showConfigArgv,
  usesNewFlakeUpdate,
  experimentalFeatures,
} from '../../src/programs/nix.js';

const v = (text: string) => {
  const parsed = parseNixVersion(text);
  if (!parsed) throw new Error(`unparsed ${text}`);
  return parsed;
};
const X = ['--extra-experimental-features', 'nix-command flakes'];

describe('Nix version detection', () => {
  it('reads Nix, Lix and Determinate version lines', () => {
    expect(v('nix (Nix) 2.8.0')).toMatchObject({ major: 2, minor: 8, patch: 0, flavour: 'nix' });
    expect(v('nix (Lix, like Nix) 2.91.1')).toMatchObject({ major: 2, minor: 91, flavour: 'lix' });
    expect(v('nix (Determinate Nix 3.6.2) 2.29.0')).toMatchObject({ major: 3, minor: 6 });
    expect(parseNixVersion('command not found')).toBeUndefined();
  });

  it('picks the flake update syntax by version: 2.19 changed it, Lix has the new one', () => {
    expect(usesNewFlakeUpdate(v('nix (Nix) 2.8.0'))).toBe(false);
    expect(usesNewFlakeUpdate(v('nix (Nix) 2.18.9'))).toBe(false);
    expect(usesNewFlakeUpdate(v('nix (Nix) 2.19.0'))).toBe(true);
    expect(usesNewFlakeUpdate(v('nix (Nix) 2.24.10'))).toBe(true);
    expect(usesNewFlakeUpdate(v('nix (Lix, like Nix) 2.91.1'))).toBe(true);
  });
});

describe('flake update argv', () => {
  it('old Nix: one input through `flake lock --update-input`, all through `flake update FLAKE`', () => {
    expect(flakeUpdateArgv('nix', v('nix (Nix) 2.8.0'), '/cfg', ['exo'])).toEqual([
      'nix',
      ...X,
      'flake',
      'lock',
      '/cfg',
      '--update-input',
      'exo',
    ]);
    expect(flakeUpdateArgv('nix', v('nix (Nix) 2.18.1'), '/cfg', ['exo', 'nixpkgs'])).toEqual([
      'nix',
      ...X,
      'flake',
      'lock',
      '/cfg',
      '--update-input',
      'exo',
      '--update-input',
      'nixpkgs',
    ]);
    expect(flakeUpdateArgv('nix', v('nix (Nix) 2.8.0'), '/cfg', [])).toEqual([
      'nix',
      ...X,
      'flake',
      'update',
      '/cfg',
    ]);
  });

  it('new Nix: inputs as arguments and the flake through --flake', () => {
    expect(flakeUpdateArgv('nix', v('nix (Nix) 2.24.0'), '/cfg', ['exo'])).toEqual([
      'nix',
      ...X,
      'flake',
      'update',
      'exo',
      '--flake',
      '/cfg',
    ]);
    expect(flakeUpdateArgv('nix', v('nix (Nix) 2.24.0'), '/cfg', [])).toEqual([
      'nix',
      ...X,
      'flake',
      'update',
      '--flake',
      '/cfg',
    ]);
    expect(flakeUpdateArgv('/opt/nix', v('nix (Lix, like Nix) 2.91.1'), '/cfg', ['exo'])).toEqual([
      '/opt/nix',
      ...X,
      'flake',
      'update',
      'exo',
      '--flake',
      '/cfg',
    ]);
  });

  it('reads whether flakes are on from `show-config` (2.20 renamed it `config show`)', () => {
    expect(showConfigArgv('nix', v('nix (Nix) 2.8.0')).slice(-1)).toEqual(['show-config']);
    expect(showConfigArgv('nix', v('nix (Nix) 2.24.0')).slice(-2)).toEqual(['config', 'show']);
    expect(experimentalFeatures('cores = 0\nexperimental-features = flakes nix-command\n')).toEqual(
      ['flakes', 'nix-command'],
    );
    expect(experimentalFeatures('cores = 0\n')).toEqual([]);
  });
});
