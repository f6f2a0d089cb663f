// services.exo evaluated through test/module/nix/eval-module.nix (nixpkgs' lib.evalModules,
// nixos-lite's options and utils, stub packages), for the tests that need nixpkgs' lib.
import { libArg, nixEval, nixPath } from './nix-eval.js';

type Unit = {
  serviceConfig: Record<string, unknown>;
  environment: Record<string, string>;
  timerConfig: Record<string, string>;
  unitConfig: Record<string, unknown>;
  postStart?: string;
  restartIfChanged?: boolean;
  description: string;
  wantedBy: string[];
  wants: string[];
  after: string[];
  onFailure: string[];
  onSuccess: string[];
};
export type Eval = {
  failedAssertions: string[];
  services: Record<string, Unit>;
  /** Each service's `path`, as package names. */
  paths: Record<string, string[]>;
  timers: Record<string, Unit>;
  tmpfiles: string[];
  firewall: Record<string, unknown> & { interfaces: Record<string, unknown> };
  etc: Record<string, string>;
  users: { users: Record<string, Record<string, unknown>>; groups: Record<string, unknown> };
  restic: Record<string, { paths: string[]; timerConfig: unknown }>;
  systemPackages: string[];
  toolkitPackage: string | null;
  warnings: string[];
};

/** Which exo of nix/stub-pkgs.nix is services.exo.package (default: nixpkgs' 1.0.71). */
export type StubExo =
  | 'exo'
  | 'exo-flake'
  | 'exo-future'
  | 'exo-v2'
  | 'exo-unstable-old'
  | 'exo-unstable-new'
  | 'exo-pre-v1';

export const EVAL_MODULE = nixPath('test/module/nix/eval-module.nix');

/** Evaluate services.exo with `exo` merged over { enable = true; } (as JSON). */
export function evalExo(
  exo: Record<string, unknown> = {},
  pkg: StubExo = 'exo',
  extra: Record<string, unknown> = {},
): Promise<Eval> {
  return nixEval<Eval>(`import ${EVAL_MODULE}`, {
    arg: { lib: libArg() },
    argstr: {
      configJSON: JSON.stringify({ ...extra, services: { exo: { enable: true, ...exo } } }),
      package: pkg,
    },
  });
}

/** The same on a system with NixOS's NVIDIA module, its driver package of this version. */
export function evalExoWithNvidia(
  exo: Record<string, unknown>,
  driverVersion: string,
  extra: Record<string, unknown> = {},
): Promise<Eval> {
  return nixEval<Eval>(`import ${EVAL_MODULE}`, {
    arg: { lib: libArg() },
    argstr: {
      configJSON: JSON.stringify({
        ...extra,
        services: { ...(extra.services as object), exo: { enable: true, ...exo } },
      }),
      nvidiaDriver: driverVersion,
    },
  });
}

/** The same with a pkgs without exo-deploy: nixpkgs without this flake's overlay or wrapper. */
export function evalExoWithoutToolkit(exo: Record<string, unknown> = {}): Promise<Eval> {
  return nixEval<Eval>(`import ${EVAL_MODULE}`, {
    arg: { lib: libArg(), withoutToolkit: 'true' },
    argstr: { configJSON: JSON.stringify({ services: { exo: { enable: true, ...exo } } }) },
  });
}
