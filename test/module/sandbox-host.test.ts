// The sandbox's hosts run the units services.exo renders: their NixOS configuration evaluates
// the real modules/exo.nix with the sandbox's own NixOS options and unit rendering
// (sandbox/templates/config/nix/nixos-lite). These checks fail when the two drift apart: a
// setting of the module the rendered unit lacks, an option of the module the sandbox cannot
// honour, a file of the module the sandbox does not copy.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODULE_FILES } from '../../sandbox/fleet.mjs';
import { haveLib, libArg, nixEval, nixEvalError, repoRoot } from './nix-eval.js';

interface Service {
  serviceConfig: Record<string, unknown>;
  environment: Record<string, string | null>;
  hasPostStart: boolean;
  path: string[];
}
interface SandboxHost {
  units: Record<string, string>;
  services: Record<string, Service>;
  timers: Record<string, Record<string, unknown>>;
  toplevel: string;
}

const HOST_EXPR = 'test/module/nix/eval-sandbox-host.nix';
const evalHost = (settings: object = {}, extra: object = {}) =>
  nixEval<SandboxHost>(`import ./${HOST_EXPR}`, {
    arg: { lib: libArg() },
    argstr: { settingsJSON: JSON.stringify(settings), extraJSON: JSON.stringify(extra) },
    readWrite: true,
  });
const evalHostError = (settings: object = {}, extra: object = {}) =>
  nixEvalError(`import ./${HOST_EXPR}`, {
    arg: { lib: libArg() },
    argstr: { settingsJSON: JSON.stringify(settings), extraJSON: JSON.stringify(extra) },
    readWrite: true,
  });

/** The lines of one [Section] of a unit file. */
function section(text: string, name: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(`[${name}]`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && /^\[.*\]$/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).filter((l) => l !== '');
}

/** KEY=VALUE lines as systemd reads a NixOS unit setting: one line a list element. */
const settingLines = (settings: Record<string, unknown>) =>
  Object.entries(settings).flatMap(([k, v]) =>
    (Array.isArray(v) ? v : [v]).map(
      (x) => `${k}=${x === true ? 'true' : x === false ? 'false' : String(x)}`,
    ),
  );

/** Every setting, variable and package of the module's services is in the unit the host runs. */
function expectServicesRendered(host: SandboxHost) {
  for (const [name, s] of Object.entries(host.services)) {
    const unit = host.units[`${name}.service`]!;
    const lines = section(unit, 'Service');
    for (const line of settingLines(s.serviceConfig))
      expect(lines, `${name}: ${line}`).toContain(line);
    for (const [k, v] of Object.entries(s.environment))
      if (v !== null)
        expect(lines, `${name}: ${k}`).toContain(`Environment=${JSON.stringify(`${k}=${v}`)}`);
    // PATH: the unit's own packages, then NixOS's default (coreutils … systemd)
    const pathLine = lines.find((l) => l.startsWith('Environment="PATH='))!;
    for (const p of s.path) expect(pathLine, `${name}: PATH`).toContain(`${p}/bin`);
    expect(pathLine).toMatch(
      /coreutils-[^/]*\/bin:.*findutils.*gnugrep.*gnused.*systemd-[^/]*\/bin/,
    );
    expect(
      lines.some((l) => l.startsWith('ExecStartPost=')),
      `${name}: postStart`,
    ).toBe(s.hasPostStart);
  }
}

/** Every setting of the module's timers is in the timer the host runs, wanted by timers.target. */
function expectTimersRendered(host: SandboxHost) {
  for (const [name, t] of Object.entries(host.timers)) {
    const unit = host.units[`${name}.timer`]!;
    for (const line of settingLines(t))
      expect(section(unit, 'Timer'), `${name}: ${line}`).toContain(line);
    expect(section(unit, 'Install')).toEqual(['WantedBy=timers.target']);
  }
}

