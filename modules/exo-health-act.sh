#!/usr/bin/env bash
# exo-health-act: the part of the health unit that needs root, run by systemd with full
# privileges after the unprivileged check has ended (ExecStopPost=+): restart exo when the
# counter asked for it, and publish what the check wrote (status file, Prometheus textfile)
# where readers expect it, readable by all.
#
# The check's processes are gone when this runs, so nothing it left in the state folder can
# change under this script; only regular files are read (a symbolic link there is never
# followed), and what they say is never run: the unit to restart comes from the module.
#
# Settings come from the environment (the NixOS module sets them):
#   EXO_HEALTH_STATE_DIR     the check's folder (health-restart-requested, health.json, health.prom)
#   EXO_HEALTH_UNIT          the unit to restart (exo.service)
#   EXO_HEALTH_STATUS_FILE   where health.json is published (optional)
#   EXO_HEALTH_TEXTFILE      where health.prom is published (optional)
set -u

state_dir=${EXO_HEALTH_STATE_DIR:?EXO_HEALTH_STATE_DIR is not set}
unit=${EXO_HEALTH_UNIT:-exo.service}
rc=0

# publish SOURCE DEST: a copy of at most 16 MiB, mode 0644, renamed into place; the source
# is removed so that a check that wrote nothing does not republish an old result.
publish() {
  local src=$1 dst=$2 tmp
  [ -n "$dst" ] || return 0
  if [ -L "$src" ] || { [ -e "$src" ] && [ ! -f "$src" ]; }; then
    echo "exo-healthcheck: $src is not a regular file; not published" >&2
    rm -f -- "$src"
    rc=1
    return
  fi
  [ -f "$src" ] || return 0
  tmp=$dst.tmp.$$
  if head -c 16777216 -- "$src" >"$tmp" && chmod 0644 -- "$tmp" && mv -f -- "$tmp" "$dst"; then
    rm -f -- "$src"
  else
    rm -f -- "$tmp"
    echo "exo-healthcheck: could not publish $dst" >&2
    rc=1
  fi
}

# stamp NAME: this time, in the check's folder; made anew (O_EXCL), never through a link.
stamp() {
  local tmp=$state_dir/$1.tmp
  rm -f -- "$tmp" && (set -C && date +%s >"$tmp") && mv -f -- "$tmp" "$state_dir/$1"
}

request=$state_dir/health-restart-requested
if [ -e "$request" ] || [ -L "$request" ]; then
  rm -f -- "$request"
  # try-restart: a deliberately stopped exo stays stopped; --no-block: exo's readiness wait
  # is not this unit's to wait for. Done: the rate limit starts now, counting starts again.
  if systemctl try-restart --no-block "$unit"; then
    stamp health-last-restart || rc=1
    rm -f -- "$state_dir/health-failures"
  else
    echo "exo-healthcheck: restarting $unit failed" >&2
    rc=1
  fi
fi

publish "$state_dir/health.json" "${EXO_HEALTH_STATUS_FILE:-}"
publish "$state_dir/health.prom" "${EXO_HEALTH_TEXTFILE:-}"
exit $rc
