# Just enough of NixOS's option declarations for modules/exo.nix to evaluate with nixpkgs'
# lib.evalModules, without the rest of nixpkgs. Not a replacement for the VM tests.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  anything = mkOption {
    type = types.attrsOf types.anything;
    default = { };
  };
  strList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  # Lists inside serviceConfig are concatenated, as NixOS's unitOption does.
  unitOptions = mkOption {
    type = types.attrsOf (
      types.oneOf [
        types.bool
        types.int
        types.str
        (types.listOf types.str)
      ]
    );
    default = { };
  };
  unit = types.submodule {
    freeformType = types.attrsOf types.anything;
    options = {
      wantedBy = strList;
      wants = strList;
      after = strList;
      onFailure = strList;
      onSuccess = strList;
      path = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
      environment = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      serviceConfig = unitOptions;
      timerConfig = unitOptions;
      unitConfig = unitOptions;
    };
  };
  firewallPorts = {
    allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };
    allowedUDPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };
    allowedTCPPortRanges = mkOption {
      type = types.listOf (types.attrsOf types.port);
      default = [ ];
    };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = strList;
    systemd.services = mkOption {
      type = types.attrsOf unit;
      default = { };
    };
    systemd.timers = mkOption {
      type = types.attrsOf unit;
      default = { };
    };
    systemd.tmpfiles.rules = strList;
    users.users = anything;
    users.groups = anything;
    networking.enableIPv6 = mkOption {
      type = types.bool;
      default = true;
    };
    networking.firewall = firewallPorts // {
      interfaces = mkOption {
        type = types.attrsOf (types.submodule { options = firewallPorts; });
        default = { };
      };
    };
    environment.etc = mkOption {
      type = types.attrsOf (types.submodule { options.text = mkOption { type = types.str; }; });
      default = { };
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.anything;
      default = [ ];
    };
    nix.package = mkOption {
      type = types.anything;
      default = {
        outPath = "/nix/store/00000000000000000000000000000000-nix-2.28.0";
        name = "nix-2.28.0";
      };
    };
    services.restic.backups = mkOption {
      type = types.attrsOf (
        types.submodule {
          freeformType = types.attrsOf types.anything;
          options.paths = strList;
          options.timerConfig = mkOption {
            type = types.nullOr (types.attrsOf types.str);
            default = {
              OnCalendar = "daily";
            };
          };
        }
      );
      default = { };
    };
  };
}
