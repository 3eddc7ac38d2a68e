# Helpers shared by tests/deploy/wheel_check.sh and tests/deploy/recipe_check.sh (sourced,
# never run). Needs `python3` (or $PYTHON) and bash.

# free_port: a TCP port free on loopback right now
free_port() {
  "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until SECONDS PID LOG COMMAND...: run COMMAND (quietly) every 0.2 s until it succeeds.
# Gives up, showing the end of LOG, when the process PID has exited (PID "" or 0: none to
# watch) or SECONDS have passed.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )) pid=$2 log=$3
  shift 3
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && [ "$pid" != 0 ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "!! process $pid exited while waiting for: $*" >&2
      [ -f "$log" ] && tail -40 "$log" >&2
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "!! timed out waiting for: $*" >&2
      [ -f "$log" ] && tail -40 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}
