# Call nix/package.nix with stand-in builders that return their arguments, to check what the
# flake's package passes to buildNpmPackage and importNpmLock (nothing is built).
{ lib }:
let
  args = import ../../../nix/package.nix {
    npmRegistry = "https://registry.example";
    inherit lib;
    buildNpmPackage = a: a;
    importNpmLock = {
      __functor = _: a: a;
      npmConfigHook = "importNpmLock.npmConfigHook";
    };
    nodejs_22 = {
      name = "nodejs-22";
    };
  };
  lockPackages = args.npmDeps.packageLock.packages;
in
{
  inherit (args) pname version npmPackFlags;
  nodejs = args.nodejs.name;
  npmConfigHook = args.npmConfigHook;
  inherit (args.meta) mainProgram;
  npmRootIsRepo = toString args.npmDeps.npmRoot == toString ../../..;
  lockEntries = builtins.length (builtins.attrNames lockPackages);
  withoutUrl = builtins.filter (p: p != "" && !(lockPackages.${p} ? resolved)) (builtins.attrNames lockPackages);
}
