# One sandbox host's configuration: services.exo as an operator would write it, with the
# fleet's settings (hosts.nix: apiPort, namespace, and `exo`, module settings that tests set).
{ name, fleet, exo }:
{ lib, pkgs, ... }:
let
  others = lib.filter (n: n != name) (lib.attrNames fleet.hosts);
  faultOn = exo.faultOn or [ ];
  # the release's system-level fault, on the hosts it names (all when none)
  cutsSsh = (exo.fault or "none") == "cut-ssh" && (faultOn == [ ] || lib.elem name faultOn);
in
{
  networking.hostName = name;
  sandbox.kernelVersion = lib.mkIf ((exo.kernel or null) != null) exo.kernel;
  # fault cut-ssh: as a release that disables sshd (or closes port 22) would, activating this
  # system stops the host's sshd (Debian's ssh.service): new connections are refused, open
  # ones live on (sshd's KillMode=process). Leaving the system (the previous one has no such
  # unit, so switch-to-configuration stops it) starts sshd again, as the previous system's own
  # sshd unit would be started.
  systemd.services.exo-sandbox-cut-ssh = lib.mkIf cutsSsh {
    description = "sandbox fault cut-ssh: sshd stopped";
    wantedBy = [ "multi-user.target" ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = "${pkgs.systemd}/bin/systemctl stop ssh.service";
      ExecStop = "${pkgs.systemd}/bin/systemctl start ssh.service";
    };
  };
  services.exo = lib.recursiveUpdate {
    enable = true;
    package = exo;
    # the era the configuration claims: a release may claim the wrong one (declared_era)
    era = exo.declaredEra or exo.era;
    apiPort = fleet.apiPort;
    # a lone host pins its own (pull mode); else the fleet's, when one is pinned
    namespace = fleet.hosts.${name}.namespace or fleet.namespace or null;
    # a cluster's nodes reach each other: the fixed libp2p port and the firewall rules a
    # multi-node fleet needs (the hosts have no firewall; the flags are what counts)
    openFirewall = true;
    # the stand-in binds its API within a second; a real node's default is 5min
    startTimeout = "20s";
    # the stand-in's view of the fleet (the real exo finds its peers by discovery)
    environment = {
      EXO_STANDIN_PEERS = lib.concatMapStringsSep "," (n: "${fleet.hosts.${n}.address}:${toString fleet.apiPort}") others;
      EXO_STANDIN_HOSTNAME = name;
    };
  } (fleet.exo or { });
}
