# One exo node. Replace the hardware part with this machine's own
# `nixos-generate-config --show-hardware-config` output.
{ inputs, pkgs, ... }:
{
  networking.hostName = "node1";

  services.exo = {
    enable = true;
    # exo's own flake builds exo's main branch (zenoh era); it has no version, so record its
    # source revision as the exo that each generation runs. nixpkgs' pkgs.exo (the default)
    # is the last release, 1.0.71 (libp2p era): nodes of the two eras never see each other.
    package = inputs.exo.packages.${pkgs.stdenv.hostPlatform.system}.default;
    packageRevision = inputs.exo.rev or null;
    # Nodes join only nodes of the same era and namespace. A pinned name keeps this cluster
    # apart from others on the network and lets exo-deploy tell that a rolling upgrade keeps
    # the nodes together.
    namespace = "home-cluster";
    openFirewall = true;
    # firewallInterfaces = [ "enp3s0" ];   # open exo's ports only on the cluster's network
    # environmentFile = "/run/secrets/exo.env";   # HF_TOKEN=…, outside the Nix store
    healthCheck.expectNodes = 1;
    backup.keep = 10;
  };

  # exo-deploy reaches the host over SSH as root (or set `sudo = true` in exo-deploy.toml).
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [
    # "ssh-ed25519 AAAA… you@laptop"
  ];
  nix.settings.experimental-features = [
    "nix-command"
    "flakes"
  ];

  # --- hardware: replace with this machine's own ---
  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/boot";
    fsType = "vfat";
  };

  system.stateVersion = "25.11";
}
