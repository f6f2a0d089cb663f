# Stand-in for nixpkgs' nixos/tests/ssh-keys.nix in test/module/nix/eval-vm-tests.nix.
_pkgs: {
  snakeOilPrivateKey = "/nix/store/22222222222222222222222222222222-snakeoil-key";
  snakeOilPublicKey = "ssh-ecdsa-stub";
}
