# Fill in the `resolved` URL of every registry package in a package-lock.json. npm leaves it
# out when `omit-lockfile-registry-resolved` is set; importNpmLock needs it to fetch each
# package (the hash comes from `integrity`). Builtins only: CI tests it without nixpkgs.
# `registry` is the base URL of the npm registry the lock's packages came from; it has no
# default here because it is the builder's to choose (a public registry or a mirror).
{
  registry,
}:
let
  inherit (builtins)
    baseNameOf
    elemAt
    length
    mapAttrs
    split
    ;
  # "node_modules/a/node_modules/@s/b" -> "@s/b"
  nameFromPath =
    path:
    let
      parts = split "node_modules/" path;
    in
    elemAt parts (length parts - 1);
  tarballUrl =
    name: version: "${registry}/${name}/-/${baseNameOf name}-${version}.tgz";
  needsUrl =
    path: module:
    path != ""
    && !(module ? resolved)
    && module ? integrity
    && module ? version
    && !(module.link or false)
    && !(module.inBundle or false);
in
lock:
lock
// {
  packages = mapAttrs (
    path: module:
    if needsUrl path module then
      module // { resolved = tarballUrl (module.name or (nameFromPath path)) module.version; }
    else
      module
  ) lock.packages;
}
