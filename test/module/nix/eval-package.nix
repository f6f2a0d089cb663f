# Call nix/package.nix with stand-in builders (test/module/nix/package-stubs.nix) and return
# what the derivation would get: its attributes and the files of its source (nothing is built;
# the source is copied to the store, as any evaluation of the package does).
{ lib }:
let
  pkg = import ../../../nix/package.nix (import ./package-stubs.nix { inherit lib; });
  a = pkg.drvAttrs;
  # every file of a folder, as paths relative to it
  files =
    dir:
    lib.concatLists (
      lib.mapAttrsToList (
        name: type: if type == "directory" then map (f: "${name}/${f}") (files "${dir}/${name}") else [ name ]
      ) (builtins.readDir dir)
    );
in
{
  inherit (pkg) pname version name;
  inherit (pkg.meta) mainProgram description;
  srcName = baseNameOf a.src;
  srcFiles = files a.src;
  nativeBuildInputs = map (p: p.name) a.nativeBuildInputs;
  buildInputs = map (p: p.name) a.buildInputs;
  inherit (a) installPhase dontBuild dontConfigure;
  attrs = builtins.attrNames a;
}
