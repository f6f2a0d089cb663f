# One exo node. Replace the hardware part with this machine's own
# `nixos-generate-config --show-hardware-config` output.
{ inputs, pkgs, ... }:
{
  networking.hostName = "node1";

  services.exo = {
    enable = true;
    package = inputs.exo.packages.${pkgs.stdenv.hostPlatform.system}.default;
    # Pin the discovery namespace so nodes on different exo versions still find each other
    # during a rolling upgrade (null = exo's version).
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
