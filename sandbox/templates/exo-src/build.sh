# Builder of the exo stand-in package (run by /bin/sh, PATH=/usr/bin:/bin).
set -eu
mkdir -p "$out/bin" "$out/lib" "$out/share/exo"
cp -R "$src" "$out/lib/exo-standin"
cp "$releaseJson" "$out/share/exo/release.json"
cat > "$out/bin/exo" <<WRAPPER
#!/bin/sh
export EXO_STANDIN_RELEASE=$out/share/exo/release.json
exec /usr/bin/node $out/lib/exo-standin/exo.mjs "\$@"
WRAPPER
chmod 555 "$out/bin/exo"
