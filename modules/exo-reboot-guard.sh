#!/usr/bin/env bash
# exo-reboot-guard: run once at each boot. When exo-deploy rebooted this host into a new system,
# it left in the guard's folder ($1) the revert timer's arguments (arm) and the system it
# rebooted the host into (system). If this boot is that system, the timer is armed: unless the
# deployer confirms it over a new ssh connection in time, it makes the system the host ran
# before its boot default again and reboots into it. Any other boot (the guard's own revert, a
# boot loader that fell back, a person's choice) has nothing to guard: the files go. A guard
# fires at most once.
#
# What `arm` holds goes to systemd-run as arguments (NUL-separated), never through a shell.
set -eu

dir=${1:?usage: exo-reboot-guard FOLDER}
# no guard left, or one that fired already (its revert empties arm and writes status): a guard
# fires once, so a revert that lands in the guarded system again cannot loop
[ -s "$dir/arm" ] || exit 0
if [ -e "$dir/status" ]; then
  echo "its revert ran already (status $(cat -- "$dir/status")): not armed again"
  exit 0
fi
booted=$(readlink -f /run/booted-system || true)
guarded=$(cat -- "$dir/system" 2>/dev/null || true)
if [ -z "$booted" ] || [ "$booted" != "$guarded" ]; then
  echo "this boot runs ${booted:-no NixOS system}, not ${guarded:-a known system}, which exo-deploy rebooted this host into: nothing to guard"
  rm -f -- "$dir/arm" "$dir/system"
  exit 0
fi
echo "exo-deploy rebooted this host into $booted: arming its revert timer"
xargs -0 -a "$dir/arm" systemd-run