describe.skipIf(!haveLib)("the sandbox hosts render the module's own units", () => {
  it("every setting of the module's services is in the unit the hosts run", async () => {
    const host = await evalHost();
    expect(Object.keys(host.services).sort()).toEqual([
      'exo',
      'exo-backup',
      'exo-deploy-reboot-guard',
      'exo-healthcheck',
    ]);
    expectServicesRendered(host);
    expect(section(host.units['exo.service']!, 'Install')).toEqual(['WantedBy=multi-user.target']);
    for (const unit of ['exo-healthcheck.service', 'exo-deploy-reboot-guard.service'])
      expect(section(host.units[unit]!, 'Service')).toContain('X-RestartIfChanged=false');
    expect(section(host.units['exo-deploy-reboot-guard.service']!, 'Install')).toEqual([
      'WantedBy=multi-user.target',
    ]);
  });

  it('the timers too, wanted by timers.target', async () => {
    const host = await evalHost({ healthCheck: { interval: '5s' } });
    expect(host.timers['exo-healthcheck']).toMatchObject({ OnUnitActiveSec: '5s' });
    expectTimersRendered(host);
  });

  it('a host in pull mode runs the pull unit and timer as the module renders them', async () => {
    const host = await evalHost({
      autoDeploy: {
        enable: true,
        url: 'git://10.231.1.1/config',
        interval: '30s',
        randomizedDelay: '0',
        sshKeyFile: '/root/.ssh/pull-key',
        allowedSignersFile: '/etc/exo-deploy/allowed_signers',
      },
      healthCheck: { textfile: '/var/lib/node-exporter/exo.prom' },
    });
    expect(Object.keys(host.services)).toContain('exo-deploy-pull');
    expect(host.toplevel).toMatch(/^nixos-system-h1-/);
    expectServicesRendered(host);
    expectTimersRendered(host);
    const unit = host.units['exo-deploy-pull.service']!;
    // a switch the unit runs neither restarts nor stops it
    expect(section(unit, 'Service')).toContain('X-RestartIfChanged=false');
    expect(section(unit, 'Unit')).toContain('X-StopOnRemoval=false');
    expect(section(unit, 'Unit')).toEqual(
      expect.arrayContaining(['Wants=network-online.target', 'After=network-online.target']),
    );
    // started by its timer only
    expect(section(unit, 'Install')).toEqual([]);
    const execStart = section(unit, 'Service').find((l) => l.startsWith('ExecStart='))!;
    expect(execStart).toMatch(
      /^ExecStart="\/nix\/store\/[^"]+-exo-deploy-0\.1\.0\/bin\/exo-deploy" "pull" "--url" "git:\/\/10\.231\.1\.1\/config" "--branch" "main" "--host-name" "h1" .* "--allowed-signers" "\/etc\/exo-deploy\/allowed_signers" "--textfile" "\/var\/lib\/node-exporter\/exo-deploy-pull\.prom"$/,
    );
    expect(section(host.units['exo-deploy-pull.timer']!, 'Timer')).toEqual([
      'AccuracySec=1s',
      'OnActiveSec=30s',
      'OnUnitInactiveSec=30s',
      'RandomizedDelaySec=0',
    ]);
    // what the pull runs: git, ssh, nix and nix-env of the host
    const pathLine = section(unit, 'Service').find((l) => l.startsWith('Environment="PATH='))!;
    for (const pkg of ['nix', 'git', 'openssh', 'systemd', 'bash'])
      expect(pathLine, pkg).toMatch(new RegExp(`-${pkg}-[^/]*/bin`));
  });

  it("an option of the module the sandbox cannot honour fails the hosts' evaluation", async () => {
    expect(
      await evalHostError({}, { systemd: { services: { exo: { preStop: 'true' } } } }),
    ).toMatch(/option `systemd\.services\.exo\.preStop' does not exist/);
    expect(
      await evalHostError({}, { users: { users: { alice: { isNormalUser: true } } } }),
    ).toMatch(/the sandbox hosts make only system users/);
    expect(await evalHostError({ namespace: '-x' })).toMatch(
      /Failed assertions:[\s\S]*starts with "-"/,
    );
  });

  it('the sandbox copies every file modules/exo.nix reads', () => {
    const referenced = new Set<string>();
    const visit = (file: string) => {
      for (const m of readFileSync(path.join(repoRoot, 'modules', file), 'utf8').matchAll(
        /\.\/([\w.-]+\.(?:nix|sh))/g,
      )) {
        if (!referenced.has(m[1]!)) {
          referenced.add(m[1]!);
          if (m[1]!.endsWith('.nix')) visit(m[1]!);
        }
      }
    };
    visit('exo.nix');
    expect([...referenced, 'exo.nix'].sort()).toEqual([...MODULE_FILES].sort());
  });
});

describe.skipIf(!haveLib)("nixos-lite's utils: NixOS's escapeSystemdExecArg(s)", () => {
  const UTILS = './sandbox/templates/config/nix/nixos-lite/utils.nix';
  const utils = (body: string) =>
    nixEval(`{ lib }: let u = import ${UTILS} { inherit lib; }; in ${body}`, {
      arg: { lib: libArg() },
    });
  it('quotes every argument and doubles systemd specifiers', async () => {
    expect(await utils(`u.escapeSystemdExecArgs [ "a b" "100%" "$HOME" 3 ]`)).toBe(
      '"a b" "100%%" "$$HOME" "3"',
    );
  });
  it('escapes quotes, backslashes and new lines C-style', async () => {
    expect(await utils(`u.escapeSystemdExecArg "say \\"hi\\"\\\\n\\n"`)).toBe(
      '"say \\"hi\\"\\\\n\\n"',
    );
  });
});
