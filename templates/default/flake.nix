{
  description = "exo nodes, deployed with exo-deploy";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    # exo itself: `exo-deploy update exo` (or `nix flake update exo`) moves it to exo's latest commit.
    exo.url = "github:exo-explore/exo";
    # exo-deploy: the NixOS module services.exo and the toolkit (point this at where you get it).
    exo-deploy = {
      url = "github:exo-explore/exo-deploy";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      exo-deploy,
      ...
    }@inputs:
    {
      nixosConfigurations.node1 = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        specialArgs = { inherit inputs; };
        modules = [
          exo-deploy.nixosModules.default
          ./hosts/node1.nix
          # the config commit each system is built from: `exo-deploy status` shows it per host,
          # and how far behind this repository's HEAD it is ("dirty": uncommitted changes, on a
          # Nix older than 2.17, which does not say which commit they were made on)
          { system.configurationRevision = self.rev or self.dirtyRev or "dirty"; }
        ];
      };
    };
}
