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
        ];
      };
    };
}
