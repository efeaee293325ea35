#!/usr/bin/env bash
# Start or stop a private Docker Engine for sinq's Docker sandbox (no registry, no bridge network needed).
#   scripts/dockerd.sh start DIR   -> prints "export DOCKER_HOST=unix://DIR/docker.sock"; PID in DIR/docker.pid
#   scripts/dockerd.sh stop DIR    -> stops that engine by PID
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?state directory}
case "$cmd" in
  start)
    command -v dockerd >/dev/null || { echo "dockerd missing: apt-get install docker.io" >&2; exit 1; }
    mkdir -p "$dir"
    dockerd --bridge=none --iptables=false --ip-forward=false \
      --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
      -H "unix://$dir/docker.sock" >"$dir/dockerd.log" 2>&1 </dev/null &
    echo $! >"$dir/dockerd.launcher.pid"
    for _ in $(seq 1 60); do
      if docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; then
        echo "export DOCKER_HOST=unix://$dir/docker.sock"
        exit 0
      fi
      sleep 1
    done
    echo "dockerd did not come up; log:" >&2
    tail -20 "$dir/dockerd.log" >&2
    exit 1
    ;;
  stop)
    pid=$(cat "$dir/docker.pid" 2>/dev/null || cat "$dir/dockerd.launcher.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
