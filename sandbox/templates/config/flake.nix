{
  # The sandbox fleet's configuration repository: one NixOS configuration per host. Without
  # nixpkgs, each is evaluated by NixOS's module system from nixpkgs' lib (input nixpkgs-lib)
  # with the real services.exo module (nix/modules, copied from exo-deploy's modules/), and
  # its toplevel activates the units the module renders with the host's systemd
  # (nix/nixos-lite).
  description = "exo fleet configuration (exo-deploy sandbox)";

  inputs.exo.url = "@EXO_URL@";
  inputs.nixpkgs-lib = {
    url = "@NIXPKGS_LIB_URL@";
    flake = false;
  };

  outputs = { self, exo, nixpkgs-lib }:
    let
      system = "x86_64-linux";
      lib = import nixpkgs-lib;
      fleet = import ./hosts.nix;
      nixosSystem = import ./nix/nixos-lite;
    in
    {
      nixosConfigurations = builtins.mapAttrs
        (name: _: nixosSystem {
          inherit lib system;
          toolkitSource = ./toolkit;
          modules = [
            ./nix/modules/exo.nix
            (import ./nix/host.nix {
              inherit name fleet;
              exo = exo.packages.${system}.default;
            })
            (fleet.nixos or { })
            { system.configurationRevision = self.rev or self.dirtyRev or "dirty"; }
          ];
        })
        fleet.hosts;
    };
}
