# services.exo: exo (distributed AI inference) as a hardened systemd service, with a
# readiness wait, health checks, backups, per-generation release metadata and GitOps pull
# deploys.
# Written in the style of nixpkgs' ollama.nix, llama-cpp.nix and restic.nix.
{
  config,
  options,
  lib,
  pkgs,
  utils,
  ...
}:
let
  inherit (lib) mkOption types literalExpression;
  exoCli = import ./exo-cli.nix { inherit lib; };

  cfg = config.services.exo;
  dynamicUser = cfg.user == null;
  exoVersion = lib.getVersion cfg.package;
  # The option wins; else the package's version tells (null: an assertion asks for the option).
  resolvedEra = if cfg.era != null then cfg.era else exoCli.eraOfVersion exoVersion;
  era = if lib.elem resolvedEra [ "libp2p" "zenoh" ] then resolvedEra else "zenoh";
  exoArgs = exoCli.exoArgs {
    inherit era;
    inherit (cfg)
      apiPort
      libp2pPort
      zenohPort
      discoveryPort
      namespace
      offline
      extraArgs
      ;
  };
  firewallRules = exoCli.firewallRules {
    inherit era;
    inherit (cfg)
      apiPort
      libp2pPort
      zenohPort
      discoveryPort
      openRingPorts
      ringPortRange
      ;
  };
  # exo's API as the readiness wait and the health check reach it
  apiUrl = "http://${cfg.probeAddress}:${toString cfg.apiPort}";
  exoDeploy = lib.getExe' cfg.toolkitPackage "exo-deploy";
  # The units that run exo-deploy (an assertion asks for toolkitPackage when there are any).
  toolkitUsers =
    lib.optional cfg.healthCheck.enable "services.exo.healthCheck"
    ++ lib.optional cfg.backup.enable "services.exo.backup"
    ++ lib.optional cfg.autoDeploy.enable "services.exo.autoDeploy";
  # "a", "a and b", "a, b and c"
  andList =
    l:
    if lib.length l < 2 then
      lib.concatStrings l
    else
      "${lib.concatStringsSep ", " (lib.init l)} and ${lib.last l}";

  # "/var/lib/exo/" -> "/var/lib/exo"; "/" stays "/"
  stripSlash = s: if s != "/" && lib.hasSuffix "/" s then stripSlash (lib.removeSuffix "/" s) else s;
  # `path` is `dir` or lies below it.
  isWithin =
    dir: path:
    let
      d = stripSlash dir;
      p = stripSlash path;
    in
    p == d || lib.hasPrefix (if d == "/" then "/" else d + "/") p;
  # The StateDirectory= name for a folder under /var/lib, or null.
  stateDirectoryName =
    dir:
    let
      d = stripSlash dir;
    in
    if d != "/var/lib" && isWithin "/var/lib" d then lib.removePrefix "/var/lib/" d else null;
  # Where the bytes really are: with DynamicUser= and StateDirectory= systemd keeps them in
  # /var/lib/private/NAME behind a symlink; backups and disk checks must use that path.
  realStateDir =
    let
      name = stateDirectoryName cfg.stateDir;
    in
    if dynamicUser && name != null then "/var/lib/private/${name}" else stripSlash cfg.stateDir;
  # exo's folders: stateDir, and modelsDir when it is not inside stateDir.
  exoDirs = [ cfg.stateDir ] ++ lib.optional (!isWithin cfg.stateDir cfg.modelsDir) cfg.modelsDir;
  # systemd creates those under /var/lib and hands them to the service user (StateDirectory= is
  # relative to /var/lib); a static user's others come from tmpfiles instead.
  stateDirectories = lib.unique (lib.filter (d: d != null) (map stateDirectoryName exoDirs));
  tmpfilesDirs = lib.filter (d: stateDirectoryName d == null) exoDirs;

  # Device cgroup rules and groups for GPU back ends (null = CPU only).
  gpu =
    if cfg.acceleration == "cuda" then
      {
        # the control device, MIG capabilities, the GPUs (/dev/nvidia0 …) and unified memory
        deviceAllow = [
          "char-nvidiactl"
          "char-nvidia-caps"
          "char-nvidia-frontend"
          "char-nvidia-uvm"
        ];
        groups = [ "video" ];
      }
    else if cfg.acceleration == "rocm" then
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

  # The NVIDIA driver a CUDA exo runs with, where NixOS's nvidia module loads one (it does for
  # videoDrivers "nvidia" or datacenter.enable): release.json records it, since a new driver's
  # user space does not match the kernel module loaded at boot until the host reboots.
  nvidiaDriver =
    let
      nvidia = config.hardware.nvidia;
      loaded =
        lib.elem "nvidia" (config.services.xserver.videoDrivers or [ ])
        || (nvidia.datacenter.enable or false);
    in
    if cfg.acceleration == "cuda" && options ? hardware.nvidia.package && loaded then
      nvidia.package
    else
      null;

  healthStatusFile = "/run/exo/health.json";
  # The check's own folder: its failure counter and what it wrote, before exo-health-act
  # publishes it.
  healthStateDir = "/run/exo-healthcheck";
  healthCounter = pkgs.writeShellScript "exo-health-counter" (builtins.readFile ./exo-health-counter.sh);
  healthAct = pkgs.writeShellScript "exo-health-act" (builtins.readFile ./exo-health-act.sh);
  rebootGuardScript = pkgs.writeShellScript "exo-reboot-guard" (
    builtins.readFile ./exo-reboot-guard.sh
  );
  # Where exo-deploy leaves a reboot guard before it reboots this host (release.json names it).
  rebootGuardDir = "/var/lib/exo-deploy/reboot-guard";

  # Pull mode's state: the repository's mirror, the pull journal and the deploy reports.
  pullDir = "/var/lib/exo-deploy/pull";
  # Its metrics go beside the health check's, in a file of their own: each file has one writer.
  pullTextfile =
    if cfg.healthCheck.textfile != null then
      "${dirOf cfg.healthCheck.textfile}/exo-deploy-pull.prom"
    else
      null;

  # Hardening shared by the health and backup oneshots: everything they do not need is taken
  # away.
  oneshotHardening = {
    # Only reading exo's files (owned by the service user, mode 0700) is needed.
    CapabilityBoundingSet = [ "CAP_DAC_READ_SEARCH" ];
    LockPersonality = true;
    # Node.js (V8) compiles JavaScript to machine code at run time: it needs W+X memory.
    MemoryDenyWriteExecute = false;
    NoNewPrivileges = true;
    PrivateDevices = true;
    PrivateTmp = true;
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHome = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectSystem = "strict";
    # AF_UNIX: systemctl/journalctl (D-Bus, journald) and the nix-daemon socket.
    RestrictAddressFamilies = [
      "AF_INET"
      "AF_INET6"
      "AF_UNIX"
    ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    SystemCallArchitectures = "native";
    # @pkey: V8 takes a memory protection key for its code space at start (pkey_alloc);
    # without it Node.js is killed by SIGSYS before it runs a line.
    SystemCallFilter = [ "@system-service @pkey" ];
    UMask = "0077";
  };
in
{
  imports = [
    (lib.mkRenamedOptionModule [ "services" "exo" "host" ] [ "services" "exo" "probeAddress" ])
  ];

  options.services.exo = {
    enable = lib.mkEnableOption "exo, a distributed AI inference node";
    package = lib.mkPackageOption pkgs "exo" {
      extraDescription = ''
        To follow exo's releases, take it from exo's own flake:
        `services.exo.package = inputs.exo.packages.''${pkgs.stdenv.hostPlatform.system}.default;`
      '';
    };
    toolkitPackage = mkOption {
      type = types.nullOr types.package;
      # nixpkgs has no exo-deploy: this flake's overlay adds it, its nixosModules.default sets
      # this option. Imported alone, the module must still evaluate (an assertion explains).
      default = pkgs.exo-deploy or null;
      defaultText = literalExpression "pkgs.exo-deploy or null";
      description = ''
        The exo-deploy toolkit that the health check, backup and pull units run. The
        exo-deploy flake's `nixosModules.default` sets it to the flake's `exo-deploy` package;
        with `modules/exo.nix` imported on its own it is `pkgs.exo-deploy` when the flake's
        `overlays.default` is applied, else null, which is an error while
        `healthCheck.enable`, `backup.enable` or `autoDeploy.enable` is on.
      '';
    };

    era = mkOption {
      type = types.nullOr (
        types.enum [
          "libp2p"
          "zenoh"
        ]
      );
      default = null;
      example = "zenoh";
      description = ''
        How this exo networks, which decides its flags and how the namespace reaches it.
        `"libp2p"`: every tagged release up to 1.0.71 (nixpkgs' `pkgs.exo`): `--libp2p-port`,
        mDNS discovery, the namespace in `EXO_LIBP2P_NAMESPACE`. `"zenoh"`: exo's main branch
        since 2026-06-03 (exo's own flake): `--zenoh-port`, `--discovery-port`, `--namespace`.
        Nodes of different eras never see each other. `null` tells from the package's version:
        no version (exo's flake package) is zenoh, 1.0.x up to 1.0.71 is libp2p, a
        `unstable-DATE` version by its date; any other version needs this option. exo from
        before its 1.0 rewrite (0.0.x) has another command line and is refused.
      '';
    };
    packageRevision = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = literalExpression "inputs.exo.rev";
      description = ''
        The source revision of `package`, recorded in `/etc/exo/release.json` as exo's identity
        when the package has no version (exo's own flake package has none), so that
        `exo-deploy generations` and the deploy reports name the exo each generation runs.
      '';
    };

    probeAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      example = "10.0.0.11";
      description = ''
        The address this host's readiness wait and health checks reach exo's API at: an IPv4
        address of this host. It does not choose where exo listens: exo binds its API to
        0.0.0.0, IPv4 only, and has no flag to change that; use `openFirewall` and
        `firewallInterfaces` to control who can reach it.
      '';
    };
    apiPort = mkOption {
      type = types.port;
      default = 52415;
      description = ''
        TCP port of exo's HTTP API and dashboard (`--api-port`). Use the same port on every
        node: peers probe `/node_id` on their own API port, so nodes on different ports get no
        connection between them.
      '';
    };
    libp2pPort = mkOption {
      type = types.nullOr types.port;
      default = if cfg.openFirewall then 52414 else null;
      defaultText = literalExpression "if config.services.exo.openFirewall then 52414 else null";
      description = ''
        libp2p era: TCP port of exo's libp2p listener (`--libp2p-port`). `null` lets exo pick a
        random port, which no firewall rule can open; hence a fixed port with `openFirewall`.
      '';
    };
    zenohPort = mkOption {
      type = types.port;
      default = 52414;
      description = "zenoh era: TCP port of exo's zenoh listener (`--zenoh-port`); peers dial it. Not 0 (exo panics).";
    };
    discoveryPort = mkOption {
      type = types.port;
      default = 52413;
      description = "zenoh era: UDP port of exo's discovery hellos (`--discovery-port`, IPv6 link-local multicast); the same on every node.";
    };
    namespace = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "home-cluster";
      description = ''
        exo's discovery namespace: nodes join only nodes of the same era and namespace. The
        zenoh era takes it as `--namespace`, the libp2p era from `EXO_LIBP2P_NAMESPACE`.
        `null` keeps exo's default: for the libp2p era a constant shared by every release; for
        the zenoh era exo's Python package version (0.3.70 since April 2026, unchanged across
        builds). So two builds of one era normally form one mixed-version cluster. Pin a name
        to keep a cluster apart from others on the network, and so that exo-deploy can tell
        that a rolling upgrade keeps the nodes together.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open what exo listens on: `apiPort` (TCP); in the zenoh era `zenohPort` (TCP) and
        `discoveryPort` (UDP); in the libp2p era `libp2pPort` (TCP) and mDNS (UDP 5353); and the
        MLX ring range when `openRingPorts` is set. exo's API has no authentication: prefer
        limiting this to the cluster's network with `firewallInterfaces`.
      '';
    };
    firewallInterfaces = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "enp3s0" ];
      description = "Open the ports only on these interfaces; empty means on all interfaces.";
    };
    openRingPorts = mkOption {
      type = types.bool;
      default = cfg.openFirewall;
      defaultText = literalExpression "config.services.exo.openFirewall";
      description = "Also open `ringPortRange` (TCP), where MLX ring traffic between nodes runs on a random port.";
    };
    ringPortRange = mkOption {
      type = types.submodule {
        options = {
          from = mkOption { type = types.port; };
          to = mkOption { type = types.port; };
        };
      };
      # exo draws a ring port from 49153-65535 and takes one off when it is 52415 or lower
      default = {
        from = 49152;
        to = 65535;
      };
      description = "TCP port range of MLX ring traffic between exo nodes.";
    };

    offline = mkOption {
      type = types.bool;
      default = false;
      description = "Run exo offline (`--offline`): no internet checks, only models already in `modelsDir`.";
    };
    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [
        "--no-downloads"
        "-v"
      ];
      description = "Extra arguments for exo, each escaped for systemd's ExecStart=.";
    };
    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        EXO_MAX_CONCURRENT_REQUESTS = "4";
        HF_ENDPOINT = "https://hf-mirror.example";
      };
      description = ''
        Environment variables for exo. They land in the Nix store: put secrets such as
        `HF_TOKEN` in `environmentFile` instead.
      '';
    };
    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/exo.env";
      description = "A file of `NAME=value` lines (systemd's EnvironmentFile=) for secrets such as `HF_TOKEN`; kept out of the Nix store.";
    };

    user = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "exo";
      description = "User that runs exo; `null` runs it as a DynamicUser. A non-null user is created.";
    };
    group = mkOption {
      type = types.nullOr types.str;
      default = cfg.user;
      defaultText = literalExpression "config.services.exo.user";
      description = "Group that runs exo, created when `user` is set.";
    };
    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/exo";
      description = ''
        exo's home: its config, data and cache all live here (the module sets `EXO_HOME`,
        `HOME` and the XDG folders to it). With a DynamicUser the files are really in
        `/var/lib/private/exo`, behind a symlink.
      '';
    };
    modelsDir = mkOption {
      type = types.str;
      default = "${cfg.stateDir}/models";
      defaultText = literalExpression ''"''${config.services.exo.stateDir}/models"'';
      description = "Where exo downloads and reads models (`EXO_DEFAULT_MODELS_DIR`). Large; not backed up unless `backup.includeModels`.";
    };
    acceleration = mkOption {
      type = types.nullOr (
        types.enum [
          "cuda"
          "rocm"
        ]
      );
      default = null;
      description = ''
        GPU access for exo: `"cuda"` allows the NVIDIA devices, `"rocm"` `/dev/kfd` and
        `/dev/dri` (with the `video` and `render` groups). Both also allow W+X memory, which the
        GPU drivers' JIT compilers need. `null`: CPU only, no devices at all.
      '';
    };

    waitForReady = mkOption {
      type = types.bool;
      default = true;
      description = "Consider the unit started only once exo's `/models` answers (polled each second).";
    };
    startTimeout = mkOption {
      type = types.str;
      default = "5min";
      description = "Bound on start-up, the readiness wait included (TimeoutStartSec=).";
    };
    logRetention = mkOption {
      type = types.str;
      default = "14d";
      description = "Age after which exo's own log files under `stateDir/exo_log` are deleted (a tmpfiles age rule). exo's stderr goes to the journal.";
    };

    healthCheck = {
      enable = lib.mkEnableOption "a timer that runs `exo-deploy check --local`: API probes, exo's failure strings in the journal since the previous run, cluster size; the result goes to `/run/exo/health.json`" // {
        default = true;
      };
      interval = mkOption {
        type = types.strMatching "[0-9]+[smh]";
        default = "2m";
        description = "Time between two checks; also the journal window each check reads (`--since`).";
      };
      expectNodes = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "Number of nodes this node must see in exo's `/state`; `null` skips that check.";
      };
      failureThreshold = mkOption {
        type = types.ints.positive;
        default = 3;
        description = "Consecutive failed checks before acting: restart exo (if `restart`) and fail the unit, so `onFailure` fires.";
      };
      restart = mkOption {
        type = types.bool;
        default = true;
        description = "Restart a running exo after `failureThreshold` consecutive failed checks (a stopped exo stays stopped).";
      };
      restartInterval = mkOption {
        type = types.ints.positive;
        default = 1800;
        description = "Minimum number of seconds between two restarts by the health check.";
      };
      textfile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/var/lib/prometheus-node-exporter/textfile/exo.prom";
        description = ''
          Also write the result as a Prometheus textfile here, for node-exporter's textfile
          collector. With `autoDeploy.enable`, pull mode writes its own metrics
          (`exo_deploy_pull_*`) to `exo-deploy-pull.prom` in the same folder: a file of its
          own, since each file has a single writer.
        '';
      };
      onFailure = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "notify-admin@%n.service" ];
        description = "Units to start when the health check unit fails (OnFailure=).";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Extra arguments for `exo-deploy check`.";
      };
    };

    rebootGuard.enable = lib.mkEnableOption ''
      exo-deploy's reboot guard: a unit that runs once at each boot. When exo-deploy reboots this
      host into a new system (a new kernel or GPU driver), it leaves a revert timer for that
      boot; the guard arms it. Unless the deployer confirms over a new ssh connection within the
      host's `confirm_timeout`, the host makes the system it ran before its boot default again
      and reboots into it, so a release that cuts the deployer off after the reboot (sshd, the
      firewall, the network) puts itself back. Without it, such a host needs a person
    '' // {
      default = true;
    };

    backup = {
      enable = lib.mkEnableOption "backups of exo's state (config, custom model cards) by `exo-deploy backup create --local`, which also pins the running system with a GC root, then `backup prune` down to `keep`" // {
        default = true;
      };
      dir = mkOption {
        type = types.str;
        default = "/var/backups/exo";
        description = "Folder for the backups; must be outside `stateDir`.";
      };
      keep = mkOption {
        type = types.ints.positive;
        default = 10;
        description = "Number of backups to keep (the newest one from a healthy system is never pruned).";
      };
      includeModels = mkOption {
        type = types.bool;
        default = false;
        description = "Also back up `modelsDir` (large, and usually downloadable again).";
      };
      timerConfig = mkOption {
        type = types.nullOr (types.attrsOf types.str);
        default = {
          OnCalendar = "daily";
          Persistent = "true";
          RandomizedDelaySec = "1h";
        };
        description = "When to back up (systemd.timer(5) settings); `null`: no timer, start `exo-backup.service` by hand.";
      };
      restic.enable = lib.mkEnableOption "handing the backups to `services.restic.backups.exo` for an off-host copy: its `paths` get `backup.dir` and it runs after each successful backup (its own timer is off by default); set its `repository` (or `repositoryFile`) and `passwordFile` yourself";
    };

    autoDeploy = {
      enable = lib.mkEnableOption ''
        GitOps pull mode: a timer that runs `exo-deploy pull` on this host. Each run fetches
        `branch` of the config repository at `url` and, when its tip is new, builds this
        host's system from it and deploys it here as a push deploy would: test, the health
        gate, switch, or back to the exact system that ran before. The repository's
        `exo-deploy.toml` (`repoConfig`) sets the gate (its hooks are the deployer's: a pull
        runs none).
        Whoever can push to that branch decides what this host runs; `allowedSignersFile`
        narrows that to the holders of given keys. State, reports and the repository's mirror
        are kept in `/var/lib/exo-deploy/pull`; with `healthCheck.textfile` set, the pull's
        state is also written as Prometheus metrics (`exo_deploy_pull_*`) to
        `exo-deploy-pull.prom` in that file's folder
      '';
      url = mkOption {
        type = types.str;
        example = "git@github.com:acme/fleet.git";
        description = ''
          The config repository's git URL: a flake with this host in its
          `nixosConfigurations`, and the exo-deploy configuration that deploys it. The URL lands
          in the world-readable Nix store, so it must not carry a password or token: use an ssh
          URL with `sshKeyFile`, or for http(s) a git credential helper (root's, or the
          system's through `programs.git.config`).
        '';
      };
      branch = mkOption {
        type = types.str;
        default = "main";
        description = "The branch this host follows.";
      };
      hostName = mkOption {
        type = types.str;
        default = config.networking.hostName;
        defaultText = literalExpression "config.networking.hostName";
        description = "This host's name in the repository: its `nixosConfigurations` attribute and its host in the exo-deploy configuration.";
      };
      repoConfig = mkOption {
        type = types.str;
        default = "exo-deploy.toml";
        example = "deploy/exo-deploy.toml";
        description = "The exo-deploy configuration inside the repository, relative to the repository's top.";
      };
      interval = mkOption {
        type = types.str;
        default = "5min";
        example = "1h";
        description = ''
          How long after a run has ended the next one starts (OnUnitInactiveSec=), and after
          the timer starts (at boot, or at the activation that adds it) the first
          (OnActiveSec=); a systemd time span. Counted from the end, a long build or health
          gate never has a second run queued behind it.
        '';
      };
      randomizedDelay = mkOption {
        type = types.str;
        default = "1min";
        description = "Up to this much random delay before each run (RandomizedDelaySec=), so that the hosts of a fleet do not all fetch, build and deploy at once; a systemd time span, `0` for none.";
      };
      allowedSignersFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/etc/exo-deploy/allowed_signers";
        description = ''
          A path on this host to git's SSH allowed-signers file (`PRINCIPAL KEY` lines, as for
          `gpg.ssh.allowedSignersFile`). When set, only a commit signed by one of its keys is
          deployed. It holds public keys only, so it may come from the Nix store, e.g. through
          `environment.etc."exo-deploy/allowed_signers".text`. `null`: every commit of the
          branch is deployed.
        '';
      };
      sshKeyFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/exo-deploy-pull-key";
        description = ''
          A private SSH key for an ssh `url`, on this host and outside the Nix store (which
          anyone can read), e.g. a deploy key placed by sops-nix or agenix, readable by root
          only. git's ssh then offers that key alone and never prompts. The server's host key
          must be known to ssh beforehand, e.g. through `programs.ssh.knownHosts`. `null`: ssh
          uses root's own keys and configuration.
        '';
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--json" ];
        description = "Extra arguments for `exo-deploy pull`, each escaped for systemd's ExecStart=.";
      };
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        assertions =
          let
            # extraArgs and environment entries that exo would refuse, or that contradict options
            ownedArgs = exoCli.conflictingArgs era cfg.extraArgs;
            unknownArgs = exoCli.unknownArgs era cfg.extraArgs;
            ownedVars = lib.filter (v: cfg.environment ? ${v}) exoCli.ownedVariables;
            secretVars = lib.filter (v: exoCli.isSecretVariable v cfg.environment.${v}) (
              lib.attrNames cfg.environment
            );
            bootstrapPeers =
              (cfg.environment.EXO_BOOTSTRAP_PEERS or "") != ""
              || lib.elem "--bootstrap-peers" (map (o: o.flag) (exoCli.longOptions era cfg.extraArgs));
          in
          [
            {
              assertion = resolvedEra != "pre-v1";
              message = "services.exo.package is exo ${exoVersion}, from before exo's 1.0 rewrite: its command line (--node-port, --chatgpt-api-port, …) is not the one this module runs. Use exo 1.0 or later: exo's own flake (inputs.exo.packages.<system>.default) or a nixpkgs whose exo is 1.0.61 or newer.";
            }
            {
              assertion = resolvedEra != null;
              message = "services.exo.era: cannot tell from exo's version (${builtins.toJSON exoVersion}) whether this exo networks over libp2p (every release up to ${exoCli.lastLibp2pRelease}, nixpkgs' pkgs.exo) or zenoh (exo's main branch since ${exoCli.zenohSince}, exo's own flake); their flags differ. Set services.exo.era = \"libp2p\" or \"zenoh\".";
            }
            {
              assertion = cfg.namespace == null || builtins.match "[^[:space:]]+" cfg.namespace != null;
              message = "services.exo.namespace is set but empty or contains white space; use null for exo's default or a non-empty name such as \"home-cluster\".";
            }
            {
              assertion = cfg.namespace == null || !(lib.hasPrefix "-" cfg.namespace);
              message = "services.exo.namespace (${builtins.toJSON cfg.namespace}) starts with \"-\": exo's argument parser would read it as an option. Choose a name that starts with a letter or digit.";
            }
            {
              assertion = builtins.match ".*:.*" cfg.probeAddress == null;
              message = "services.exo.probeAddress (${cfg.probeAddress}) is an IPv6 address, but exo's API listens on IPv4 only (0.0.0.0): the readiness wait and health checks would never get an answer. Use \"127.0.0.1\" or another IPv4 address of this host.";
            }
            {
              assertion = cfg.apiPort != 0;
              message = "services.exo.apiPort is 0: exo would listen on a random port that neither its peers (they probe /node_id on their own API port) nor the health checks can find. Use a fixed port, the same on every node (default 52415).";
            }
            {
              assertion = era == "libp2p" || (cfg.zenohPort != 0 && cfg.discoveryPort != 0);
              message = "services.exo.zenohPort and services.exo.discoveryPort must not be 0: exo's zenoh listener panics on port 0, and discovery sends to the same fixed port on every node. Use fixed ports (defaults 52414 and 52413).";
            }
            {
              assertion = era != "libp2p" || cfg.libp2pPort != 0;
              message = "services.exo.libp2pPort is 0; use null for a random port (exo's default) or a fixed port that openFirewall can open.";
            }
            {
              assertion = !(era == "libp2p" && cfg.openFirewall && cfg.libp2pPort == null);
              message = "services.exo.openFirewall is set but libp2pPort is null: exo ${exoVersion} then listens on a random TCP port that no firewall rule can open. Set services.exo.libp2pPort (e.g. 52414).";
            }
            {
              assertion = era == "libp2p" || config.networking.enableIPv6;
              message = "exo's zenoh discovery sends IPv6 link-local multicast and only on interfaces with an IPv6 address, but networking.enableIPv6 is false: nodes would never find each other. Enable IPv6, or run a libp2p-era exo (services.exo.era).";
            }
            {
              assertion = lib.allUnique firewallRules.allowedTCPPorts;
              message = "services.exo: the API port and the ${era} port are both ${toString cfg.apiPort}; exo needs two different TCP ports.";
            }
            {
              assertion = !(isWithin cfg.stateDir cfg.backup.dir) && !(isWithin realStateDir cfg.backup.dir);
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
              assertion =
                !dynamicUser || isWithin cfg.stateDir cfg.modelsDir || stateDirectoryName cfg.modelsDir != null;
              message = "services.exo.modelsDir (${cfg.modelsDir}) is outside both stateDir and /var/lib: a DynamicUser cannot own it. Set services.exo.user and services.exo.group, or move modelsDir.";
            }
            {
              assertion = ownedArgs == [ ];
              message = "services.exo.extraArgs contains ${builtins.toJSON ownedArgs}: the module sets these itself (use apiPort, libp2pPort, zenohPort, discoveryPort, namespace, offline); --legacy-daemon would fork away from systemd. exo also reads an unambiguous prefix of a flag as the flag.";
            }
            {
              assertion = unknownArgs == [ ];
              message = "services.exo.extraArgs contains ${builtins.toJSON unknownArgs}, which the ${era}-era exo does not accept (or cannot tell apart): it would exit with \"unrecognized arguments\" and the unit would crash-loop. Its flags: ${lib.concatStringsSep " " exoCli.eraFlags.${era}}.";
            }
            {
              assertion = era == "libp2p" || !bootstrapPeers;
              message = "services.exo: bootstrap peers (--bootstrap-peers or EXO_BOOTSTRAP_PEERS) are refused by zenoh-era exo, which exits with \"Bootstrap peers has been temporarily removed\". Remove them.";
            }
            {
              assertion = ownedVars == [ ];
              message = "services.exo.environment sets ${builtins.toJSON ownedVars}: the module owns them (use services.exo.stateDir, services.exo.modelsDir and services.exo.namespace).";
            }
            {
              assertion = secretVars == [ ];
              message = "services.exo.environment sets ${builtins.toJSON secretVars}: that would put a secret in the world-readable Nix store. Put it in a file and point services.exo.environmentFile at it.";
            }
            {
              assertion = cfg.environmentFile == null || !(lib.hasPrefix "/nix/store" (toString cfg.environmentFile));
              message = "services.exo.environmentFile points into the Nix store (${toString cfg.environmentFile}); secrets must live outside it, e.g. /run/secrets/exo.env (sops-nix, agenix) or /etc/exo/secrets.env.";
            }
            {
              assertion = !(lib.elem "--no-api" cfg.extraArgs) || (!cfg.waitForReady && !cfg.healthCheck.enable);
              message = "services.exo.extraArgs has --no-api, but waitForReady or healthCheck.enable needs exo's API; disable them or drop --no-api.";
            }
            {
              assertion = cfg.healthCheck.textfile == null || lib.hasSuffix ".prom" cfg.healthCheck.textfile;
              message = "services.exo.healthCheck.textfile must end in .prom: node-exporter's textfile collector reads only *.prom files.";
            }
            {
              assertion = toolkitUsers == [ ] || cfg.toolkitPackage != null;
              message = ''
                services.exo: ${andList toolkitUsers} ${if lib.length toolkitUsers == 1 then "runs" else "run"} the exo-deploy toolkit, but services.exo.toolkitPackage is null (nixpkgs has no exo-deploy). Either:
                  - import the exo-deploy flake's `nixosModules.default` (which sets it) instead of modules/exo.nix alone;
                  - or add the flake's `overlays.default` to nixpkgs.overlays (it adds pkgs.exo-deploy);
                  - or set services.exo.toolkitPackage;
                  - or set ${andList (map (u: "${u}.enable = false") toolkitUsers)}.'';
            }
          ];

        users = lib.mkIf (!dynamicUser) {
          users.${cfg.user} = {
            isSystemUser = true;
            group = cfg.group;
            home = cfg.stateDir;
            extraGroups = gpu.groups;
          };
          groups.${cfg.group} = { };
        };

        systemd.tmpfiles.rules =
          map (d: "d ${d} 0750 ${cfg.user} ${cfg.group} -") (lib.optionals (!dynamicUser) tmpfilesDirs)
          # exo rotates its log at each start and keeps 5 archives, but the runner logs and
          # a long-running exo.log grow: delete what is older than logRetention.
          ++ [ "e ${realStateDir}/exo_log - - - ${cfg.logRetention}" ];

        systemd.services.exo = {
          description = "exo distributed AI inference node";
          wantedBy = [ "multi-user.target" ];
          wants = [ "network-online.target" ];
          after = [ "network-online.target" ];
          environment = exoCli.exoEnvironment {
            inherit era;
            inherit (cfg)
              stateDir
              modelsDir
              namespace
              environment
              ;
          };
          path = lib.optional cfg.waitForReady pkgs.curl;
          postStart = lib.mkIf cfg.waitForReady ''
            # Ready when the API answers; bounded by TimeoutStartSec (exo has no /health, and
            # binds its API before it has peers, as exo's own scripts wait on /models).
            until curl --silent --fail --output /dev/null --max-time 5 ${lib.escapeShellArg "${apiUrl}/models"}; do
              # exo exited (a crash at start): systemd keeps waiting on this script until
              # TimeoutStartSec, so give up now and let the unit fail (and Restart= act)
              if ! kill -0 "$MAINPID" 2>/dev/null; then
                echo "exo exited before its API answered" >&2
                exit 1
              fi
              sleep 1
            done
          '';
          serviceConfig =
            lib.optionalAttrs (!dynamicUser) {
              User = cfg.user;
              Group = cfg.group;
            }
            // lib.optionalAttrs (cfg.environmentFile != null) {
              EnvironmentFile = cfg.environmentFile;
            }
            // {
              Type = "exec";
              DynamicUser = dynamicUser;
              ExecStart = "${lib.getExe' cfg.package "exo"} ${utils.escapeSystemdExecArgs exoArgs}";
              WorkingDirectory = cfg.stateDir;
              StateDirectory = stateDirectories;
              StateDirectoryMode = "0750";
              # ProtectSystem=strict leaves writable only what StateDirectory= makes: a static
              # user's folders outside /var/lib, and a modelsDir outside stateDir, are named here.
              ReadWritePaths = lib.unique (tmpfilesDirs ++ lib.remove cfg.stateDir exoDirs);
              TimeoutStartSec = cfg.startTimeout;
              # exo is known to deadlock at multi-node shutdown: do not hold up deploys for long.
              TimeoutStopSec = "30s";
              Restart = "on-failure";
              # bounded exponential backoff: 5s, growing to at most 5min over 10 restarts
              RestartSec = "5s";
              RestartSteps = 10;
              RestartMaxDelaySec = "5min";
              # exo raises its open-files limit to 65535 itself; allow that without privileges.
              LimitNOFILE = 65535;

              CapabilityBoundingSet = [ "" ];
              DeviceAllow = gpu.deviceAllow;
              DevicePolicy = "closed";
              LockPersonality = true;
              # GPU drivers JIT-compile kernels into W+X memory (CUDA PTX, ROCm comgr).
              MemoryDenyWriteExecute = cfg.acceleration == null;
              NoNewPrivileges = true;
              # PrivateDevices= would hide the GPUs: only a CPU-only exo gets it.
              PrivateDevices = cfg.acceleration == null;
              PrivateMounts = true;
              PrivateTmp = true;
              PrivateUsers = true;
              # exo reports memory, CPU and disk of the node (psutil reads /proc/meminfo, /proc/stat).
              ProcSubset = "all";
              ProtectClock = true;
              ProtectControlGroups = true;
              ProtectHome = true;
              ProtectHostname = true;
              ProtectKernelLogs = true;
              ProtectKernelModules = true;
              ProtectKernelTunables = true;
              ProtectProc = "invisible";
              ProtectSystem = "strict";
              RemoveIPC = true;
              RestrictNamespaces = true;
              RestrictRealtime = true;
              RestrictSUIDSGID = true;
              RestrictAddressFamilies = [
                "AF_INET"
                "AF_INET6"
                # multiprocessing (spawn) between exo and its runners
                "AF_UNIX"
                # discovery enumerates network interfaces and their addresses (rtnetlink)
                "AF_NETLINK"
              ];
              SupplementaryGroups = gpu.groups;
              SystemCallArchitectures = "native";
              # @resources: exo raises RLIMIT_NOFILE and MLX pins threads (setrlimit, sched_setaffinity)
              SystemCallFilter = [
                "@system-service @resources"
                "~@privileged"
              ];
              SystemCallErrorNumber = "EPERM";
              UMask = "0077";
            };
        };

        networking.firewall = lib.mkIf cfg.openFirewall (
          if cfg.firewallInterfaces == [ ] then
            firewallRules
          else
            { interfaces = lib.genAttrs cfg.firewallInterfaces (_: firewallRules); }
        );

        environment.etc."exo/release.json".text = builtins.toJSON (
          exoCli.releaseInfo {
            inherit era;
            version = exoVersion;
            revision = cfg.packageRevision;
            package = cfg.package;
            gpuDriver = nvidiaDriver;
            rebootGuard = if cfg.rebootGuard.enable then rebootGuardDir else null;
            configRevision = config.system.configurationRevision;
            inherit (cfg)
              namespace
              apiPort
              libp2pPort
              zenohPort
              discoveryPort
              stateDir
              ;
          }
        );

        # exo, and exo-deploy for `exo-deploy check --local` or `exo-deploy pull` by hand
        environment.systemPackages = [
          cfg.package
        ]
        ++ lib.optional (toolkitUsers != [ ] && cfg.toolkitPackage != null) cfg.toolkitPackage;
      }

      (lib.mkIf cfg.healthCheck.enable {
        # A static user, not a DynamicUser: D-Bus refuses the connections of dynamic users
        # (dbus-daemon cannot resolve them), and the check reads exo's unit over D-Bus.
        users.users.exo-healthcheck = {
          isSystemUser = true;
          group = "exo-healthcheck";
          description = "exo's health check";
        };
        users.groups.exo-healthcheck = { };

        systemd.tmpfiles.rules = [
          "d ${dirOf healthStatusFile} 0755 root root -"
        ]
        ++ lib.optional (cfg.healthCheck.textfile != null) "d ${dirOf cfg.healthCheck.textfile} 0755 root root -";

        systemd.services.exo-healthcheck = {
          description = "Health check of exo";
          after = [ "exo.service" ];
          onFailure = cfg.healthCheck.onFailure;
          restartIfChanged = false;
          # sh: the check runs its systemctl and journalctl queries as one shell batch
          path = [ pkgs.bash ];
          environment = {
            EXO_HEALTH_STATE_DIR = healthStateDir;
            EXO_HEALTH_THRESHOLD = toString cfg.healthCheck.failureThreshold;
            EXO_HEALTH_RESTART = if cfg.healthCheck.restart then "1" else "0";
            EXO_HEALTH_RESTART_INTERVAL = toString cfg.healthCheck.restartInterval;
            EXO_HEALTH_UNIT = "exo.service";
            EXO_HEALTH_STATUS_FILE = healthStatusFile;
          }
          // lib.optionalAttrs (cfg.healthCheck.textfile != null) {
            EXO_HEALTH_TEXTFILE = cfg.healthCheck.textfile;
          };
          serviceConfig = oneshotHardening // {
            Type = "oneshot";
            # The check runs as a user of its own: it reads what exo and systemd show anyone,
            # exo's journal (systemd-journal) and the free space under exo's private folder
            # (CAP_DAC_READ_SEARCH: /var/lib/private is 0700). What needs root, restarting exo
            # and publishing the results, is exo-health-act's, after the check has ended.
            User = "exo-healthcheck";
            Group = "exo-healthcheck";
            SupplementaryGroups = [ "systemd-journal" ];
            AmbientCapabilities = [ "CAP_DAC_READ_SEARCH" ];
            ExecStart = "${healthCounter} ${
              utils.escapeSystemdExecArgs (
                [ exoDeploy ]
                ++ exoCli.checkArgs {
                  api = apiUrl;
                  unit = "exo.service";
                  stateDir = realStateDir;
                  since = cfg.healthCheck.interval;
                  statusFile = "${healthStateDir}/health.json";
                  textfile = if cfg.healthCheck.textfile != null then "${healthStateDir}/health.prom" else null;
                  inherit (cfg.healthCheck) expectNodes extraArgs;
                }
              )
            }";
            # "+": with full privileges, outside the sandbox above; a fixed script that acts on
            # what the check left in its folder. "-": the unit's result is the check's. systemd
            # can fail to start it (219/CGROUP when the unit's cgroup is gone after a reload);
            # a restart asked for stays asked for until it runs, and it logs its own failures.
            ExecStopPost = "-+${healthAct}";
            # The counter and the results stay between runs.
            RuntimeDirectory = "exo-healthcheck";
            RuntimeDirectoryPreserve = "yes";
            TimeoutStartSec = "2min";
          };
        };
        systemd.timers.exo-healthcheck = {
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnBootSec = cfg.healthCheck.interval;
            OnUnitActiveSec = cfg.healthCheck.interval;
            # systemd's default of 1min would stretch a 2m interval to as much as 3m, and so
            # the time until a hung exo is restarted
            AccuracySec = "1s";
          };
        };
      })

      (lib.mkIf cfg.rebootGuard.enable {
        systemd.tmpfiles.rules = [ "d ${rebootGuardDir} 0700 root root -" ];

        systemd.services.exo-deploy-reboot-guard = {
          description = "exo-deploy's reboot guard: arms the revert timer a deploy left for this boot";
          wantedBy = [ "multi-user.target" ];
          after = [ "local-fs.target" ];
          # once per boot: run again by an activation, it could arm a timer the deployer took off
          restartIfChanged = false;
          # (readlink, cat, rm, xargs and systemd-run: all on every unit's default PATH)
          serviceConfig = oneshotHardening // {
            Type = "oneshot";
            RemainAfterExit = true;
            # root: the folder is root's; the timer it arms runs outside this sandbox (systemd's)
            User = "root";
            ExecStart = utils.escapeSystemdExecArgs [
              rebootGuardScript
              rebootGuardDir
            ];
            ReadWritePaths = [ rebootGuardDir ];
          };
        };
      })

      (lib.mkIf cfg.backup.enable {
        systemd.tmpfiles.rules = [ "d ${cfg.backup.dir} 0700 root root -" ];

        systemd.services.exo-backup = {
          description = "Backup of exo's state";
          after = [ "exo.service" ];
          onSuccess = lib.optional cfg.backup.restic.enable "restic-backups-exo.service";
          # nix-store for the GC root; tar, gzip and sh for the archive and its checksums (a
          # unit's PATH holds only coreutils, findutils, grep, sed and systemd)
          path = [
            config.nix.package
            pkgs.bash
            pkgs.gnutar
            pkgs.gzip
          ];
          restartIfChanged = false;
          # The GC root that pins the running system is registered through the daemon.
          environment.NIX_REMOTE = "daemon";
          serviceConfig = oneshotHardening // {
            Type = "oneshot";
            # root: reads exo's private folder and adds a GC root for the running system.
            User = "root";
            # retention after the backup, as restic.nix does
            ExecStart = map (args: "${exoDeploy} ${utils.escapeSystemdExecArgs args}") [
              (exoCli.backupCreateArgs {
                inherit (cfg.backup) dir;
                stateDir = realStateDir;
                models = cfg.backup.includeModels;
              })
              (exoCli.backupPruneArgs { inherit (cfg.backup) dir keep; })
            ];
            ReadWritePaths = [
              cfg.backup.dir
              "/nix/var/nix/gcroots"
              # The backup records the system's generations, and `nix-env --list-generations`
              # takes the profile's lock: it makes system.lock and, done, marks it stale and
              # unlinks it. Only the folder lets it: a lock file left marked stale would stop
              # every later nix-env on the profile (nixos-rebuild's too) for good.
              "/nix/var/nix/profiles"
            ];
          };
        };
        systemd.timers.exo-backup = lib.mkIf (cfg.backup.timerConfig != null) {
          wantedBy = [ "timers.target" ];
          timerConfig = cfg.backup.timerConfig;
        };

        services.restic.backups.exo = lib.mkIf cfg.backup.restic.enable {
          paths = [ cfg.backup.dir ];
          # runs after each successful exo backup (OnSuccess= above) instead of on its own timer
          timerConfig = lib.mkDefault null;
        };
      })

      (lib.mkIf cfg.autoDeploy.enable {
        assertions = [
          {
            assertion = exoCli.urlCredentialsHidden cfg.autoDeploy.url == null;
            message = "services.exo.autoDeploy.url (${toString (exoCli.urlCredentialsHidden cfg.autoDeploy.url)}) carries credentials, and the pull unit's command line lands in the world-readable Nix store. Take them out of the URL: use an ssh URL with services.exo.autoDeploy.sshKeyFile, or a git credential helper for http(s).";
          }
          {
            assertion = cfg.autoDeploy.sshKeyFile == null || !(lib.hasPrefix "/nix/store" cfg.autoDeploy.sshKeyFile);
            message = "services.exo.autoDeploy.sshKeyFile points into the Nix store (${cfg.autoDeploy.sshKeyFile}), where anyone can read a private key. Keep the key outside it, readable by root only, e.g. /run/secrets/exo-deploy-pull-key (sops-nix, agenix) or /etc/exo-deploy/pull-key.";
          }
          {
            assertion = cfg.autoDeploy.hostName != "";
            message = "services.exo.autoDeploy.hostName is empty (networking.hostName is, as on a host named by DHCP): set it to this host's name in the config repository.";
          }
          {
            assertion = pullTextfile == null || pullTextfile != cfg.healthCheck.textfile;
            message = "services.exo.healthCheck.textfile is ${toString cfg.healthCheck.textfile}, the file pull mode writes its metrics to: name the health check's file otherwise, e.g. exo.prom.";
          }
        ];

        systemd.tmpfiles.rules = [
          "d ${pullDir} 0700 root root -"
        ]
        # the collector's folder, which the health check makes when it is on
        ++ lib.optional (
          pullTextfile != null && !cfg.healthCheck.enable
        ) "d ${dirOf pullTextfile} 0755 root root -";

        systemd.services.exo-deploy-pull = {
          description = "exo-deploy pull: deploy this host's system from ${cfg.autoDeploy.branch} of its config repository";
          wants = [ "network-online.target" ];
          after = [ "network-online.target" ];
          # The unit runs the switch itself: a switch must never restart it (a new system with a
          # changed unit) nor stop it (a new system without it) while it waits on that switch.
          restartIfChanged = false;
          unitConfig.X-StopOnRemoval = false;
          # nix and nix-env build the system and set the profile, git and ssh fetch, systemctl,
          # systemd-run and journalctl activate and watch it, sh runs the deploy's commands,
          # tar and gzip back up exo's state before the activation
          path = [
            config.nix.package
            pkgs.git
            pkgs.openssh
            pkgs.systemd
            pkgs.coreutils
            pkgs.bash
            pkgs.gnutar
            pkgs.gzip
          ];
          environment = {
            # Builds run in nix-daemon, as every user's do, not in this unit: see below.
            NIX_REMOTE = "daemon";
          }
          // lib.optionalAttrs (cfg.autoDeploy.sshKeyFile != null) {
            GIT_SSH_COMMAND = "ssh -i ${lib.escapeShellArg cfg.autoDeploy.sshKeyFile} -o IdentitiesOnly=yes -o BatchMode=yes";
          };
          serviceConfig = {
            Type = "oneshot";
            # root, with the host in view, as nixos-rebuild: the run sets the system profile,
            # has systemd run the new system's switch-to-configuration (in a unit of its own),
            # backs up exo's state and restarts exo. The system it deploys runs as root anyway,
            # so ProtectSystem=, ProtectHome=, PrivateTmp= or a capability or system call
            # filter would break deploys and keep nothing out.
            User = "root";
            # What still fits, with builds in nix-daemon and the switch in a unit of its own:
            # no other architecture's programs, no privileges gained, no set-user-ID files.
            LockPersonality = true;
            NoNewPrivileges = true;
            RestrictRealtime = true;
            RestrictSUIDSGID = true;
            SystemCallArchitectures = "native";
            ExecStart = utils.escapeSystemdExecArgs (
              [ exoDeploy ]
              ++ exoCli.pullArgs {
                inherit pullDir;
                inherit (cfg.autoDeploy)
                  url
                  branch
                  hostName
                  repoConfig
                  allowedSignersFile
                  extraArgs
                  ;
                textfile = pullTextfile;
              }
            );
            # 4: another deploy (a push) holds this host, and the run stepped aside. Not a
            # failure of this unit: a failed unit during that deploy's activation would count
            # against the release it activates.
            SuccessExitStatus = [ 4 ];
            # A run evaluates and builds a whole system on this host, then waits for the
            # health gate: hours, the first time or after a large input update. A run that
            # hangs is ended after that, and the next starts an interval later.
            TimeoutStartSec = "2h";
          };
        };
        systemd.timers.exo-deploy-pull = {
          wantedBy = [ "timers.target" ];
          timerConfig = {
            # an interval after the timer starts (at boot, or at the activation that adds it):
            # not in the middle of that activation, and not behind a deploy that just began
            OnActiveSec = cfg.autoDeploy.interval;
            # from the end of the last run: a long one never has another queued behind it
            OnUnitInactiveSec = cfg.autoDeploy.interval;
            RandomizedDelaySec = cfg.autoDeploy.randomizedDelay;
            # systemd's default of 1min could add up to a minute to each interval
            AccuracySec = "1s";
          };
        };
      })
    ]
  );
}
