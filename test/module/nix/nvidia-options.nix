# The options of NixOS's NVIDIA module (nixos/modules/hardware/video/nvidia.nix) that
# services.exo reads, for evaluation tests: which driver package the system loads, and whether
# it loads one (services.xserver.videoDrivers containing "nvidia", or datacenter.enable).
{ lib, ... }:
{
  options = {
    hardware.nvidia.package = lib.mkOption { type = lib.types.package; };
    hardware.nvidia.datacenter.enable = lib.mkEnableOption "the data-center driver";
    services.xserver.videoDrivers = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
    };
  };
}
