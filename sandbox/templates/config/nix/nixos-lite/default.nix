# A sandbox host as a NixOS configuration, without nixpkgs: NixOS's module system (nixpkgs'
# lib.evalModules) evaluates the real services.exo module beside the NixOS options it sets
# (./options.nix); units are rendered as NixOS renders them (./systemd.nix); the host's own
# programs stand in for nixpkgs' packages (./host-pkgs.nix), and ./utils.nix for the parts of
# NixOS's `utils` the module uses. Returns what nixosSystem does:
# { config, options, ... } with config.system.build.toplevel.
{
  lib,
  system,
  modules,
  toolkitSource,
}:
let
  pkgs = import ./host-pkgs.nix { inherit system toolkitSource; };
in
lib.evalModules {
  modules = [
    ./options.nix
    ./systemd.nix
    ./toplevel.nix
  ]
  ++ modules;
  specialArgs = {
    inherit pkgs system;
    utils = import ./utils.nix { inherit lib; };
  };
}
