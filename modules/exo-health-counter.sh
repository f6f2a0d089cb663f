#!/usr/bin/env bash
# exo-health-counter: run the health check command (the arguments: `exo-deploy check --local …`)
# as the health unit's unprivileged user, and count consecutive failures in a state folder.
#
#   healthy            -> counter reset, exit 0
#   usage error (2)    -> exit 2 (a configuration bug: fail loudly, do not touch exo)
#   unhealthy, < N     -> counter + 1, exit 0 (a single blip is recorded in the status file only)
#   unhealthy, >= N    -> ask for a restart of exo at most once per interval (the file
#                         health-restart-requested, acted on by exo-health-act as root once this
#                         has ended; it stamps the restart and clears the counter), then exit 1
#                         so the unit fails and OnFailure= fires
#
# Settings come from the environment (the NixOS module sets them):
#   EXO_HEALTH_STATE_DIR   folder for the counters (the unit's runtime folder)
#   EXO_HEALTH_THRESHOLD   N, consecutive failures before acting (>= 1)
#   EXO_HEALTH_RESTART     1 to restart exo at N failures, 0 to only fail
#   EXO_HEALTH_RESTART_INTERVAL  minimum seconds between two restarts
#   EXO_HEALTH_UNIT        the unit to restart (exo.service), for the messages
set -u

state_dir=${EXO_HEALTH_STATE_DIR:?EXO_HEALTH_STATE_DIR is not set}
threshold=${EXO_HEALTH_THRESHOLD:-3}
restart=${EXO_HEALTH_RESTART:-1}
min_interval=${EXO_HEALTH_RESTART_INTERVAL:-1800}
unit=${EXO_HEALTH_UNIT:-exo.service}
counter=$state_dir/health-failures
last_restart=$state_dir/health-last-restart
restart_request=$state_dir/health-restart-requested

# A missing or garbled counter file counts as 0.
read_int() {
  local v
  v=$(cat "$1" 2>/dev/null) || v=0
  case $v in '' | *[!0-9]*) v=0 ;; esac
  echo "$v"
}

write_atomic() {
  echo "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

if [ $# -eq 0 ]; then
  echo "usage: exo-health-counter CHECK-COMMAND [ARG...]" >&2
  exit 2
fi
mkdir -p "$state_dir"
# Only this run's request counts: one that exo-health-act did not take (systemd could not
# start it) must not restart exo later, when it may be healthy again.
rm -f "$restart_request"

"$@"
rc=$?

if [ "$rc" -eq 0 ]; then
  rm -f "$counter"
  exit 0
fi
if [ "$rc" -eq 2 ]; then
  echo "exo-healthcheck: the check reported a usage error (exit 2); exo left alone" >&2
  exit 2
fi

failures=$(($(read_int "$counter") + 1))
write_atomic "$counter" "$failures"

if [ "$failures" -lt "$threshold" ]; then
  echo "exo-healthcheck: unhealthy ($failures of $threshold consecutive failures before acting)"
  exit 0
fi

if [ "$restart" = 1 ]; then
  now=$(date +%s)
  last=$(read_int "$last_restart")
  if [ $((now - last)) -ge "$min_interval" ]; then
    # exo-health-act restarts exo, then stamps the time and clears the counter: a request it
    # could not take is asked again at the next failed run
    write_atomic "$restart_request" "$failures"
    echo "exo-healthcheck: $failures consecutive failed checks: restarting $unit"
  else
    echo "exo-healthcheck: $failures consecutive failed checks; not restarting $unit, last restart $((now - last))s ago (minimum ${min_interval}s)"
  fi
else
  echo "exo-healthcheck: $failures consecutive failed checks (restarts disabled)"
fi
exit 1
