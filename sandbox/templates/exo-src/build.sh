# shellcheck shell=sh disable=SC2154 # the derivation's attributes come as environment variables
# Builder of the exo stand-in package (run by /bin/sh, PATH=/usr/bin:/bin).
set -eu
mkdir -p "$out/bin" "$out/lib" "$out/share/exo"
cp -R "$src" "$out/lib/exo-standin"
cp "$releaseJson" "$out/share/exo/release.json"
cat > "$out/bin/exo" <<WRAPPER
#!/bin/sh
export EXO_STANDIN_RELEASE=$out/share/exo/release.json
# --jitless: V8 then needs no writable-and-executable memory, so the module's
# MemoryDenyWriteExecute= holds for the stand-in as it does for CPython
exec /usr/bin/node --jitless $out/lib/exo-standin/exo.mjs "\$@"
WRAPPER
chmod 555 "$out/bin/exo"
