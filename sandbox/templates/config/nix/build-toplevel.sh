# Builder of a host's toplevel (run by /bin/sh, PATH=/usr/bin:/bin).
set -eu
mkdir -p "$out/bin" "$out/etc/systemd/system" "$out/etc/exo"
printf '%s' "$unit" > "$out/etc/systemd/system/exo.service"
printf '%s\n' "$release" > "$out/etc/exo/release.json"
printf '%s' "$nixosVersion" > "$out/nixos-version"
printf '%s\n' "$hostName" > "$out/etc/hostname"
ln -s "$exoPackage" "$out/exo"
sed "s|@out@|$out|g" "$switchScript" > "$out/bin/switch-to-configuration"
chmod 555 "$out/bin/switch-to-configuration"
