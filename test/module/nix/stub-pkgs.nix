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
  # nixpkgs' exo: the newest release, libp2p era
  exo = fakePackage "exo" "1.0.71";
  # exo's own flake package: a writeShellApplication named `exo`, no version (zenoh era)
  exo-flake = {
    type = "derivation";
    name = "exo";
    outPath = "/nix/store/22222222222222222222222222222222-exo";
    meta.mainProgram = "exo";
  };
  # versions the module cannot place in an era
  exo-future = fakePackage "exo" "1.1.0";
  exo-v2 = fakePackage "exo" "2.0.0";
  exo-unstable-old = fakePackage "exo" "0-unstable-2026-05-01";
  # what nixos-25.11 may still carry: exo from before its 1.0 rewrite
  exo-pre-v1 = fakePackage "exo" "0-unstable-2024-12-07";
  exo-unstable-new = fakePackage "exo" "0-unstable-2026-06-20";
  exo-deploy = fakePackage "exo-deploy" "0.1.0";
  # NVIDIA's driver (boot.kernelPackages.nvidiaPackages.*) of a version
  nvidiaDriver = fakePackage "nvidia-x11";
  curl = fakePackage "curl" "8.14.1";
  nix = fakePackage "nix" "2.28.0";
  bash = fakePackage "bash" "5.3p3";
  gnutar = fakePackage "gnutar" "1.35";
  gzip = fakePackage "gzip" "1.14";
  git = fakePackage "git" "2.51.0";
  openssh = fakePackage "openssh" "10.2p1";
  systemd = fakePackage "systemd" "258";
  coreutils = fakePackage "coreutils" "9.8";
  # callPackage of the VM tests (eval-vm-tests.nix); eval-flake.nix uses lib.callPackageWith
  callPackage = fn: _args: fakePackage "exo-deploy" "from-${baseNameOf fn}";
  writeShellScript = fakeScript;
  writeText = fakeScript;
}
