# The exo-deploy command-line toolkit: the committed esbuild bundle (dist/cli, made by
# `npm run build`; CI checks it matches a fresh build) run by nodejs. The bundle carries every
# runtime dependency (execa, zod, @iarna/toml), so nothing is fetched from npm: no npmDeps, no
# registry, no hash to keep up to date.
{
  lib,
  stdenvNoCC,
  makeWrapper,
  nodejs_22,
}:
let
  packageJSON = lib.importJSON ../package.json;
  root = toString ../.;
  # Only package.json (the version the command prints, `"type": "module"`) and the bundle:
  # an edit anywhere else leaves the source, and so the package, unchanged.
  src =
    if !builtins.pathExists ../dist/cli/cli.js then
      throw "exo-deploy: dist/cli/cli.js is missing: run `npm run build` (in a flake, dist/cli must also be committed or at least `git add`ed)"
    else
      builtins.path {
        name = "exo-deploy-source";
        path = ../.;
        filter =
          path: _type:
          let
            rel = lib.removePrefix "${root}/" (toString path);
          in
          rel == "package.json" || rel == "dist" || rel == "dist/cli" || lib.hasPrefix "dist/cli/" rel;
      };
in
stdenvNoCC.mkDerivation {
  pname = packageJSON.name;
  inherit (packageJSON) version;
  inherit src;

  nativeBuildInputs = [ makeWrapper ];
  # for patchShebangs: cli.js's `#!/usr/bin/env node` becomes this node, as the wrapper's
  buildInputs = [ nodejs_22 ];

  dontConfigure = true;
  dontBuild = true;

  # dist/cli/cli.js reads ../../package.json for its version: keep the repository's layout.
  installPhase = ''
    runHook preInstall
    mkdir -p $out/lib/exo-deploy/dist
    cp package.json $out/lib/exo-deploy/
    cp -r dist/cli $out/lib/exo-deploy/dist/
    makeWrapper ${lib.getExe' nodejs_22 "node"} $out/bin/exo-deploy \
      --add-flags $out/lib/exo-deploy/dist/cli/cli.js
    runHook postInstall
  '';

  meta = {
    inherit (packageJSON) description;
    license = lib.licenses.mit;
    mainProgram = "exo-deploy";
    platforms = lib.platforms.linux;
  };
}
