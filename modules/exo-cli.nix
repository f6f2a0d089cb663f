# What modules/exo.nix knows of the programs it runs: exo's two networking eras, their
# command lines, environment and ports, and the exo-deploy command lines of the health check,
# backup and pull units with the release.json that exo-deploy reads. Kept apart from the module
# so that it can be tested on its own (test/module/exo-cli.test.ts).
{ lib }:
let
  inherit (lib)
    elem
    filter
    hasPrefix
    head
    length
    optional
    optionals
    optionalAttrs
    ;
in
rec {
  # exo's two networking eras. Every tagged release (1.0.x up to 1.0.71, nixpkgs' pkgs.exo)
  # networks over libp2p; exo's main branch switched to zenoh on 2026-06-03, and only its
  # own flake builds that. The two take different flags, read the namespace differently and
  # never see each other. Before both, exo 0.0.x (rewritten as 1.0 from 2025-08-21, first
  # tagged 2025-12-22) had another command line altogether, which this module does not run.
  lastLibp2pRelease = "1.0.71";
  zenohSince = "2026-06-03";
  rewriteBegan = "2025-08-21";
  firstV1Tag = "2025-12-22";

  # The era of an exo package from its version: "libp2p", "zenoh", "pre-v1", or null when the
  # version cannot tell.
  eraOfVersion =
    version:
    let
      unstableDate = builtins.match ".*unstable-([0-9]{4}-[0-9]{2}-[0-9]{2}).*" version;
      date = head unstableDate;
    in
    # exo's own flake builds main with no version at all
    if version == "" then
      "zenoh"
    else if
      builtins.match "1\\.0\\.[0-9]+" version != null && lib.versionAtLeast lastLibp2pRelease version
    then
      "libp2p"
    else if builtins.match "0\\.0\\.[0-9]+.*" version != null then
      "pre-v1"
    else if unstableDate != null then
      (
        if date < rewriteBegan then
          "pre-v1"
        else if date < firstV1Tag then
          null
        else if date < zenohSince then
          "libp2p"
        else
          "zenoh"
      )
    else
      null;

  # Each era's argparse table (option strings only): what `exo --help` lists.
  eraFlags =
    let
      common = [
        "-h"
        "--help"
        "-q"
        "--quiet"
        "-v"
        "--verbose"
        "-m"
        "--force-master"
        "--no-api"
        "--api-port"
        "--no-worker"
        "--no-downloads"
        "--offline"
        "--no-batch"
        "--bootstrap-peers"
        "--fast-synch"
        "--no-fast-synch"
      ];
    in
    {
      libp2p = common ++ [ "--libp2p-port" ];
      zenoh = common ++ [
        "--legacy-daemon"
        "--namespace"
        "--zenoh-port"
        "--discovery-port"
      ];
    };

  # What argparse makes of a long option's name (the part before `=`): the one flag it
  # names exactly or as an unambiguous prefix, "ambiguous", or null (unknown).
  resolveFlag =
    era: name:
    let
      flags = filter (hasPrefix "--") eraFlags.${era};
      candidates = filter (hasPrefix name) flags;
    in
    if elem name flags then
      name
    else if length candidates == 1 then
      head candidates
    else if candidates == [ ] then
      null
    else
      "ambiguous";

  # The long options among extra arguments, each resolved for the era.
  longOptions =
    era: args:
    map (a: {
      arg = a;
      flag = resolveFlag era (head (lib.splitString "=" a));
    }) (filter (a: hasPrefix "--" a && a != "--") args);

  # Flags the module sets itself; in extraArgs they would contradict the options.
  ownedFlags = [
    "--api-port"
    "--libp2p-port"
    "--zenoh-port"
    "--discovery-port"
    "--namespace"
    "--offline"
    # forks away from systemd
    "--legacy-daemon"
  ];
  conflictingArgs =
    era: args: map (o: o.arg) (filter (o: elem o.flag ownedFlags) (longOptions era args));
  unknownArgs =
    era: args:
    map (o: o.arg) (
      filter (o: o.flag == null || o.flag == "ambiguous") (longOptions era args)
    );

  # exo's command line under systemd: always in the foreground (never --legacy-daemon).
  exoArgs =
    {
      era,
      apiPort,
      libp2pPort ? null,
      zenohPort,
      discoveryPort,
      namespace ? null,
      offline ? false,
      extraArgs ? [ ],
    }:
    [
      "--api-port"
      (toString apiPort)
    ]
    ++ optionals (era == "libp2p" && libp2pPort != null) [
      "--libp2p-port"
      (toString libp2pPort)
    ]
    ++ optionals (era == "zenoh") [
      "--zenoh-port"
      (toString zenohPort)
      "--discovery-port"
      (toString discoveryPort)
    ]
    # the libp2p era reads its namespace from the environment (exoEnvironment)
    ++ optionals (era == "zenoh" && namespace != null) [
      "--namespace"
      namespace
    ]
    ++ optional offline "--offline"
    ++ extraArgs;

  # Variables the module owns: exo's config, data and cache all under stateDir.
  ownedVariables = [
    "HOME"
    "EXO_HOME"
    "EXO_DEFAULT_MODELS_DIR"
    # the libp2p era's namespace: services.exo.namespace sets it
    "EXO_LIBP2P_NAMESPACE"
  ];
  # Secrets that must come through environmentFile, never the Nix store: a variable named as a
  # secret (HF_TOKEN, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD; not EXO_MAX_TOKENS), or
  # any holding a Hugging Face token.
  isSecretVariable =
    name: value:
    builtins.match ".*(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)" name != null
    || (lib.isString value && builtins.match "(.*[^A-Za-z0-9])?(hf|api_org)_[A-Za-z0-9]{16,}.*" value != null);

  exoEnvironment =
    {
      stateDir,
      modelsDir,
      era ? "zenoh",
      namespace ? null,
      environment ? { },
    }:
    environment
    // optionalAttrs (era == "libp2p" && namespace != null) {
      # the libp2p era has no --namespace: its network key comes from this variable
      EXO_LIBP2P_NAMESPACE = namespace;
    }
    // {
      # EXO_HOME puts config.toml, custom_model_cards/, event_log/, exo_log/ and exo.pid in one
      # folder; HOME and the XDG folders keep libraries' caches (Hugging Face, MLX) there too.
      HOME = stateDir;
      EXO_HOME = stateDir;
      EXO_DEFAULT_MODELS_DIR = modelsDir;
      XDG_CONFIG_HOME = "${stateDir}/.config";
      XDG_DATA_HOME = "${stateDir}/.local/share";
      XDG_CACHE_HOME = "${stateDir}/.cache";
    };

  # What each era listens on, as firewall rules. libp2p: its TCP port (--libp2p-port; null is
  # a random port that no rule can open) and mDNS (UDP 5353) for discovery. zenoh: its TCP
  # listener and the UDP discovery port. Both: the API, and MLX ring traffic on a random TCP
  # port from a range.
  firewallRules =
    {
      era,
      apiPort,
      libp2pPort ? null,
      zenohPort,
      discoveryPort,
      openRingPorts,
      ringPortRange,
    }:
    {
      allowedTCPPorts = [
        apiPort
      ]
      ++ (if era == "libp2p" then optional (libp2pPort != null) libp2pPort else [ zenohPort ]);
      allowedUDPPorts = if era == "libp2p" then [ 5353 ] else [ discoveryPort ];
      allowedTCPPortRanges = optional openRingPorts ringPortRange;
    };

  # `exo-deploy check --local …` as run by the health timer.
  checkArgs =
    {
      api,
      unit,
      stateDir,
      since,
      statusFile,
      expectNodes ? null,
      textfile ? null,
      extraArgs ? [ ],
    }:
    [
      "check"
      "--local"
      "--since"
      since
      "--api"
      api
      "--unit"
      unit
      "--state-dir"
      stateDir
      "--status-file"
      statusFile
    ]
    ++ optionals (expectNodes != null) [
      "--expect-nodes"
      (toString expectNodes)
    ]
    ++ optionals (textfile != null) [
      "--textfile"
      textfile
    ]
    ++ extraArgs;

  # `exo-deploy pull …` as run by the pull timer. Every setting is passed, defaults too, so
  # that the unit and the module's folders never depend on the CLI's defaults.
  pullArgs =
    {
      url,
      branch,
      hostName,
      repoConfig,
      pullDir,
      allowedSignersFile ? null,
      textfile ? null,
      extraArgs ? [ ],
    }:
    [
      "pull"
      "--url"
      url
      "--branch"
      branch
      "--host-name"
      hostName
      "--repo-config"
      repoConfig
      "--pull-dir"
      pullDir
    ]
    ++ optionals (allowedSignersFile != null) [
      "--allowed-signers"
      allowedSignersFile
    ]
    ++ optionals (textfile != null) [
      "--textfile"
      textfile
    ]
    ++ extraArgs;

  # A git URL that carries credentials, shown without them (for an error message), or null.
  # Any user part of an http(s) URL counts (a token alone looks like a user name); of another
  # scheme's (ssh://git@host/…), only a password. scp-like URLs (git@host:path) carry none.
  urlCredentialsHidden =
    url:
    let
      m = builtins.match "([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)@([^/?#@]*([/?#].*)?)" url;
      scheme = head m;
      secret = elem (lib.toLower scheme) [ "http" "https" ] || lib.hasInfix ":" (lib.elemAt m 1);
    in
    if m != null && secret then "${scheme}://…@${lib.elemAt m 2}" else null;

  backupCreateArgs =
    {
      dir,
      stateDir,
      models ? false,
    }:
    [
      "backup"
      "create"
      "--local"
      "--dir"
      dir
      "--state-dir"
      stateDir
    ]
    ++ optional models "--models";

  backupPruneArgs =
    { dir, keep }:
    [
      "backup"
      "prune"
      "--local"
      "--dir"
      dir
      "--keep"
      (toString keep)
    ];

  # What a person can match to exo's history: the version when the package has one (exo's
  # own flake package has none), else the source revision, else the store path's name.
  exoIdentity =
    {
      version,
      revision ? null,
      package,
    }:
    if version != "" then
      version
    else if revision != null then
      builtins.substring 0 12 revision
    else
      baseNameOf (toString package);

  # /etc/exo/release.json: one per system generation; `exo-deploy generations` reads it.
  releaseInfo =
    {
      era,
      version,
      revision ? null,
      package,
      namespace,
      apiPort,
      libp2pPort ? null,
      zenohPort,
      discoveryPort,
      stateDir,
      gpuDriver ? null,
      rebootGuard ? null,
      configRevision ? null,
    }:
    {
      schemaVersion = 2;
      exo = {
        inherit version revision era;
        identity = exoIdentity { inherit version revision package; };
        package = toString package;
      };
      # null: the era's default (libp2p: a constant shared by every release; zenoh: exo's
      # Python package version)
      inherit namespace;
      ports = {
        api = apiPort;
        libp2p = if era == "libp2p" then libp2pPort else null;
        zenoh = if era == "zenoh" then zenohPort else null;
        discovery = if era == "zenoh" then discoveryPort else null;
      };
      inherit stateDir;
      # the config repository's revision the system was built from (system.configurationRevision)
      inherit configRevision;
    }
    # the GPU driver the system loads at boot: a new one needs a reboot (exo-deploy reads it)
    // lib.optionalAttrs (gpuDriver != null) { gpu.driver = toString gpuDriver; }
    # the folder this system's reboot guard arms a revert timer from at boot
    // lib.optionalAttrs (rebootGuard != null) { inherit rebootGuard; };
}
