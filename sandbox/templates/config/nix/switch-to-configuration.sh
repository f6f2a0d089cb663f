#!/bin/bash
# switch-to-configuration for the sandbox hosts: what NixOS's does, for the parts that
# matter to exo-deploy. Installs this configuration's exo unit and /etc/exo/release.json,
# reloads systemd, restarts exo only when its unit changed (starts it when it is not
# running), points /run/current-system here (not for boot), and exits 4 when exo failed.
set -euo pipefail
# As NixOS's activation does, set our own PATH: the unit this runs in has only systemd's.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
out=@out@
action=${1:-}
unit=exo.service
etc=/etc/systemd/system

case "$action" in
  switch|boot|test|dry-activate) ;;
  *)
    echo "Usage: $0 [switch|boot|test|dry-activate]" >&2
    echo "" >&2
    echo "switch:       make the configuration the boot default and activate now" >&2
    echo "boot:         make the configuration the boot default" >&2
    echo "test:         activate the configuration, but don't make it the boot default" >&2
    echo "dry-activate: show what would be done if this configuration were activated" >&2
    exit 1
    ;;
esac

mkdir -p /run/nixos
# As switch-to-configuration-ng: the lock is taken without waiting, and a held one ends it with
# errno's code (EWOULDBLOCK, 11).
exec 9>>/run/nixos/switch-to-configuration.lock
if ! flock -n 9; then
  echo "Could not acquire lock" >&2
  exit 11
fi

new_unit=$out/etc/systemd/system/$unit
if [[ -e $etc/$unit ]] && cmp -s "$new_unit" "$etc/$unit"; then changed=; else changed=1; fi
was_installed=; [[ -e $etc/$unit ]] && was_installed=1
# As NixOS's: a unit that is activating (a crash loop waiting to restart, too) counts as
# active, so a changed unit is restarted with its new definition, not left to its next retry.
active=; case "$(systemctl is-active "$unit" || true)" in active|activating|reloading) active=1 ;; esac

if [[ $action == dry-activate ]]; then
  if [[ -n $changed && -n $active ]]; then
    echo "would restart the following units: $unit" >&2
  elif [[ -z $active ]]; then
    echo "would start the following units: $unit" >&2
  fi
  exit 0
fi

if [[ $action == boot ]]; then
  # The sandbox hosts have no boot loader: the system profile, set by nixos-rebuild, is
  # what a reboot would pick.
  exit 0
fi

echo "activating the configuration..." >&2
echo "setting up /etc..." >&2
mkdir -p "$etc/multi-user.target.wants" /etc/exo
ln -sfn "$new_unit" "$etc/$unit"
ln -sfn "$etc/$unit" "$etc/multi-user.target.wants/$unit"
ln -sfn "$out/etc/exo/release.json" /etc/exo/release.json
ln -sfn "$out" /run/current-system.tmp && mv -T /run/current-system.tmp /run/current-system
systemctl daemon-reload

show() { systemctl show "$unit" -p "$1" --value; }
restarts_before=$(show NRestarts)
if [[ -n $changed && -n $active ]]; then
  echo "restarting the following units: $unit" >&2
  systemctl restart "$unit" || true
elif [[ -z $active ]]; then
  if [[ -z $was_installed ]]; then
    echo "the following new units were started: $unit" >&2
  else
    echo "starting the following units: $unit" >&2
  fi
  systemctl start "$unit" || true
fi

# Like NixOS's: a unit that is failed, or waiting to be restarted after a non-zero exit,
# failed to start, whether or not this activation touched it. A crash takes a moment to show,
# so a unit (re)started here is watched briefly; one left alone is looked at once.
failed= first_pid= looks=8
[[ -z $changed && -n $active ]] && looks=1
for ((i = 0; i < looks; i++)); do
  state=$(show ActiveState); sub=$(show SubState); restarts=$(show NRestarts); pid=$(show MainPID)
  [[ -z $first_pid && $pid != 0 ]] && first_pid=$pid
  if [[ $state == failed || $sub == auto-restart ]] || (( restarts > restarts_before )) \
    || [[ -n $first_pid && $pid != 0 && $pid != "$first_pid" ]]; then
    failed=1
    break
  fi
  sleep 0.25
done
if [[ -n $failed ]]; then
  echo "warning: the following units failed: $unit" >&2
  echo "" >&2
  systemctl status --no-pager --full "$unit" >&2 || true
  exit 4
fi
exit 0
