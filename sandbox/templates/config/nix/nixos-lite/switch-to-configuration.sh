#!/bin/bash
# switch-to-configuration for the sandbox hosts: what NixOS's switch-to-configuration-ng does
# with this configuration's units and /etc files, for the parts that matter to exo-deploy.
# Links the units (and their TARGET.wants links) and /etc files, applies the tmpfiles rules,
# reloads systemd, stops units that are gone, restarts changed active units (not those with
# X-RestartIfChanged=false), starts wanted units that are not running, points
# /run/current-system here (not for boot), makes it the boot default (switch, boot), and exits
# 4 when a unit failed.
set -euo pipefail
# As NixOS's activation does, set our own PATH: the unit this runs in has only systemd's.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
out=@out@
action=${1:-}
etc=/etc/systemd/system
new_dir=$out/etc/systemd/system

case "$action" in
  check|switch|boot|test|dry-activate) ;;
  *)
    echo "Usage: $0 [check|switch|boot|test|dry-activate]" >&2
    echo "" >&2
    echo "check:        run pre-switch checks and exit" >&2
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

# As switch-to-configuration-ng, for every action: the system's pre-switch checks, with the new
# system and the action, unless NIXOS_NO_CHECK is exactly 1.
if [[ ${NIXOS_NO_CHECK:-} != 1 ]] && ! @preSwitchCheck@ "$out" "$action"; then
  echo "Pre-switch checks failed" >&2
  exit 1
fi
[[ $action == check ]] && exit 0

# The units of a configuration: the files of its units folder (not the TARGET.wants folders).
units_of() { if [[ -d $1 ]]; then find "$1" -mindepth 1 -maxdepth 1 ! -type d -printf '%f\n' | sort; fi; }
old_dir=
if old=$(readlink -e /run/current-system) && [[ -d $old/etc/systemd/system ]]; then old_dir=$old/etc/systemd/system; fi
mapfile -t new_units < <(units_of "$new_dir")
mapfile -t old_units < <(units_of "$old_dir")
is_new_unit() { local u; for u in "${new_units[@]}"; do [[ $u == "$1" ]] && return 0; done; return 1; }
is_active() { case "$(systemctl is-active "$1" || true)" in active|activating|reloading) return 0 ;; esac; return 1; }
# wanted at boot: linked from a target's .wants folder
is_wanted() { compgen -G "$new_dir/*.wants/$1" >/dev/null; }
no_restart() { grep -qx 'X-RestartIfChanged=false' "$new_dir/$1"; }

# a removed unit that says X-StopOnRemoval=false in its [Unit] section is left running, as
# NixOS's does (a unit that runs the switch itself, such as a pull, must outlive it)
stays_on_removal() { grep -qx 'X-StopOnRemoval=false' "$old_dir/$1"; }

to_stop=() to_restart=() to_start=() started_new=()
for u in "${old_units[@]}"; do
  is_new_unit "$u" || stays_on_removal "$u" || { is_active "$u" && to_stop+=("$u"); }
done
for u in "${new_units[@]}"; do
  installed=; [[ -e $etc/$u ]] && installed=1
  if [[ -n $installed ]] && cmp -s "$new_dir/$u" "$etc/$u"; then changed=; else changed=1; fi
  # As NixOS's: a unit that is activating (a crash loop waiting to restart, too) counts as
  # active, so a changed unit is restarted with its new definition, not left to its next retry.
  if is_active "$u"; then
    [[ -n $changed ]] && ! no_restart "$u" && to_restart+=("$u")
  elif is_wanted "$u"; then
    if [[ -z $installed ]]; then started_new+=("$u"); else to_start+=("$u"); fi
  fi
done

