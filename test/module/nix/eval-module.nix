# Evaluate modules/exo.nix with nixpkgs' lib, the NixOS options it sets and the part of NixOS's
# `utils` it uses (the sandbox hosts' nixos-lite/options.nix and utils.nix) and stub packages,
# and return the parts the tests look at as plain JSON-able data.
#   nix-instantiate --eval --strict --json test/module/nix/eval-module.nix \
#     --arg lib 'import /path/to/nixpkgs.lib/lib' --argstr configJSON '{"services":{"exo":{"enable":true}}}'
#   --argstr package exo-flake   picks services.exo.package from stub-pkgs.nix (JSON cannot)
#   --arg withoutToolkit true    a pkgs without exo-deploy: nixpkgs without this flake's overlay
#   --argstr nvidiaDriver 570.86 NixOS's NVIDIA options, with that stub driver package
{
  lib,
  configJSON ? "{}",
  package ? null,
  withoutToolkit ? false,
  nvidiaDriver ? null,
}:
let
  stubPkgs = import ./stub-pkgs.nix;
  pkgs = if withoutToolkit then removeAttrs stubPkgs [ "exo-deploy" ] else stubPkgs;
  nixosLite = ../../../sandbox/templates/config/nix/nixos-lite;
  evaluated = lib.evalModules {
    modules = [
      ../../../modules/exo.nix
      (nixosLite + "/options.nix")
      (builtins.fromJSON configJSON)
    ]
    ++ lib.optional (package != null) { services.exo.package = pkgs.${package}; }
    ++ lib.optionals (nvidiaDriver != null) [
      ./nvidia-options.nix
      { hardware.nvidia.package = pkgs.nvidiaDriver nvidiaDriver; }
    ];
    specialArgs = {
      inherit pkgs;
      utils = import (nixosLite + "/utils.nix") { inherit lib; };
    };
  };
  inherit (evaluated) config;
  failed = builtins.filter (a: !a.assertion) config.assertions;
  units = lib.filterAttrs (name: _: lib.hasPrefix "exo" name);
  withoutPackages = unit: removeAttrs unit [ "path" ];
in
if failed != [ ] then
  { failedAssertions = map (a: a.message) failed; }
else
  {
    failedAssertions = [ ];
    services = lib.mapAttrs (_: withoutPackages) (units config.systemd.services);
    # each service's `path`, by package name
    paths = lib.mapAttrs (_: s: map (p: p.name) s.path) (units config.systemd.services);
    timers = units config.systemd.timers;
    tmpfiles = config.systemd.tmpfiles.rules;
    firewall = config.networking.firewall;
    etc = lib.mapAttrs (_: f: f.text) config.environment.etc;
    users = {
      inherit (config.users) users groups;
    };
    restic = config.services.restic.backups;
    systemPackages = map (p: p.name) config.environment.systemPackages;
    toolkitPackage = if config.services.exo.toolkitPackage == null then null else config.services.exo.toolkitPackage.name;
    inherit (config) warnings;
  }
