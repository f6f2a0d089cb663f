# VM test of services.exo with exo's stand-in: the service starts hardened and ready, its ports
# answer through the firewall, the health timer writes its status, a stopped or faulty exo makes
# the check fail (and a faulty one is restarted), the backup timer makes a backup that prunes.
{ pkgs, self }:
let
  stubExo = pkgs.callPackage ./stub-exo.nix { };
in
pkgs.testers.runNixOSTest {
  name = "exo-module";

  nodes.machine =
    { ... }:
    {
      imports = [ self.nixosModules.exo ];
      virtualisation.memorySize = 1536;
      environment.systemPackages = [
        pkgs.curl
        pkgs.jq
      ];

      services.exo = {
        enable = true;
        package = stubExo;
        # the stub takes exo main's flags
        era = "zenoh";
        namespace = "vm-test";
        openFirewall = true;
        healthCheck = {
          interval = "5s";
          expectNodes = 1;
          failureThreshold = 2;
          restartInterval = 1;
          textfile = "/var/lib/node-exporter/exo.prom";
        };
        backup = {
          keep = 2;
          timerConfig = {
            OnActiveSec = "20s";
          };
        };
      };
    };

  nodes.client =
    { ... }:
    {
      environment.systemPackages = [ pkgs.curl ];
    };

  testScript = ''
    import json

    start_all()

    with subtest("exo starts, is ready, and runs hardened as a DynamicUser"):
        machine.wait_for_unit("exo.service")
        machine.succeed("curl --fail --silent http://127.0.0.1:52415/models")
        machine.succeed("systemctl show exo.service -p DynamicUser | grep -Fx DynamicUser=yes")
        machine.succeed("systemctl show exo.service -p ProtectSystem | grep -Fx ProtectSystem=strict")
        # exo's home is the state folder (EXO_HOME), behind the DynamicUser symlink
        machine.succeed("test -f /var/lib/private/exo/config.toml")
        machine.succeed("test -f /var/lib/private/exo/exo_log/exo.log")
        machine.succeed("systemctl cat exo.service | grep -F -- '--namespace'")

    with subtest("the ports are open to other hosts"):
        machine.wait_for_open_port(52415)
        client.wait_until_succeeds("curl --fail --silent http://machine:52415/node_id")

    with subtest("release.json describes this generation"):
        release = json.loads(machine.succeed("cat /etc/exo/release.json"))
        assert release["exo"]["version"] == "${stubExo.version}", release
        assert release["exo"]["package"] == "${stubExo}", release
        assert release["namespace"] == "vm-test", release
        assert release["ports"] == {"api": 52415, "libp2p": None, "zenoh": 52414, "discovery": 52413}, release

    with subtest("the health timer writes its status and a Prometheus textfile"):
        machine.wait_for_unit("exo-healthcheck.timer")
        machine.wait_until_succeeds("test -s /run/exo/health.json", timeout=60)
        machine.wait_until_succeeds("test -s /var/lib/node-exporter/exo.prom", timeout=60)
        machine.succeed("jq -e . /run/exo/health.json")
        machine.succeed("exo-deploy check --local --expect-nodes 1")

    with subtest("a stopped exo fails the check, and stays stopped"):
        machine.succeed("systemctl stop exo-healthcheck.timer")
        machine.succeed("rm -f /run/exo/health-failures")
        machine.succeed("systemctl stop exo.service")
        machine.fail("exo-deploy check --local")
        # first failure: recorded, unit still succeeds
        machine.succeed("systemctl start exo-healthcheck.service")
        machine.succeed("grep -Fx 1 /run/exo/health-failures")
        # second consecutive failure: the unit fails so OnFailure= hooks fire
        machine.fail("systemctl start exo-healthcheck.service")
        machine.fail("systemctl is-active exo.service")
        machine.succeed("systemctl start exo.service")
        machine.succeed("systemctl start exo-healthcheck.service")
        machine.fail("test -e /run/exo/health-failures")

    with subtest("a running but faulty exo is restarted after N failed checks"):
        pid_before = machine.succeed("systemctl show exo.service -p MainPID --value").strip()
        machine.succeed("touch /var/lib/private/exo/fault")
        machine.succeed("systemctl start exo-healthcheck.service")
        machine.fail("systemctl start exo-healthcheck.service")
        machine.succeed("rm /var/lib/private/exo/fault")
        machine.wait_until_succeeds(
            f"test \"$(systemctl show exo.service -p MainPID --value)\" != {pid_before}"
        )
        machine.wait_for_unit("exo.service")
        machine.succeed("journalctl -u exo-healthcheck.service | grep -F 'restarting exo.service'")

    with subtest("the backup timer makes a verified backup that pins the system, and prune keeps 2"):
        machine.wait_until_succeeds(
            "journalctl -u exo-backup.service | grep -F 'Finished'", timeout=120
        )
        machine.succeed("systemctl start exo-backup.service")
        machine.succeed("systemctl start exo-backup.service")
        listing = json.loads(
            machine.succeed("exo-deploy backup list --local --dir /var/backups/exo --json")
        )
        backups = listing["hosts"][0]["backups"]
        assert len(backups) == 2, listing
        for b in backups:
            machine.succeed(f"cd /var/backups/exo/{b['id']} && sha256sum --check --strict manifest.sha256")
            # the system it recorded is pinned by a GC root named after the backup
            machine.succeed(
                f"nix-store --gc --print-roots | grep -F '/nix/var/nix/gcroots/exo-deploy-backups/{b['id']} -> {b['systemPath']}'"
            )
        machine.succeed("test \"$(stat -c %a /var/backups/exo)\" = 700")
  '';
}
