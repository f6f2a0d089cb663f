# shellcheck shell=sh disable=SC2154 # the derivation's attributes come as environment variables
# Builder of a host's toplevel (run by /bin/sh, PATH=/usr/bin:/bin). $units, $etc: NAME=FILE
# pairs; $wants: TARGET.wants/UNIT links; $packages: store paths whose bin/ goes to sw/bin;
# $users, $groups: users.users and users.groups, a line each.
set -eu
units_dir=$out/etc/systemd/system
mkdir -p "$out/bin" "$units_dir" "$out/sw/bin"
for u in $units; do ln -s "${u#*=}" "$units_dir/${u%%=*}"; done
for w in $wants; do
  mkdir -p "$units_dir/${w%/*}"
  ln -s "../${w#*/}" "$units_dir/$w"
done
for f in $etc; do
  mkdir -p "$out/etc/$(dirname "${f%%=*}")"
  ln -s "${f#*=}" "$out/etc/${f%%=*}"
done
for p in $packages; do
  [ -d "$p/bin" ] || continue
  for b in "$p"/bin/*; do ln -sf "$b" "$out/sw/bin/"; done
done
printf '%s' "$nixosVersion" > "$out/nixos-version"
printf '%s\n' "$users" > "$out/users"
printf '%s\n' "$groups" > "$out/groups"
printf '%s\n' "$hostName" > "$out/etc/hostname"
ln -s "$exoPackage" "$out/exo"
ln -s "$kernel" "$out/kernel"
ln -s "$initrd" "$out/initrd"
ln -s "$kernelModules" "$out/kernel-modules"
ln -s "$switchInhibitors" "$out/switch-inhibitors"
sed -e "s|@out@|$out|g" -e "s|@preSwitchCheck@|$preSwitchCheck|g" "$switchScript" > "$out/bin/switch-to-configuration"
chmod 555 "$out/bin/switch-to-configuration"
