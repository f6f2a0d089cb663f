# VM test of `exo-deploy deploy` with the real nixos-rebuild: a deployer node holds a config
# repository (a flake using this flake's module and exo's stand-in) and deploys it to a target
# node over SSH. A healthy change is made permanent; a change whose exo never becomes healthy
# is rolled back to the exact system that ran before, and the deploy exits 1.
# Modelled on nixpkgs' nixos/tests/nixos-rebuild-target-host.nix.
{ pkgs, self }:
let
  inherit (pkgs) lib;
  system = pkgs.stdenv.hostPlatform.system;
  sshKeys = import (pkgs.path + "/nixos/tests/ssh-keys.nix") pkgs;

  # What the target needs besides exo, as plain data (the config repo imports it as JSON).
  targetBase = {
    documentation.enable = false;
    services.openssh.enable = true;
    users.users.root.openssh.authorizedKeys.keys = [ sshKeys.snakeOilPublicKey ];
    nix.settings.experimental-features = [
      "nix-command"
      "flakes"
    ];
  };

  # services.exo in the config repo; `extra` is Nix code added to it.
  exoModule =
    namespace: extra:
    pkgs.writeText "exo.nix" ''
      { pkgs, inputs, ... }:
      {
        services.exo = {
          enable = true;
          package = pkgs.callPackage (inputs.exo-deploy + "/nix/tests/stub-exo.nix") { };
          era = "zenoh";
          namespace = "${namespace}";
          openFirewall = true;
          startTimeout = "30s";
          ${extra}
        };
        boot.loader.grub = {
          enable = true;
          device = "/dev/vda";
          forceInstall = true;
        };
      }
    '';

  configFlake = pkgs.writeText "flake.nix" ''
    {
      inputs.nixpkgs.url = "path:${pkgs.path}";
      inputs.exo-deploy = {
        url = "path:${self}";
        inputs.nixpkgs.follows = "nixpkgs";
      };
      outputs = { nixpkgs, exo-deploy, ... }@inputs: {
        nixosConfigurations.target = nixpkgs.lib.nixosSystem {
          system = "${system}";
          specialArgs = { inherit inputs; };
          modules = [
            (nixpkgs + "/nixos/modules/virtualisation/qemu-vm.nix")
            (nixpkgs + "/nixos/modules/testing/test-instrumentation.nix")
            (nixpkgs.lib.modules.importJSON ./target-base.json)
            (nixpkgs.lib.modules.importJSON ./target-network.json)
            ./hardware-configuration.nix
            exo-deploy.nixosModules.default
            ./exo.nix
          ];
        };
      };
    }
  '';

  deployToml = pkgs.writeText "exo-deploy.toml" ''
    flake = "."
    [defaults]
    ssh_options = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    [health]
    soak = "10s"
    ready_timeout = "60s"
    cluster_size = 1
    [backup]
    dir = "/var/backups/exo"
    keep = 5
    [hosts.target]
    target = "root@target"
    api = "http://target:52415"
  '';

  sshConfig = pkgs.writeText "ssh-config" ''
    StrictHostKeyChecking=no
    UserKnownHostsFile=/dev/null
  '';
in
pkgs.testers.runNixOSTest {
  name = "exo-deploy-deploy";

  nodes.deployer =
    { lib, ... }:
    {
      imports = [ (pkgs.path + "/nixos/modules/profiles/installation-device.nix") ];
      nix.settings = {
        substituters = lib.mkForce [ ];
        hashed-mirrors = null;
        connect-timeout = 1;
        experimental-features = [
          "nix-command"
          "flakes"
        ];
      };
      # Everything needed to build the target's next system offline.
      system.includeBuildDependencies = true;
      system.extraDependencies = [
        pkgs.path
        self.outPath
      ];
      environment.systemPackages = [
        self.packages.${system}.exo-deploy
        pkgs.jq
      ];
      virtualisation = {
        cores = 2;
        memorySize = 3072;
      };
    };

  nodes.target =
    { lib, ... }:
    {
      imports = [ self.nixosModules.exo ];
      config = lib.mkMerge [
        targetBase
        {
          services.exo = {
            enable = true;
            package = pkgs.callPackage ./stub-exo.nix { };
            era = "zenoh";
            namespace = "initial";
            openFirewall = true;
          };
          networking.hostName = "target";
          system.build.targetBase = targetBase;
        }
      ];
    };

  testScript =
    { nodes, ... }:
    let
      targetBaseJSON = pkgs.writeText "target-base.json" (builtins.toJSON nodes.target.system.build.targetBase);
      targetNetworkJSON = pkgs.writeText "target-network.json" (builtins.toJSON nodes.target.system.build.networkConfig);
    in
    ''
      import json

      start_all()
      target.wait_for_unit("exo.service")
      target.wait_for_open_port(22)
      deployer.wait_until_succeeds("ping -c1 target")
      deployer.succeed("install -Dm 600 ${sshKeys.snakeOilPrivateKey} ~root/.ssh/id_ecdsa")
      deployer.succeed("install ${sshConfig} ~root/.ssh/config")

      # The config repository on the deployer.
      target.succeed("nixos-generate-config")
      deployer.succeed("mkdir -p /root/config")
      deployer.succeed("scp root@target:/etc/nixos/hardware-configuration.nix /root/config/")
      deployer.copy_from_host("${configFlake}", "/root/config/flake.nix")
      deployer.copy_from_host("${deployToml}", "/root/config/exo-deploy.toml")
      deployer.copy_from_host("${targetBaseJSON}", "/root/config/target-base.json")
      deployer.copy_from_host("${targetNetworkJSON}", "/root/config/target-network.json")
      deployer.copy_from_host("${exoModule "deployed-1" ""}", "/root/config/exo.nix")
      deployer.succeed("cd /root/config && nix flake lock")

      with subtest("a healthy change is activated, gated and made permanent"):
          deployer.succeed("cd /root/config && exo-deploy deploy --hosts target >&2")
          release = json.loads(target.succeed("cat /etc/exo/release.json"))
          assert release["namespace"] == "deployed-1", release
          # permanent: the system profile points at the running system
          target.succeed("test \"$(readlink -f /nix/var/nix/profiles/system)\" = \"$(readlink -f /run/current-system)\"")
          target.succeed("systemctl is-active exo.service")
          good_system = target.succeed("readlink -f /run/current-system").strip()
          # the deploy took a backup on the target first
          target.succeed("test -n \"$(ls -A /var/backups/exo)\"")

      with subtest("an unhealthy change is rolled back to the exact system that ran before"):
          deployer.copy_from_host("${exoModule "deployed-2" ''environment.EXO_STUB_FAULT = "models-500";''}", "/root/config/exo.nix")
          rc, out = deployer.execute("cd /root/config && exo-deploy deploy --hosts target --json")
          assert rc == 1, f"deploy exited {rc}, expected 1: {out}"
          assert target.succeed("readlink -f /run/current-system").strip() == good_system
          assert target.succeed("readlink -f /nix/var/nix/profiles/system").strip() == good_system
          release = json.loads(target.succeed("cat /etc/exo/release.json"))
          assert release["namespace"] == "deployed-1", release
          target.wait_until_succeeds("exo-deploy check --local")
          # a report was written, in Markdown and JSON
          deployer.succeed("ls /root/config/reports | grep -F .md")
          deployer.succeed("ls /root/config/reports | grep -F .json")
    '';
}
