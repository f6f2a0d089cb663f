# The NixOS options the services.exo module sets, declared as NixOS declares them, and nothing
# else: no freeform attributes, so a module that starts to set an option these hosts cannot
# honour fails to evaluate here (the sandbox's check that it runs what the module renders).
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  strList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  # NixOS's unitOption: a value, or a list of values written as one line each
  unitValue = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
    (types.listOf (types.oneOf [ types.bool types.int types.str types.path ]))
  ];
  unitSettings = mkOption {
    type = types.attrsOf unitValue;
    default = { };
  };
  lines = mkOption {
    type = types.lines;
    default = "";
  };
  # the unit options the module uses, with NixOS's names and defaults (nixos/lib/systemd-unit-options.nix)
  commonUnit = {
    description = mkOption {
      type = types.str;
      default = "";
    };
    wantedBy = strList;
    wants = strList;
    requires = strList;
    after = strList;
    before = strList;
    onFailure = strList;
    onSuccess = strList;
    unitConfig = unitSettings;
  };
  service = types.submodule {
    options = commonUnit // {
      path = mkOption {
        type = types.listOf (types.either types.package types.path);
        default = [ ];
      };
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
      };
      script = lines;
      preStart = lines;
      postStart = lines;
      restartIfChanged = mkOption {
        type = types.bool;
        default = true;
      };
      serviceConfig = unitSettings;
    };
  };
  timer = types.submodule {
    options = commonUnit // {
      timerConfig = unitSettings;
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

    networking.hostName = mkOption { type = types.str; };
    networking.enableIPv6 = mkOption {
      type = types.bool;
      default = true;
    };
    # declared so the module evaluates; the sandbox hosts have no firewall
    networking.firewall = firewallPorts // {
      interfaces = mkOption {
        type = types.attrsOf (types.submodule { options = firewallPorts; });
        default = { };
      };
    };

    systemd.services = mkOption {
      type = types.attrsOf service;
      default = { };
    };
    systemd.timers = mkOption {
      type = types.attrsOf timer;
      default = { };
    };
    systemd.tmpfiles.rules = strList;

    # users are not made by these hosts' activation: a static services.exo.user is refused
    # by the toplevel (DynamicUser, the module's default, needs none)
    users.users = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };

    environment.etc = mkOption {
      type = types.attrsOf (types.submodule { options.text = mkOption { type = types.str; }; });
      default = { };
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    nix.package = mkOption {
      type = types.package;
      default = pkgs.nix;
    };

    # declared so the module's restic hand-off evaluates; the hosts run no restic
    services.restic.backups = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.paths = strList;
          options.timerConfig = mkOption {
            type = types.nullOr (types.attrsOf unitValue);
            default = {
              OnCalendar = "daily";
              Persistent = true;
            };
          };
        }
      );
      default = { };
    };

    # nixos/modules/system/activation/pre-switch-check.nix: run by switch-to-configuration with
    # the new system and the action, before it changes anything, unless NIXOS_NO_CHECK=1
    system.preSwitchChecks = mkOption {
      type = types.attrsOf types.str;
      default = { };
    };
    # nixos/modules/system/activation/switchable-system.nix: components a running system cannot
    # swap (NixOS's D-Bus implementation is one); a change of any refuses every action but boot
    system.switch.inhibitors = mkOption {
      type = types.attrsOf types.str;
      default = { };
    };
    system.nixos.version = mkOption {
      type = types.str;
      default = "25.11-sandbox";
    };
    # nixos/modules/misc/version.nix
    system.configurationRevision = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "The Git revision of the top-level flake from which this configuration was built.";
    };
    system.build = mkOption {
      type = types.attrsOf types.unspecified;
      default = { };
    };
  };
}
