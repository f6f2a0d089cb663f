{
  # exo, as the sandbox fleet ships it: the exo stand-in (the exo-standin folder, run by the
  # host's Node) plus its release settings. Written by `npm run sandbox -- up`; every
  # `npm run sandbox -- release` commits a new release.json (and stand-in) here.
  description = "exo (sandbox stand-in)";

  outputs = { self }:
    let
      system = "x86_64-linux";
      release = builtins.fromJSON (builtins.readFile ./release.json);
      inherit (release) version;
      # the stand-in's rule when release.json names no era: 1.0.x releases are libp2p-era exo
      era = release.era or (if builtins.match "1\\.0\\..*" version != null then "libp2p" else "zenoh");
      package = derivation {
        name = "exo-${version}";
        pname = "exo";
        inherit system version;
        builder = "/bin/sh";
        args = [ ./build.sh ];
        src = ./exo-standin;
        releaseJson = ./release.json;
        PATH = "/usr/bin:/bin";
      };
      # Plain attributes on the package (not build inputs): the era the stand-in runs and the
      # era the hosts' configuration is to claim for it (declared_era, a sandbox-only knob to
      # test a configuration that passes the wrong era's flags).
      exo = package // {
        inherit era;
        declaredEra = release.declared_era or era;
        # a fault of the whole system rather than of exo (cut-ssh), which the hosts'
        # configuration applies
        fault = release.fault or "none";
        faultOn = release.fault_on or [ ];
        # the kernel the hosts' systems boot with this release (`release --needs-reboot`), as
        # a nixpkgs update that brings exo brings a kernel; null: the hosts' default
        kernel = release.kernel or null;
      };
    in
    {
      packages.${system} = {
        default = exo;
        inherit exo;
      };
    };
}
