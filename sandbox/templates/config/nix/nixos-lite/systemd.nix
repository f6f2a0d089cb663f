# systemd.services and systemd.timers rendered to unit files as NixOS renders them
# (nixos/lib/systemd-lib.nix: serviceToUnit, timerToUnit, attrsToSection, makeJobScript;
# nixos/lib/systemd-unit-options.nix: the unitConfig of the list options, postStart and
# friends as Exec*= scripts; nixos/modules/system/boot/systemd.nix: every service's default
# path). The result is system.build.units: file name -> { text, wantedBy }.
{ config, lib, pkgs, ... }:
let
  inherit (lib)
    attrNames
    concatMapStrings
    concatStringsSep
    isList
    makeBinPath
    makeSearchPathOutput
    mapAttrs'
    nameValuePair
    optionalAttrs
    optionalString
    ;

  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;
  attrsToSection =
    as: concatMapStrings (name: concatMapStrings (x: "${name}=${toOption x}\n") (if isList as.${name} then as.${name} else [ as.${name} ])) (attrNames as);

  unitSection =
    def:
    def.unitConfig
    // optionalAttrs (def.requires != [ ]) { Requires = toString def.requires; }
    // optionalAttrs (def.wants != [ ]) { Wants = toString def.wants; }
    // optionalAttrs (def.after != [ ]) { After = toString def.after; }
    // optionalAttrs (def.before != [ ]) { Before = toString def.before; }
    // optionalAttrs (def.description != "") { Description = def.description; }
    // optionalAttrs (def.onFailure != [ ]) { OnFailure = toString def.onFailure; }
    // optionalAttrs (def.onSuccess != [ ]) { OnSuccess = toString def.onSuccess; };

  commonUnitText =
    def: body:
    ''
      [Unit]
      ${attrsToSection (unitSection def)}
    ''
    + body
    + optionalString (def.wantedBy != [ ]) ''

      [Install]
      WantedBy=${concatStringsSep " " def.wantedBy}
    '';

  # `set -e`, then the text, as NixOS's unit scripts (without strict shell checks)
  jobScript = name: text: "${pkgs.writeShellScriptBin name "set -e\n\n${text}\n"}/bin/${name}";

  # every service's PATH: its own path, then NixOS's minimal default
  defaultPath = with pkgs; [
    coreutils
    findutils
    gnugrep
    gnused
    systemd
  ];

  serviceText =
    name: def:
    let
      path = def.path ++ defaultPath;
      environment = def.environment // {
        PATH = "${makeBinPath path}:${makeSearchPathOutput "bin" "sbin" path}";
      };
      scripts =
        optionalAttrs (def.preStart != "") { ExecStartPre = [ (jobScript "${name}-pre-start" def.preStart) ]; }
        // optionalAttrs (def.script != "") { ExecStart = jobScript "${name}-start" def.script; }
        // optionalAttrs (def.postStart != "") { ExecStartPost = [ (jobScript "${name}-post-start" def.postStart) ]; };
    in
    commonUnitText def (
      "[Service]\n"
      + concatMapStrings (
        n: optionalString (environment.${n} != null) "Environment=${builtins.toJSON "${n}=${environment.${n}}"}\n"
      ) (attrNames environment)
      + optionalString (!def.restartIfChanged) "X-RestartIfChanged=false\n"
      # the module's own settings win over the scripts' (they are mkDefault in NixOS)
      + attrsToSection (scripts // def.serviceConfig)
    );

  timerText =
    def:
    commonUnitText def ''
      [Timer]
      ${attrsToSection def.timerConfig}
    '';
in
{
  config.system.build.units =
    mapAttrs' (name: def: nameValuePair "${name}.service" {
      text = serviceText name def;
      inherit (def) wantedBy;
    }) config.systemd.services
    // mapAttrs' (name: def: nameValuePair "${name}.timer" {
      text = timerText def;
      inherit (def) wantedBy;
    }) config.systemd.timers;
}
