# The exo-deploy command-line toolkit, built from this repository. importNpmLock takes every
# dependency's hash from package-lock.json, so there is no npmDepsHash to keep up to date.
{
  lib,
  buildNpmPackage,
  importNpmLock,
  nodejs_22,
  # package-lock.json carries no download URLs when it was written with npm's
  # omit-lockfile-registry-resolved; importNpmLock then needs the registry to fetch from.
  npmRegistry ? null,
}:
let
  packageJSON = lib.importJSON ../package.json;
  lockJSON = lib.importJSON ../package-lock.json;
  lockHasUrls = lib.all (m: m ? resolved || !(m ? integrity)) (lib.attrValues (lib.removeAttrs lockJSON.packages [ "" ]));
  packageLock =
    if lockHasUrls then
      lockJSON
    else if npmRegistry != null then
      import ./npm-lock-resolved.nix { registry = npmRegistry; } lockJSON
    else
      throw "exo-deploy: package-lock.json has no download URLs; build with `exo-deploy.override { npmRegistry = \"<npm registry base URL>\"; }`";
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../package.json
      ../package-lock.json
      ../tsconfig.json
      ../src
      ../scripts/bundle.mjs
    ];
  };
in
buildNpmPackage {
  pname = packageJSON.name;
  inherit (packageJSON) version;
  inherit src;
  nodejs = nodejs_22;

  npmDeps = importNpmLock {
    npmRoot = ../.;
    inherit packageLock;
  };
  npmConfigHook = importNpmLock.npmConfigHook;

  # `npm run build` (tsc, then the esbuild bundle in dist/cli) already ran; do not let
  # `npm pack` run `prepare` again. The bundle holds every runtime dependency: the package
  # has only devDependencies, so no node_modules is installed with it.
  npmPackFlags = [ "--ignore-scripts" ];

  meta = {
    inherit (packageJSON) description;
    license = lib.licenses.mit;
    mainProgram = "exo-deploy";
    platforms = lib.platforms.linux;
  };
}
