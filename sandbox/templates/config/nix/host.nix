# One sandbox host's configuration: services.exo as an operator would write it, with the
# fleet's settings (hosts.nix: apiPort, namespace, and `exo`, module settings that tests set).
{ name, fleet, exo }:
{ lib, ... }:
let
  others = lib.filter (n: n != name) (lib.attrNames fleet.hosts);
in
{
  networking.hostName = name;
  services.exo = lib.recursiveUpdate {
    enable = true;
    package = exo;
    # the era the configuration claims: a release may claim the wrong one (declared_era)
    era = exo.declaredEra or exo.era;
    apiPort = fleet.apiPort;
    namespace = fleet.namespace or null;
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
