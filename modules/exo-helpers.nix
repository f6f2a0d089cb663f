# Pure helpers for modules/exo.nix: builtins only (no nixpkgs), so CI can evaluate and test
# them with a bare `nix-instantiate --eval` (test/module/helpers.test.ts).
let
  inherit (builtins)
    compareVersions
    concatStringsSep
    elem
    filter
    foldl'
    head
    isString
    length
    match
    replaceStrings
    split
    stringLength
    substring
    toJSON
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  removePrefix = prefix: s: if hasPrefix prefix s then substring (stringLength prefix) (-1) s else s;
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: as: if cond then as else { };
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];

  # "/var/lib/exo/" -> "/var/lib/exo"; "/" stays "/"
  stripSlash = s: if s != "/" && match ".*/" s != null then stripSlash (substring 0 (stringLength s - 1) s) else s;
in
rec {
  inherit stripSlash;

  # Quote one argument for ExecStart= the way nixpkgs' utils.escapeSystemdExecArg does: a
  # C-style quoted string (JSON is a subset) with systemd's specifiers `%` and `$` doubled.
  escapeSystemdExecArg =
    arg: replaceStrings [ "%" "$" ] [ "%%" "$$" ] (toJSON (if isString arg then arg else toString arg));
  escapeSystemdExecArgs = args: concatStringsSep " " (map escapeSystemdExecArg args);

  # `path` is `dir` or lies below it.
  isWithin =
    dir: path:
    let
      d = stripSlash dir;
      p = stripSlash path;
    in
    p == d || hasPrefix (if d == "/" then "/" else d + "/") p;

  # The StateDirectory= name for a folder under /var/lib, or null.
  stateDirectoryName =
    dir:
    let
      d = stripSlash dir;
    in
    if d != "/var/lib" && isWithin "/var/lib" d then removePrefix "/var/lib/" d else null;

  # Where the bytes really are: with DynamicUser= and StateDirectory= systemd keeps them in
  # /var/lib/private/NAME behind a symlink; backups and disk checks must use that path.
  realStateDir =
    { stateDir, dynamicUser }:
    let
      name = stateDirectoryName stateDir;
    in
    if dynamicUser && name != null then "/var/lib/private/${name}" else stripSlash stateDir;

  # exo's API as seen from this host (IPv6 literals get brackets).
  apiUrl =
    { host, apiPort }:
    let
      h = if match ".*:.*" host != null && !(hasPrefix "[" host) then "[${host}]" else host;
    in
    "http://${h}:${toString apiPort}";

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
      unstableDate = match ".*unstable-([0-9]{4}-[0-9]{2}-[0-9]{2}).*" version;
      date = head unstableDate;
    in
    # exo's own flake builds main with no version at all
    if version == "" then
      "zenoh"
    else if match "1\\.0\\.[0-9]+" version != null && compareVersions version lastLibp2pRelease <= 0 then
      "libp2p"
    else if match "0\\.0\\.[0-9]+.*" version != null then
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
      flags = filter (f: hasPrefix "--" f) eraFlags.${era};
      candidates = filter (f: hasPrefix name f) flags;
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
    map (
      a:
      let
        name = head (split "=" a);
      in
      {
        arg = a;
        flag = resolveFlag era name;
      }
    ) (filter (a: hasPrefix "--" a && a != "--") args);

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
  conflictingArgs = era: args: map (o: o.arg) (filter (o: elem o.flag ownedFlags) (longOptions era args));
  unknownArgs = era: args: map (o: o.arg) (filter (o: o.flag == null || o.flag == "ambiguous") (longOptions era args));

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
    || (builtins.isString value && builtins.match "(.*[^A-Za-z0-9])?(hf|api_org)_[A-Za-z0-9]{16,}.*" value != null);
  # The libp2p era's network key when no namespace is set (a constant of its networking code).
  libp2pDefaultNamespace = "v0.0.1";

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

  # Device cgroup rules and groups for GPU back ends (null = CPU only).
  gpuAccess =
    acceleration:
    if acceleration == "cuda" then
      {
        # https://docs.nvidia.com/dgx/pdf/dgx-os-5-user-guide.pdf
        deviceAllow = [
          "char-nvidiactl"
          "char-nvidia-caps"
          "char-nvidia-frontend"
          "char-nvidia-uvm"
        ];
        groups = [ "video" ];
      }
    else if acceleration == "rocm" then
      {
        deviceAllow = [
          "char-drm"
          "char-fb"
          "char-kfd"
        ];
        # /dev/kfd and /dev/dri/renderD* belong to these groups
        groups = [
          "video"
          "render"
        ];
      }
    else
      {
        deviceAllow = [ ];
        groups = [ ];
      };

  # Firewall rules for what each era listens on. libp2p: its TCP port (--libp2p-port; null is
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
      allowedTCPPorts = [ apiPort ] ++ (if era == "libp2p" then optional (libp2pPort != null) libp2pPort else [ zenohPort ]);
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
      substring 0 12 revision
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
    };

  # Contradictions in services.exo, as NixOS assertions. `cfg` is the option values plus
  # `exoVersion` (the package's), `resolvedEra` (the option, else from the version; null when
  # neither tells) and `ipv6` (networking.enableIPv6).
  assertions =
    cfg:
    let
      dynamicUser = cfg.user == null;
      era = if elem cfg.resolvedEra [ "libp2p" "zenoh" ] then cfg.resolvedEra else "zenoh";
      libp2p = era == "libp2p";
      tcpPorts = [ cfg.apiPort ] ++ (if libp2p then optional (cfg.libp2pPort != null) cfg.libp2pPort else [ cfg.zenohPort ]);
      badArgs = conflictingArgs era cfg.extraArgs;
      unknown = unknownArgs era cfg.extraArgs;
      badVars = filter (v: cfg.environment ? ${v}) ownedVariables;
      secretVars = filter (v: isSecretVariable v cfg.environment.${v}) (builtins.attrNames cfg.environment);
      noApi = elem "--no-api" cfg.extraArgs;
      bootstrapPeers = (cfg.environment.EXO_BOOTSTRAP_PEERS or "") != "" || elem "--bootstrap-peers" (map (o: o.flag) (longOptions era cfg.extraArgs));
      realDir = realStateDir {
        inherit (cfg) stateDir;
        inherit dynamicUser;
      };
      ipv6Host = match ".*:.*" cfg.host != null;
    in
    [
      {
        assertion = cfg.resolvedEra != "pre-v1";
        message = "services.exo.package is exo ${cfg.exoVersion}, from before exo's 1.0 rewrite: its command line (--node-port, --chatgpt-api-port, …) is not the one this module runs. Use exo 1.0 or later: exo's own flake (inputs.exo.packages.<system>.default) or a nixpkgs whose exo is 1.0.61 or newer.";
      }
      {
        assertion = cfg.resolvedEra != null;
        message = "services.exo.era: cannot tell from exo's version (${toJSON cfg.exoVersion}) whether this exo networks over libp2p (every release up to ${lastLibp2pRelease}, nixpkgs' pkgs.exo) or zenoh (exo's main branch since ${zenohSince}, exo's own flake); their flags differ. Set services.exo.era = \"libp2p\" or \"zenoh\".";
      }
      {
        assertion = cfg.namespace == null || match "[^[:space:]]+" cfg.namespace != null;
        message = "services.exo.namespace is set but empty or contains white space; use null for exo's default or a non-empty name such as \"home-cluster\".";
      }
      {
        assertion = cfg.namespace == null || !(hasPrefix "-" cfg.namespace);
        message = "services.exo.namespace (${toJSON cfg.namespace}) starts with \"-\": exo's argument parser would read it as an option. Choose a name that starts with a letter or digit.";
      }
      {
        assertion = !ipv6Host;
        message = "services.exo.host (${cfg.host}) is an IPv6 address, but exo's API listens on IPv4 only (0.0.0.0): the readiness wait and health checks would never get an answer. Use \"127.0.0.1\" or another IPv4 address of this host.";
      }
      {
        assertion = cfg.apiPort != 0;
        message = "services.exo.apiPort is 0: exo would listen on a random port that neither its peers (they probe /node_id on their own API port) nor the health checks can find. Use a fixed port, the same on every node (default 52415).";
      }
      {
        assertion = libp2p || (cfg.zenohPort != 0 && cfg.discoveryPort != 0);
        message = "services.exo.zenohPort and services.exo.discoveryPort must not be 0: exo's zenoh listener panics on port 0, and discovery sends to the same fixed port on every node. Use fixed ports (defaults 52414 and 52413).";
      }
      {
        assertion = !libp2p || cfg.libp2pPort != 0;
        message = "services.exo.libp2pPort is 0; use null for a random port (exo's default) or a fixed port that openFirewall can open.";
      }
      {
        assertion = !(libp2p && cfg.openFirewall && cfg.libp2pPort == null);
        message = "services.exo.openFirewall is set but libp2pPort is null: exo ${cfg.exoVersion} then listens on a random TCP port that no firewall rule can open. Set services.exo.libp2pPort (e.g. 52414).";
      }
      {
        assertion = libp2p || cfg.ipv6;
        message = "exo's zenoh discovery sends IPv6 link-local multicast and only on interfaces with an IPv6 address, but networking.enableIPv6 is false: nodes would never find each other. Enable IPv6, or run a libp2p-era exo (services.exo.era).";
      }
      {
        assertion = length tcpPorts == length (unique tcpPorts);
        message = "services.exo: the API port and the ${if libp2p then "libp2p" else "zenoh"} port are both ${toString cfg.apiPort}; exo needs two different TCP ports.";
      }
      {
        assertion = !(isWithin cfg.stateDir cfg.backup.dir) && !(isWithin realDir cfg.backup.dir);
        message = "services.exo.backup.dir (${cfg.backup.dir}) lies inside services.exo.stateDir (${cfg.stateDir}): backups would back up themselves. Choose a folder outside it, e.g. /var/backups/exo.";
      }
      {
        assertion = !cfg.openRingPorts || cfg.ringPortRange.from <= cfg.ringPortRange.to;
        message = "services.exo.ringPortRange: `from` (${toString cfg.ringPortRange.from}) is greater than `to` (${toString cfg.ringPortRange.to}).";
      }
      {
        assertion = !dynamicUser || stateDirectoryName cfg.stateDir != null;
        message = "services.exo.stateDir (${cfg.stateDir}) is outside /var/lib: with DynamicUser (user = null) systemd can only manage folders under /var/lib. Set services.exo.user and services.exo.group, or keep stateDir under /var/lib.";
      }
      {
        assertion = !dynamicUser || isWithin cfg.stateDir cfg.modelsDir || stateDirectoryName cfg.modelsDir != null;
        message = "services.exo.modelsDir (${cfg.modelsDir}) is outside both stateDir and /var/lib: a DynamicUser cannot own it. Set services.exo.user and services.exo.group, or move modelsDir.";
      }
      {
        assertion = badArgs == [ ];
        message = "services.exo.extraArgs contains ${toJSON badArgs}: the module sets these itself (use apiPort, libp2pPort, zenohPort, discoveryPort, namespace, offline); --legacy-daemon would fork away from systemd. exo also reads an unambiguous prefix of a flag as the flag.";
      }
      {
        assertion = unknown == [ ];
        message = "services.exo.extraArgs contains ${toJSON unknown}, which the ${era}-era exo does not accept (or cannot tell apart): it would exit with \"unrecognized arguments\" and the unit would crash-loop. Its flags: ${concatStringsSep " " eraFlags.${era}}.";
      }
      {
        assertion = libp2p || !bootstrapPeers;
        message = "services.exo: bootstrap peers (--bootstrap-peers or EXO_BOOTSTRAP_PEERS) are refused by zenoh-era exo, which exits with \"Bootstrap peers has been temporarily removed\". Remove them.";
      }
      {
        assertion = badVars == [ ];
        message = "services.exo.environment sets ${toJSON badVars}: the module owns them (use services.exo.stateDir, services.exo.modelsDir and services.exo.namespace).";
      }
      {
        assertion = secretVars == [ ];
        message = "services.exo.environment sets ${toJSON secretVars}: that would put a secret in the world-readable Nix store. Put it in a file and point services.exo.environmentFile at it.";
      }
      {
        assertion = cfg.environmentFile == null || !(hasPrefix "/nix/store" (toString cfg.environmentFile));
        message = "services.exo.environmentFile points into the Nix store (${toString cfg.environmentFile}); secrets must live outside it, e.g. /run/secrets/exo.env (sops-nix, agenix) or /etc/exo/secrets.env.";
      }
      {
        assertion = !noApi || (!cfg.waitForReady && !cfg.healthCheck.enable);
        message = "services.exo.extraArgs has --no-api, but waitForReady or healthCheck.enable needs exo's API; disable them or drop --no-api.";
      }
      {
        assertion = cfg.healthCheck.textfile == null || match ".*\\.prom" cfg.healthCheck.textfile != null;
        message = "services.exo.healthCheck.textfile must end in .prom: node-exporter's textfile collector reads only *.prom files.";
      }
    ];
}
