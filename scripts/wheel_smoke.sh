#!/usr/bin/env bash
# Try examflow as an operator would: build the wheel, install it (not editable) into a fresh
# venv outside the repository, and from an empty directory run `examflow calendar check`
# (the shipped calendar), `examflow up` (until it answers) and `examflow demo` against it.
# Everything listens on 127.0.0.1; PREFECT_HOME and EXAMFLOW_HOME live in the temp directory.
#
#   scripts/wheel_smoke.sh [--keep]     (--keep leaves the temp directory for a look)
#   WHEEL_SMOKE_REF=HEAD scripts/wheel_smoke.sh   (build a commit instead of the files on disk)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d /tmp/examflow-wheel.XXXXXX)
up_pid=""
cleanup() {
  if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
    kill -INT "$up_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$up_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$up_pid" 2>/dev/null || true
  fi
  # anything still running from this temp venv (a server in its own session) is ours: end it
  for proc in /proc/[0-9]*; do
    if (tr '\0' ' ' <"$proc/cmdline") 2>/dev/null | grep -qF "$work/venv/"; then
      echo "stopping leftover ${proc#/proc/}: $(tr '\0' ' ' <"$proc/cmdline")" >&2
      kill -KILL "${proc#/proc/}" 2>/dev/null || true
    fi
  done
  if [ "${1:-}" != "--keep" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap 'cleanup "${KEEP:-}"' EXIT
[ "${1:-}" = "--keep" ] && KEEP=--keep
step() { echo "== wheel: $*"; }

step "build from the tracked files (the checkout gets no build/)"
mkdir -p "$work/src" "$work/dist" "$work/run"
if [ -n "${WHEEL_SMOKE_REF:-}" ]; then   # a commit, e.g. HEAD: not the files on disk
  git -C "$repo" archive "$WHEEL_SMOKE_REF" | tar -xf - -C "$work/src"
else
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    tar --null -T - --ignore-failed-read -cf -) | tar -xf - -C "$work/src"
fi
"$python" -m venv "$work/venv"
bin=$work/venv/bin
"$bin/python" -m pip install -q --upgrade pip
"$bin/python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
wheel=$(ls "$work/dist"/examflow-*.whl)
for data in examflow/calendars/2024-h1.toml examflow/migrations/script.py.mako \
  notifications/templates/_layout.html examflow/migrations/versions/0001_initial.py; do
  "$bin/python" -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' \
    "$wheel" "$data" || { echo "the wheel lacks $data" >&2; exit 1; }
done
step "install $(basename "$wheel") into a fresh venv"
"$bin/python" -m pip install -q "$wheel"

cd "$work/run"   # empty: nothing here but what examflow writes
export EXAMFLOW_HOME=$work/run/var PREFECT_HOME=$work/run/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
unset PREFECT_API_URL EXAMFLOW_DATABASE_URL EXAMFLOW_SMTP_HOST EXAMFLOW_SMTP_PORT
ports=$("$bin/python" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
read -r prefect_port smtp_port materials_port <<<"$ports"

step "examflow calendar check (the shipped calendar)"
"$bin/examflow" calendar check >calendar.out
grep -q "2024-1" calendar.out || { cat calendar.out; echo "no sitting 2024-1 shown" >&2; exit 1; }

step "examflow up (Prefect on 127.0.0.1:$prefect_port, SMTP :$smtp_port)"
# Its own process group (job control), and SIGINT back to its default: a background job of a
# script inherits SIGINT ignored, and Python then never raises KeyboardInterrupt on Ctrl-C.
set -m
"$bin/python" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$bin/examflow" up --port "$prefect_port" \
  --smtp-port "$smtp_port" --materials-port "$materials_port" >up.log 2>&1 </dev/null &
up_pid=$!
set +m
for _ in $(seq 180); do
  grep -q "serving deployments" up.log && break
  kill -0 "$up_pid" 2>/dev/null || { cat up.log; echo "examflow up exited" >&2; exit 1; }
  sleep 1
done
grep -q "serving deployments" up.log || { cat up.log; echo "examflow up: not up in 180 s" >&2; exit 1; }
"$bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' \
  "http://127.0.0.1:$prefect_port/api/health"

step "examflow demo (against that server and mail sink)"
PREFECT_API_URL=http://127.0.0.1:$prefect_port/api EXAMFLOW_SMTP_HOST=127.0.0.1 \
  EXAMFLOW_SMTP_PORT=$smtp_port EXAMFLOW_SMTP_SECURITY=none COLUMNS=80 \
  timeout 1200 "$bin/examflow" demo >demo.out 2>demo.err || {
  cat demo.out demo.err; echo "examflow demo failed" >&2; exit 1; }
tail -n 3 demo.out
grep -q "checkpoint runs" demo.out || { cat demo.out demo.err; exit 1; }
"$bin/python" -c '
import sys
from rich.cells import cell_len
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
# a link is printed whole, so that it can be clicked: the rest must fit 80 columns
wide = [line for line in lines if cell_len(line) > 80 and "://" not in line]
print(*(f"over 80 columns: {line}" for line in wide), sep="\n") if wide else None
sys.exit(bool(wide))' demo.out
[ -n "$(ls -A var/mail 2>/dev/null)" ] || { echo "the demo sent no mail" >&2; exit 1; }

step "stop examflow up (Ctrl-C)"
kill -INT "$up_pid"   # to examflow up alone: it stops serving, then its own servers
for _ in $(seq 60); do kill -0 "$up_pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$up_pid" 2>/dev/null; then cat up.log; echo "examflow up did not stop" >&2; exit 1; fi
wait "$up_pid" || true
up_pid=""
if "$bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
  "http://127.0.0.1:$prefect_port/api/health" 2>/dev/null; then
  echo "the Prefect server still answers after examflow up stopped" >&2; exit 1
fi
step "ok"
