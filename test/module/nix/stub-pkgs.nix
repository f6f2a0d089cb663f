# A fake `pkgs` for evaluation tests: packages are plain attribute sets with a store path,
# builders return a made-up store path named after their argument.
let
  fakePackage = pname: version: {
    type = "derivation";
    inherit pname version;
    name = "${pname}-${version}";
    outPath = "/nix/store/00000000000000000000000000000000-${pname}-${version}";
    meta.mainProgram = pname;
  };
  fakeScript = name: _text: "/nix/store/11111111111111111111111111111111-${name}";
in
{
  exo = fakePackage "exo" "1.0.71";
  exo-deploy = fakePackage "exo-deploy" "0.1.0";
  curl = fakePackage "curl" "8.14.1";
  # what the flake's module wrapper builds the toolkit with
  callPackage = fn: _args: fakePackage "exo-deploy" "from-${baseNameOf fn}";
  writeShellScript = fakeScript;
  writeText = fakeScript;
}
