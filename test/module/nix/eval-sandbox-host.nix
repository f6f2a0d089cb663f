# One sandbox host (sandbox/templates/config/nix) evaluated as the sandbox evaluates it: the
# real modules/exo.nix with the sandbox's NixOS options and unit rendering. Returns the unit
# files it renders and the module's own settings for them, to hold one against the other.
#   --arg lib 'import /path/to/nixpkgs.lib/lib' --argstr settingsJSON '{"healthCheck":{"interval":"5s"}}'
#   --argstr extraJSON '{"systemd":{…}}'  one more module, as JSON
{
  lib,
  settingsJSON ? "{}",
  extraJSON ? "{}",
}:
let
  sandbox = ../../../sandbox/templates/config/nix;
  stub = import ./stub-pkgs.nix;
  # the stand-in as the sandbox's exo-src flake makes it: a package carrying its era
  exo = stub.exo // {
    era = "libp2p";
  };
  fleet = {
    apiPort = 52415;
    exo = builtins.fromJSON settingsJSON;
    hosts = {
      h1.address = "10.231.1.2";
      h2.address = "10.231.1.3";
    };
  };
  host = import "${sandbox}/nixos-lite" {
    inherit lib;
    system = "x86_64-linux";
    toolkitSource = sandbox;
    modules = [
      ../../../modules/exo.nix
      (import "${sandbox}/host.nix" {
        name = "h1";
        inherit fleet exo;
      })
      (builtins.fromJSON extraJSON)
    ];
  };
  inherit (host) config;
  service = s: {
    inherit (s) serviceConfig environment;
    hasPostStart = s.postStart != "";
    path = map (p: p.outPath) s.path;
  };
in
{
  units = lib.mapAttrs (_: u: u.text) config.system.build.units;
  services = lib.mapAttrs (_: service) config.systemd.services;
  timers = lib.mapAttrs (_: t: t.timerConfig) config.systemd.timers;
  # forces the assertions, as building the toplevel does
  toplevel = config.system.build.toplevel.name;
}
