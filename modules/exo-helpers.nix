# Pure helpers for modules/exo.nix: builtins only (no nixpkgs), so CI can evaluate and test
# them with a bare `nix-instantiate --eval` (test/module/helpers.test.ts).
let
  inherit (builtins)
    concatStringsSep
    elem
    filter
    head
    isString
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

  # exo's command line under systemd: always in the foreground (never --legacy-daemon).
  exoArgs =
    {
      apiPort,
      zenohPort,
      discoveryPort,
      namespace ? null,
      offline ? false,
      extraArgs ? [ ],
    }:
    [
      "--api-port"
      (toString apiPort)
      "--zenoh-port"
      (toString zenohPort)
      "--discovery-port"
      (toString discoveryPort)
    ]
    ++ optionals (namespace != null) [
      "--namespace"
      namespace
    ]
    ++ optional offline "--offline"
    ++ extraArgs;

  # Flags the module sets itself; in extraArgs they would contradict the options.
  ownedFlags = [
    "--api-port"
    "--zenoh-port"
    "--discovery-port"
    "--namespace"
    "--offline"
    "--legacy-daemon"
    "--exo-home"
    "--default-models-dir"
  ];
  conflictingArgs = extraArgs: filter (a: elem (head (split "=" a)) ownedFlags) extraArgs;

  # Variables the module owns: exo's config, data and cache all under stateDir.
  ownedVariables = [
    "HOME"
    "EXO_HOME"
    "EXO_DEFAULT_MODELS_DIR"
  ];
  # Secrets that must come through environmentFile, never the Nix store.
  secretVariables = [
    "HF_TOKEN"
    "HUGGING_FACE_HUB_TOKEN"
  ];

  exoEnvironment =
    {
      stateDir,
      modelsDir,
      environment ? { },
    }:
    environment
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

  # Firewall rules for the ports exo listens on (see facts: API and zenoh TCP, discovery UDP,
  # MLX ring traffic on a random TCP port from a range).
  firewallRules =
    {
      apiPort,
      zenohPort,
      discoveryPort,
      openRingPorts,
      ringPortRange,
    }:
    {
      allowedTCPPorts = [
        apiPort
        zenohPort
      ];
      allowedUDPPorts = [ discoveryPort ];
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

  # /etc/exo/release.json: one per system generation; `exo-deploy generations` reads it.
  releaseInfo =
    {
      version,
      package,
      namespace,
      apiPort,
      zenohPort,
      discoveryPort,
      stateDir,
    }:
    {
      schemaVersion = 1;
      exo = {
        inherit version;
        package = toString package;
      };
      # null: exo's default, which is its version (nodes on other versions do not see this one)
      inherit namespace;
      ports = {
        api = apiPort;
        zenoh = zenohPort;
        discovery = discoveryPort;
      };
      inherit stateDir;
    };

  # Contradictions in services.exo, as NixOS assertions. `cfg` is the option values.
  assertions =
    cfg:
    let
      dynamicUser = cfg.user == null;
      ports = [
        cfg.apiPort
        cfg.zenohPort
      ];
      badArgs = conflictingArgs cfg.extraArgs;
      badVars = filter (v: cfg.environment ? ${v}) ownedVariables;
      secretVars = filter (v: cfg.environment ? ${v}) secretVariables;
      noApi = elem "--no-api" cfg.extraArgs;
      realDir = realStateDir {
        inherit (cfg) stateDir;
        inherit dynamicUser;
      };
    in
    [
      {
        assertion = cfg.namespace == null || match "[^[:space:]]+" cfg.namespace != null;
        message = "services.exo.namespace is set but empty or contains white space; use null for exo's default (its version) or a non-empty name such as \"home-cluster\".";
      }
      {
        assertion = !(isWithin cfg.stateDir cfg.backup.dir) && !(isWithin realDir cfg.backup.dir);
        message = "services.exo.backup.dir (${cfg.backup.dir}) lies inside services.exo.stateDir (${cfg.stateDir}): backups would back up themselves. Choose a folder outside it, e.g. /var/backups/exo.";
      }
      {
        assertion = cfg.apiPort != cfg.zenohPort;
        message = "services.exo.apiPort and services.exo.zenohPort are both ${toString cfg.apiPort}; exo needs two different TCP ports.";
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
        message = "services.exo.extraArgs contains ${toJSON badArgs}: the module sets these itself (use apiPort, zenohPort, discoveryPort, namespace, offline, stateDir, modelsDir); --legacy-daemon would fork away from systemd.";
      }
      {
        assertion = badVars == [ ];
        message = "services.exo.environment sets ${toJSON badVars}: the module owns them (use services.exo.stateDir and services.exo.modelsDir).";
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
