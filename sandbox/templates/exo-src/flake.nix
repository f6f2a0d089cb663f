{
  # exo, as the sandbox fleet ships it: the exo stand-in (exo.mjs, run by the host's Node)
  # plus its release settings. Written by `npm run sandbox -- up`; every
  # `npm run sandbox -- release` commits a new release.json here.
  description = "exo (sandbox stand-in)";

  outputs = { self }:
    let
      system = "x86_64-linux";
      release = builtins.fromJSON (builtins.readFile ./release.json);
      exo = derivation {
        name = "exo-${release.version}";
        pname = "exo";
        inherit system;
        inherit (release) version;
        builder = "/bin/sh";
        args = [ ./build.sh ];
        src = ./exo.mjs;
        releaseJson = ./release.json;
        PATH = "/usr/bin:/bin";
      };
    in
    {
      packages.${system} = {
        default = exo;
        inherit exo;
      };
    };
}
