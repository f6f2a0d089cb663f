# nix/package.nix as a real derivation with stand-in builders and this machine's node
# (test/module/nix/package-stubs.nix), for `nix-build --no-out-link`.
{ lib, node }:
import ../../../nix/package.nix (import ./package-stubs.nix { inherit lib node; })
