# The Python test scripts of nix/tests/*.nix with their Nix interpolations filled in by stubs,
# so the tests can check that they are valid Python (the VMs themselves cannot run here).
{ lib }:
let
  stubPkgs = import ./stub-pkgs.nix;
  pkgs = stubPkgs // {
    inherit lib;
    path = ./fake-nixpkgs;
    stdenv.hostPlatform.system = "x86_64-linux";
    testers.runNixOSTest = args: args;
    jq = stubPkgs.curl;
    writeText = name: _text: "/nix/store/33333333333333333333333333333333-${name}";
  };
  self = {
    outPath = "/nix/store/44444444444444444444444444444444-source";
    nixosModules.exo = { };
    packages.x86_64-linux.exo-deploy = stubPkgs.exo-deploy;
  };
  nodes.target.system.build = {
    targetBase = { };
    networkConfig = { };
  };
  moduleTest = import ../../../nix/tests/module.nix { inherit pkgs self; };
  deployTest = import ../../../nix/tests/deploy.nix { inherit pkgs self; };
in
{
  module = moduleTest.testScript;
  deploy = deployTest.testScript { inherit nodes; };
  names = [
    moduleTest.name
    deployTest.name
  ];
}