# "MESSAGE unit, unit" as NixOS's, nothing for no units
say() {
  local message=$1 list
  shift
  (($#)) || return 0
  list=$(printf '%s, ' "$@")
  echo "$message ${list%, }" >&2
}
if [[ $action == dry-activate ]]; then
  say "would stop the following units:" "${to_stop[@]}"
  say "would restart the following units:" "${to_restart[@]}"
  say "would start the following units:" "${to_start[@]}" "${started_new[@]}"
  exit 0
fi

# As switch-to-configuration-ng: switch and boot install the boot loader, whose default entry
# is this system from now on; boot stops there. The sandbox's boot loader is one link, which
# the hosts' stage 2 starts at each boot.
if [[ $action == switch || $action == boot ]]; then
  mkdir -p /boot
  ln -sfn "$out" /boot/default-system.tmp && mv -T /boot/default-system.tmp /boot/default-system
fi
[[ $action == boot ]] && exit 0

# (timers have no NRestarts or MainPID: 0)
show() { local v; v=$(systemctl show "$1" -p "$2" --value); echo "${v:-0}"; }
declare -A restarts_before
for u in "${to_restart[@]}" "${to_start[@]}" "${started_new[@]}"; do restarts_before[$u]=$(show "$u" NRestarts); done

say "stopping the following units:" "${to_stop[@]}"
((${#to_stop[@]})) && { systemctl stop -- "${to_stop[@]}" || true; }

echo "activating the configuration..." >&2
# users and groups, as NixOS's update-users-groups.pl makes them before /etc and tmpfiles:
# missing groups and system users are created (no home, no login), a user's groups updated.
# Unlike NixOS's, users no longer declared are not removed.
while IFS= read -r g; do
  [[ -z $g ]] || getent group "$g" >/dev/null || groupadd --system "$g"
done < "$out/groups"
while IFS=: read -r name group extra; do
  [[ -n $name ]] || continue
  if getent passwd "$name" >/dev/null; then
    usermod -g "$group" -G "$extra" "$name"
  else
    useradd --system --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin -g "$group" ${extra:+-G "$extra"} "$name"
  fi
done < "$out/users"
echo "setting up /etc..." >&2
# units gone from this configuration: their links and TARGET.wants links
for u in "${old_units[@]}"; do
  is_new_unit "$u" && continue
  rm -f "$etc/$u" "$etc"/*.wants/"$u"
done
for u in "${new_units[@]}"; do ln -sfn "$new_dir/$u" "$etc/$u"; done
for w in "$new_dir"/*.wants/*; do
  [[ -e $w ]] || continue
  target=$(basename "$(dirname "$w")")
  mkdir -p "$etc/$target"
  ln -sfn "$etc/$(basename "$w")" "$etc/$target/$(basename "$w")"
done
# this configuration's /etc files (not its units: linked above)
while IFS= read -r f; do
  rel=${f#"$out/etc/"}
  mkdir -p "/etc/$(dirname "$rel")"
  ln -sfn "$(readlink -f "$f")" "/etc/$rel"
done < <(find "$out/etc" -path "$new_dir" -prune -o ! -type d -print)
systemd-tmpfiles --create --remove --exclude-prefix=/dev >/dev/null 2>&1 || echo "warning: systemd-tmpfiles reported errors" >&2
ln -sfn "$out" /run/current-system.tmp && mv -T /run/current-system.tmp /run/current-system
# NixOS's stage 2 links the system it boots as /run/booted-system, as these hosts' stage 2 does
# once they have a boot default; until then they boot Debian, and their first NixOS system
# stands for the one they booted.
[[ -e /run/booted-system ]] || ln -sfn "$out" /run/booted-system
systemctl daemon-reload

# Sandbox only (NixOS's does not retry): systemd in these containers (cgroup v1 under
# systemd-nspawn, several containers' systemd at work at once) sometimes cannot move a unit's
# process into its cgroup, and the unit fails with status 219/CGROUP before it ran at all. Such
# a unit is started again (up to three times, once its cgroup is gone), and said so; its
# restarts are counted from then on. A unit that ran and failed is left failed.
start_unit() {
  local verb=$1 u=$2 retries=0
  until systemctl "$verb" "$u"; do
    { ((++retries <= 3)) && [[ $(show "$u" ExecMainStatus) == 219 ]]; } || return 0
    echo "switch-to-configuration (exo-deploy sandbox): $u could not start (status 219/CGROUP); starting it again" >&2
    systemctl reset-failed "$u" 2>/dev/null || true
    for _ in $(seq 50); do
      [[ -e /sys/fs/cgroup/systemd/system.slice/$u || -e /sys/fs/cgroup/unified/system.slice/$u ]] || break
      sleep 0.1
    done
    restarts_before[$u]=$(show "$u" NRestarts)
    verb=restart
  done
}

say "restarting the following units:" "${to_restart[@]}"
for u in "${to_restart[@]}"; do start_unit restart "$u"; done
say "the following new units were started:" "${started_new[@]}"
say "starting the following units:" "${to_start[@]}"
for u in "${to_start[@]}" "${started_new[@]}"; do start_unit start "$u"; done

# Like NixOS's: a unit that is failed, or waiting to be restarted after a non-zero exit,
# failed, whether or not this activation touched it. A crash takes a moment to show, so units
# (re)started here are watched briefly; the others are looked at once.
touched=("${to_restart[@]}" "${to_start[@]}" "${started_new[@]}")
declare -A first_pid
failed=()
looks=1; ((${#touched[@]})) && looks=8
for ((i = 0; i < looks; i++)); do
  failed=()
  for u in "${new_units[@]}"; do
    state=$(show "$u" ActiveState); sub=$(show "$u" SubState)
    if [[ $state == failed || $sub == auto-restart ]]; then failed+=("$u"); continue; fi
    [[ -n ${restarts_before[$u]+x} ]] || continue
    pid=$(show "$u" MainPID)
    [[ -z ${first_pid[$u]:-} && $pid != 0 ]] && first_pid[$u]=$pid
    if (($(show "$u" NRestarts) > ${restarts_before[$u]:-0})) \
      || [[ -n ${first_pid[$u]:-} && $pid != 0 && $pid != "${first_pid[$u]}" ]]; then
      failed+=("$u")
    fi
  done
  ((${#failed[@]})) && break
  ((i + 1 < looks)) && sleep 0.25
done
if ((${#failed[@]})); then
  say "warning: the following units failed:" "${failed[@]}"
  echo "" >&2
  for u in "${failed[@]}"; do systemctl status --no-pager --full "$u" >&2 || true; done
  exit 4
fi
exit 0
