{
  # The sandbox fleet's configuration repository: one "NixOS" configuration per host.
  # Without nixpkgs or NixOS, each host's system.build.toplevel is a plain derivation that
  # carries what the services.exo module would put there (the exo unit, /etc/exo/release.json)
  # and a switch-to-configuration that activates it with the host's real systemd.
  description = "exo fleet configuration (exo-deploy sandbox)";

  inputs.exo.url = "@EXO_URL@";

  outputs = { self, exo }:
    let
      system = "x86_64-linux";
      fleet = import ./hosts.nix;
      mkToplevel = import ./nix/toplevel.nix;
    in
    {
      nixosConfigurations = builtins.mapAttrs
        (name: host: {
          config.system.build.toplevel = mkToplevel {
            inherit name system fleet;
            exo = exo.packages.${system}.default;
            configurationRevision = self.rev or "dirty";
          };
        })
        fleet.hosts;
    };
}
