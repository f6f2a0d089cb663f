# Call flake.nix's outputs with a stand-in nixpkgs (nixpkgs' lib and the stub pkgs), so the
# flake's structure and its module wrapper can be checked without fetching nixpkgs.
{ lib }:
let
  stubPkgs = import ./stub-pkgs.nix;
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: stubPkgs // {
      stdenv.hostPlatform.system = system;
      nixfmt-tree = { name = "nixfmt-tree"; };
    });
  };
  flake = import ../../../flake.nix;
  self = flake.outputs { inherit self nixpkgs; } // { outPath = toString ../../..; };
  moduleEval = lib.evalModules {
    modules = [
      self.nixosModules.default
      ./nixos-stubs.nix
      { services.exo.enable = true; }
    ];
    specialArgs.pkgs = nixpkgs.legacyPackages.x86_64-linux;
  };
in
{
  inputs = builtins.attrNames flake.inputs;
  nixpkgsUrl = flake.inputs.nixpkgs.url;
  outputs = builtins.filter (n: n != "outPath") (builtins.attrNames self);
  packages = lib.mapAttrs (_: builtins.attrNames) self.packages;
  checks = lib.mapAttrs (_: builtins.attrNames) self.checks;
  apps = lib.mapAttrs (_: a: a.default.type) self.apps;
  formatter = lib.mapAttrs (_: f: f.name) self.formatter;
  nixosModules = builtins.attrNames self.nixosModules;
  overlayAdds = builtins.attrNames (self.overlays.default nixpkgs.legacyPackages.x86_64-linux { });
  template = {
    inherit (self.templates.default) description;
    path = toString self.templates.default.path;
  };
  moduleToolkit = moduleEval.config.services.exo.toolkitPackage.name;
}
