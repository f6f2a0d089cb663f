# A host's system.build.toplevel, without nixpkgs: what services.exo would generate.
{ name, system, fleet, exo, configurationRevision }:
let
  inherit (builtins) attrNames concatStringsSep filter toJSON toString;
  apiPort = fleet.apiPort;
  peers = concatStringsSep ","
    (map (n: "${fleet.hosts.${n}.address}:${toString apiPort}")
      (filter (n: n != name) (attrNames fleet.hosts)));
  # as services.exo writes it (ExecStart from the package, the module's flags)
  unit = ''
    [Unit]
    Description=exo distributed AI inference node
    After=network-online.target
    Wants=network-online.target

    [Service]
    Type=exec
    ExecStart=${exo}/bin/exo --api-port ${toString apiPort}
    Environment=EXO_HOME=/var/lib/exo
    Environment=EXO_STANDIN_PEERS=${peers}
    Environment=EXO_STANDIN_HOSTNAME=${name}
    StateDirectory=exo
    WorkingDirectory=/var/lib/exo
    Restart=on-failure
    RestartSec=1

    [Install]
    WantedBy=multi-user.target
  '';
  # the shape modules/exo.nix writes to /etc/exo/release.json
  release = toJSON {
    schemaVersion = 1;
    exo = {
      version = exo.version;
      package = "${exo}";
    };
    namespace = null;
    ports = {
      api = apiPort;
      zenoh = 52414;
      discovery = 52413;
    };
    stateDir = "/var/lib/exo";
    host = name;
    configurationRevision = configurationRevision;
  };
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
