# Call flake.nix's outputs with a stand-in nixpkgs (nixpkgs' lib, the stub pkgs, and the
# builders nix/package.nix takes from package-stubs.nix), so the flake's structure, its
# package and its module wrapper can be checked without fetching nixpkgs.
{ lib }:
let
  stubPkgs = import ./stub-pkgs.nix;
  packageStubs = import ./package-stubs.nix { inherit lib; };
  pkgsFor =
    system:
    let
      pkgs =
        stubPkgs
        // packageStubs
        // {
          stdenv.hostPlatform.system = system;
          nixfmt-tree = {
            name = "nixfmt-tree";
          };
          # nixpkgs' callPackage: the function's arguments come from pkgs
          callPackage = lib.callPackageWith pkgs;
        };
    in
    removeAttrs pkgs [ "exo-deploy" ];
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor;
  };
  flake = import ../../../flake.nix;
  self = flake.outputs { inherit self nixpkgs; } // { outPath = toString ../../..; };
  nixosLite = ../../../sandbox/templates/config/nix/nixos-lite;
  moduleEval = lib.evalModules {
    modules = [
      self.nixosModules.default
      (nixosLite + "/options.nix")
      { services.exo.enable = true; }
    ];
    specialArgs = {
      pkgs = nixpkgs.legacyPackages.x86_64-linux;
      utils = import (nixosLite + "/utils.nix") { inherit lib; };
    };
  };
  describe = p: {
    inherit (p) name pname version;
    inherit (p.meta) mainProgram;
    src = baseNameOf p.drvAttrs.src;
    buildInputs = map (d: d.name) p.drvAttrs.buildInputs;
  };
  overlaid = self.overlays.default (nixpkgs.legacyPackages.x86_64-linux // overlaid) nixpkgs.legacyPackages.x86_64-linux;
in
{
  inputs = builtins.attrNames flake.inputs;
  nixpkgsUrl = flake.inputs.nixpkgs.url;
  outputs = builtins.filter (n: n != "outPath") (builtins.attrNames self);
  packages = lib.mapAttrs (_: builtins.attrNames) self.packages;
  package = describe self.packages.x86_64-linux.exo-deploy;
  defaultIsPackage = self.packages.x86_64-linux.default.name == self.packages.x86_64-linux.exo-deploy.name;
  checks = lib.mapAttrs (_: builtins.attrNames) self.checks;
  apps = lib.mapAttrs (_: a: a.default.type) self.apps;
  appProgram = self.apps.x86_64-linux.default.program;
  formatter = lib.mapAttrs (_: f: f.name) self.formatter;
  nixosModules = builtins.attrNames self.nixosModules;
  overlayAdds = builtins.attrNames overlaid;
  overlayPackage = describe overlaid.exo-deploy;
  template = {
    inherit (self.templates.default) description;
    path = toString self.templates.default.path;
  };
  moduleToolkit = describe moduleEval.config.services.exo.toolkitPackage;
  moduleAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) moduleEval.config.assertions);
}
