# system.build.toplevel: the files NixOS's toplevel has that these hosts use (units with their
# .wants links, /etc files, tmpfiles rules, sw/bin, nixos-version) and a switch-to-configuration
# that activates them with the host's systemd. Fails on failed assertions, as NixOS's does.
{ config, lib, pkgs, system, ... }:
let
  inherit (lib) concatStringsSep mapAttrsToList;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  loginUsers = lib.attrNames (lib.filterAttrs (_: u: !(u.isSystemUser or false)) config.users.users);
  checks =
    if failed != [ ] then
      throw "\nFailed assertions:\n${concatStringsSep "\n" (map (m: "- ${m}") failed)}"
    else if loginUsers != [ ] then
      throw "the sandbox hosts make only system users (isSystemUser = true): ${toString loginUsers}"
    else
      lib.foldr (w: x: builtins.trace "evaluation warning: ${w}" x) true config.warnings;

  # users.users and users.groups, one per line (NAME:GROUP:EXTRA,GROUPS and NAME), for the
  # activation to make what is missing. Only system users are modelled.
  users = mapAttrsToList (
    name: u: "${name}:${u.group}:${concatStringsSep "," (u.extraGroups or [ ])}"
  ) config.users.users;
  groups = lib.attrNames config.users.groups;

  # NixOS links each unit from the units folder, and wantedBy as TARGET.wants/UNIT links
  units = mapAttrsToList (name: u: "${name}=${pkgs.writeText "unit-${name}" u.text}") config.system.build.units;
  wants = lib.concatLists (mapAttrsToList (name: u: map (t: "${t}.wants/${name}") u.wantedBy) config.system.build.units);
  etc =
    mapAttrsToList (name: f: "${name}=${pkgs.writeText (baseNameOf name) f.text}") config.environment.etc
    ++ [ "tmpfiles.d/00-nixos.conf=${pkgs.writeText "00-nixos.conf" (concatStringsSep "\n" config.systemd.tmpfiles.rules + "\n")}" ];

  switchInhibitors = pkgs.writeText "switch-inhibitors" (builtins.toJSON config.system.switch.inhibitors);
  # As NixOS's switchable-system.nix: the inhibitors of the incoming system against the running
  # one's; boot is never refused (the point is to reboot into it). NixOS's lists the changed
  # components with jq; these hosts have no jq, so both lists are shown.
  switchInhibitorsCheck = ''
    incoming="$1" action="$2"
    if [ "$action" = boot ]; then echo "Not checking switch inhibitors (action = $action)"; exit; fi
    current=/run/current-system/switch-inhibitors
    [ -f "$current" ] && [ -f "$incoming/switch-inhibitors" ] || exit 0
    if ! cmp -s "$current" "$incoming/switch-inhibitors"; then
      echo "There are changes to critical components of the system: $(cat "$current") → $(cat "$incoming/switch-inhibitors")"
      echo "You probably want to run 'nixos-rebuild boot' and reboot your system."
      exit 1
    fi
  '';

  # as NixOS's pre-switch-check.nix writes it: every check in a subshell, the first to fail ends it
  preSwitchCheck = pkgs.writeShellScript "pre-switch-checks" (
    "set -o errexit -o nounset -o pipefail\n"
    + lib.concatStrings (
      mapAttrsToList (name: text: ''
        if ! (
          ${text}
        ) >&2; then
          echo "Pre-switch check '${name}' failed" >&2
          exit 1
        fi
      '') ({ switchInhibitors = switchInhibitorsCheck; } // config.system.preSwitchChecks)
    )
  );

  # What NixOS's toplevel links as kernel, initrd and kernel-modules (what a reboot loads, and
  # so what tells that a new system needs one), as store paths named as NixOS names them;
  # these hosts never boot them.
  bootPart =
    name: make:
    derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [
        "-c"
        "mkdir -p \"$out\" && ${make}"
      ];
      PATH = "/usr/bin:/bin";
    };
  kernelVersion = config.sandbox.kernelVersion;
  kernel = bootPart "linux-${kernelVersion}" "echo ${kernelVersion} > \"$out/bzImage\"";
  initrd = bootPart "initrd-linux-${kernelVersion}" "echo ${kernelVersion} > \"$out/initrd\"";
  kernelModules = bootPart "linux-${kernelVersion}-modules" "mkdir -p \"$out/lib/modules/${kernelVersion}\"";

  # What a real NixOS configuration costs to evaluate (seconds and gigabytes), which these
  # hosts' cost nothing of: `work` numbers summed in a list held in memory at once. The trace
  # tells every evaluation of a host's system on the evaluating Nix's stderr.
  evaluationCost =
    let
      numbers = builtins.genList (i: i) config.sandbox.evaluationWork;
    in
    builtins.trace "exo-sandbox: evaluating ${config.networking.hostName}" (
      builtins.foldl' builtins.add 0 numbers + builtins.length numbers
    );
in
{
  options.sandbox.kernelVersion = lib.mkOption {
    type = lib.types.str;
    default = "6.6.0";
    description = "The version of the (stand-in) kernel this host's system boots.";
  };

  options.sandbox.evaluationWork = lib.mkOption {
    type = lib.types.ints.unsigned;
    default = 0;
    description = "How many numbers the evaluation of this host's system sums (0: none).";
  };

  config.system.build.toplevel =
    assert checks;
    assert evaluationCost >= 0;
    derivation {
      name = "nixos-system-${config.networking.hostName}-${config.system.nixos.version}";
      inherit system;
      builder = "/bin/sh";
      args = [ ./build-toplevel.sh ];
      PATH = "/usr/bin:/bin";
      units = toString units;
      wants = toString wants;
      etc = toString etc;
      packages = toString config.environment.systemPackages;
      exoPackage = config.services.exo.package;
      nixosVersion = config.system.nixos.version;
      hostName = config.networking.hostName;
      users = concatStringsSep "\n" users;
      groups = concatStringsSep "\n" groups;
      switchScript = ./switch-to-configuration.sh;
      kernel = "${kernel}/bzImage";
      initrd = "${initrd}/initrd";
      inherit kernelModules;
      inherit preSwitchCheck switchInhibitors;
    };
}
