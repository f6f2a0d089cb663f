# What nix/package.nix takes from nixpkgs, stood in for (there is no nixpkgs here).
#   { lib }                 evaluation only: mkDerivation returns a fake derivation that keeps
#                           its arguments (drvAttrs), so the tests can read what it would do
#   { lib, node = "/usr/bin/node"; }
#                           a real derivation, built by /bin/sh with stub-stdenv.sh (runHook,
#                           makeWrapper) around the package's own installPhase, and a nodejs
#                           that links to this machine's node: `nix-build` makes a runnable
#                           package. Needs Nix with sandbox = false (vitest.config.ts sets it).
{
  lib,
  node ? null,
  system ? builtins.currentSystem,
}:
let
  build = node != null;
  PATH = "/usr/local/bin:/usr/bin:/bin";
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/55555555555555555555555555555555-${name}";
  };
in
{
  inherit lib;
  stdenvNoCC.mkDerivation =
    args:
    let
      name = "${args.pname}-${args.version}";
    in
    if build then
      derivation (
        removeAttrs args [ "meta" ]
        // {
          inherit name system PATH;
          builder = "/bin/sh";
          args = [ ./stub-stdenv.sh ];
        }
      )
      // {
        inherit (args) meta;
      }
    else
      fake name
      // {
        inherit (args) pname version meta;
        drvAttrs = args;
      };
  makeWrapper = if build then "stub-makeWrapper" else fake "make-shell-wrapper-hook";
  nodejs_22 =
    if build then
      derivation {
        name = "nodejs-stub";
        inherit system PATH node;
        builder = "/bin/sh";
        args = [
          "-c"
          "mkdir -p $out/bin && ln -s $node $out/bin/node"
        ];
      }
    else
      fake "nodejs-22.21.1" // { meta.mainProgram = "node"; };
}
