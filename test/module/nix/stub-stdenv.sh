# shellcheck shell=sh disable=SC2154 # the derivation's attributes come as environment variables
# The builder of test/module/nix/package-stubs.nix: what nixpkgs' stdenv does for
# nix/package.nix (unpack the source, run installPhase), with the shell functions the phase
# calls. Not stdenv: no patchShebangs, no fixup; only makeWrapper's --add-flags.
set -eu

runHook() { :; }

makeWrapper() {
  program=$1
  wrapper=$2
  shift 2
  flags=
  while [ $# -gt 0 ]; do
    case $1 in
      --add-flags) flags="$flags $2"; shift 2 ;;
      *) echo "stub makeWrapper: $1 is not supported" >&2; exit 1 ;;
    esac
  done
  mkdir -p "$(dirname "$wrapper")"
  printf '#!/bin/sh\nexec "%s"%s "$@"\n' "$program" "$flags" >"$wrapper"
  chmod +x "$wrapper"
}

cp -r "$src" source
chmod -R u+w source
cd source
eval "$installPhase"
