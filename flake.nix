{
  description = "exo-deploy: a NixOS module and a toolkit for health-gated, rollback-safe exo deployments";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      nixosModules.exo =
        { lib, pkgs, ... }:
        {
          _file = "${self}/flake.nix#nixosModules.exo";
          imports = [ ./modules/exo.nix ];
          # The health and backup units run this flake's toolkit unless told otherwise.
          services.exo.toolkitPackage = lib.mkDefault (pkgs.callPackage ./nix/package.nix { });
        };
      nixosModules.default = self.nixosModules.exo;

      overlays.default = final: _prev: { exo-deploy = final.callPackage ./nix/package.nix { }; };

      packages = forAllSystems (
        _system: pkgs: rec {
          exo-deploy = pkgs.callPackage ./nix/package.nix { };
          default = exo-deploy;
        }
      );

      apps = forAllSystems (
        system: _pkgs: {
          default = {
            type = "app";
            program = lib.getExe self.packages.${system}.exo-deploy;
          };
        }
      );

      # NixOS VM tests: they need KVM and a full Nix (see docs/module.md).
      checks = forAllSystems (
        system: pkgs: {
          package = self.packages.${system}.exo-deploy;
          module = import ./nix/tests/module.nix { inherit pkgs self; };
          deploy = import ./nix/tests/deploy.nix { inherit pkgs self; };
        }
      );

      formatter = forAllSystems (_system: pkgs: pkgs.nixfmt-tree);

      templates.default = {
        path = ./templates/default;
        description = "A config repository for exo nodes: one NixOS host with services.exo and an exo-deploy.toml";
        welcomeText = ''
          # An exo config repository
          Edit `hosts/node1.nix` (hardware, SSH key), `exo-deploy.toml` (targets), then:

              nix flake lock
              exo-deploy check
              exo-deploy deploy
        '';
      };
    };
}
