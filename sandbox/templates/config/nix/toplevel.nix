# A host's system.build.toplevel, without nixpkgs: what services.exo would generate.
{ name, system, fleet, exo, configurationRevision }:
let
  inherit (builtins) attrNames concatStringsSep filter toJSON toString;
  # the module's own helpers (copied here from modules/exo-helpers.nix by the sandbox), so the
  # command line, environment and release.json are the ones services.exo writes
  helpers = import ./exo-helpers.nix;
  apiPort = fleet.apiPort;
  namespace = fleet.namespace or null;
  # the era the configuration claims (services.exo.era); a release may claim the wrong one
  era = exo.declaredEra or exo.era;
  libp2pPort = if era == "libp2p" then 52414 else null;
  ports = { inherit apiPort libp2pPort; zenohPort = 52414; discoveryPort = 52413; };
  peers = concatStringsSep ","
    (map (n: "${fleet.hosts.${n}.address}:${toString apiPort}")
      (filter (n: n != name) (attrNames fleet.hosts)));
  args = helpers.exoArgs (ports // { inherit era namespace; });
  environment = helpers.exoEnvironment {
    inherit era namespace;
    stateDir = "/var/lib/exo";
    modelsDir = "/var/lib/exo/models";
  } // {
    EXO_STANDIN_PEERS = peers;
    EXO_STANDIN_HOSTNAME = name;
  };
  envLines = concatStringsSep "\n" (map (k: "Environment=${helpers.escapeSystemdExecArg "${k}=${environment.${k}}"}") (attrNames environment));
  # as services.exo writes it (ExecStart from the package, the module's flags)
  unit = ''
    [Unit]
    Description=exo distributed AI inference node
    After=network-online.target
    Wants=network-online.target

    [Service]
    Type=exec
    ExecStart=${exo}/bin/exo ${helpers.escapeSystemdExecArgs args}
    ${envLines}
    StateDirectory=exo
    WorkingDirectory=/var/lib/exo
    Restart=on-failure
    RestartSec=1

    [Install]
    WantedBy=multi-user.target
  '';
  release = toJSON (helpers.releaseInfo (ports // {
    inherit era namespace;
    version = exo.version;
    revision = null;
    package = exo;
    stateDir = "/var/lib/exo";
  }) // {
    host = name;
    inherit configurationRevision;
  });
in
derivation {
  name = "nixos-system-${name}-exo-${exo.version}";
  inherit system;
  builder = "/bin/sh";
  args = [ ./build-toplevel.sh ];
  PATH = "/usr/bin:/bin";
  hostName = name;
  nixosVersion = "25.11-sandbox";
  inherit unit release;
  exoPackage = exo;
  switchScript = ./switch-to-configuration.sh;
}
