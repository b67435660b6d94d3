#!/usr/bin/env bash
# Service load measurements (see README.md next to this file):
#
#   bash engine/load/run.sh webhook-redis   # alfred webhook → Redis; wrk -t2 -c32 -d15s --latency
#   bash engine/load/run.sh e2e-embedded    # alfred serve, SQLite + SQL queue → fake Graph API
#   bash engine/load/run.sh e2e-pg          # alfred serve, Postgres + Redis → fake Graph API
#   bash engine/load/run.sh e2e-pg-workers  # the same plus 2 extra `alfred worker` processes
#   bash engine/load/run.sh sender-pg       # webhook + worker fill the outbox, then alfred sender drains it
#   bash engine/load/run.sh sender-embedded # the same on the embedded SQLite file + SQL queue
#   bash engine/load/run.sh idle-rss        # alfred serve (embedded), idle: VmRSS / VmHWM
#   bash engine/load/run.sh ready           # exec → first /readyz 200, migrated db, embedded and pg
#
# Needs: release builds of alfred and the fake Graph API (cargo build --release --bin alfred
# --bin fake-graph), wrk, python3, psql, redis-cli.
# Knobs (env): ALFRED_BIN, FAKE_GRAPH_BIN, LOAD_DIR, LOAD_PG (server URL, no database), LOAD_REDIS (a Redis
# *database* the script may clear of its `alfred-*` keys), LOAD_PORT, LOAD_FAKE_PORT, LOAD_N
# (messages per e2e or sender run), LOAD_DURATION (wrk -d), LOAD_RUNS (ready), RUST_LOG.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="${ALFRED_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/alfred}"
# The fake lives in its own dev-only crate (engine/fake-graph): the product binary has no test tool.
FAKE_BIN="${FAKE_GRAPH_BIN:-$(dirname "$BIN")/fake-graph}"
WORK="${LOAD_DIR:-/tmp/alfred-load}"
PG="${LOAD_PG:-postgres://postgres@127.0.0.1:5432}"
# A separate Redis database: the streams keep their production names (alfred-ingest,
# alfred-outbox) without touching what other users of this Redis keep in database 0.
REDIS="${LOAD_REDIS:-redis://127.0.0.1:6379/9}"
PORT="${LOAD_PORT:-18080}"
FAKE_PORT="${LOAD_FAKE_PORT:-18090}"
SECRET="bench-secret"
PHONE_ID="106540352242922"
DURATION="${LOAD_DURATION:-15s}"
export RUST_LOG="${RUST_LOG:-info}"

PIDS=()
DBS=()
USED_REDIS=0
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  # A 15 s webhook run leaves ~400,000 entries (hundreds of MB) in a shared Redis.
  if (( USED_REDIS )); then clear_redis || true; fi
  for d in "${DBS[@]}"; do psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

die() { echo "error: $*" >&2; exit 1; }
note() { echo "# $*"; }
machine() { note "$(date -u +%FT%TZ) nproc=$(nproc) uptime:$(uptime | sed 's/.*load average/ load average/')"; }
now_ms() { date +%s%3N; }

[[ -x "$BIN" ]] || die "no binary at $BIN (cargo build --release --bin alfred, or set ALFRED_BIN)"
[[ -x "$FAKE_BIN" ]] || die "no fake Graph API at $FAKE_BIN (cargo build --release --bin fake-graph, or set FAKE_GRAPH_BIN)"
command -v wrk >/dev/null || die "wrk is not installed"
mkdir -p "$WORK"

rcli() { redis-cli -u "$REDIS" "$@"; }

# The streams and the push-dedup hashes (`{alfred-ingest}:seq`) of this or earlier runs.
clear_redis() { rcli --scan --pattern '*alfred-*' | while read -r k; do rcli DEL "$k" >/dev/null; done; }

fresh_redis() {
  rcli PING >/dev/null || die "Redis at $REDIS does not answer"
  clear_redis
  USED_REDIS=1
}

# A new, empty Postgres database (dropped on exit); prints its URL.
fresh_pg() {
  local name="alfred_load_$(date +%s)_$$_${#DBS[@]}"
  psql -q "$PG/postgres" -c "CREATE DATABASE \"$name\"" >/dev/null || die "cannot CREATE DATABASE on $PG"
  DBS+=("$name")
  DB_URL="$PG/$name"
}

wait_ready() { # url timeout_s
  local deadline=$(( $(date +%s) + ${2:-30} ))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]]; do
    (( $(date +%s) < deadline )) || die "$1 not ready after ${2:-30} s"
    sleep 0.05
  done
}

# Starts a role in the background with the common environment; its pid goes to PIDS.
start() { # logname, then the alfred arguments; env comes from the caller
  local log="$WORK/$1.log"; shift
  ( cd "$RUN_DIR" && exec env ALFRED_LISTEN="127.0.0.1:$PORT" META_APP_SECRET="$SECRET" \
      ALFRED_FLOWS="$ROOT/flows" "$BIN" "$@" ) >"$log" 2>&1 &
  PIDS+=("$!")
  LAST_PID=$!
}

# A fresh working directory: no stray .env, and a fresh embedded database (data/alfred.db).
fresh_run_dir() { RUN_DIR="$WORK/run-$1"; rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR"; }

gen() { python3 "$HERE/gen.py" --count "$1" --secret "$SECRET" --out "$WORK/bodies.tsv" --run-id "$(now_ms)"; }

webhook_redis() {
  fresh_run_dir webhook-redis
  fresh_redis
  fresh_pg
  DATABASE_URL="$DB_URL" REDIS_URL="$REDIS" start webhook webhook
  wait_ready "http://127.0.0.1:$PORT/readyz"
  gen 20000
  local before after
  before=$(rcli XLEN alfred-ingest)
  machine
  note "wrk -t2 -c32 -d$DURATION --latency -s engine/load/webhook.lua http://127.0.0.1:$PORT/webhook"
  BODIES="$WORK/bodies.tsv" wrk -t2 -c32 -d"$DURATION" --latency -s "$HERE/webhook.lua" \
    "http://127.0.0.1:$PORT/webhook" | tee "$WORK/wrk.txt"
  machine
  after=$(rcli XLEN alfred-ingest)
  local total non2xx
  total=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt"); non2xx=${non2xx:-0}
  note "responses=$total non2xx=$non2xx → 200s=$((total - non2xx)); XLEN alfred-ingest $before → $after (+$((after - before)))"
  if (( after - before == total - non2xx )); then
    note "durable: every 200 is an entry in alfred-ingest"
  else
    # wrk counts only responses it read before -d ended; a POST in flight at that moment
    # may be queued without being counted, so the stream can hold up to -c more.
    note "stream grew by $((after - before - total + non2xx)) more than the counted 200s (POSTs in flight when wrk stopped)"
  fi
}

# webhook → worker → sender → fake Graph API: N messages, each answered once.
e2e() { # mode: embedded | pg | pg-workers
  local mode="$1" n="${LOAD_N:-}"
  fresh_run_dir "e2e-$mode"
  "$FAKE_BIN" --addr "127.0.0.1:$FAKE_PORT" >"$WORK/fake.out" 2>"$WORK/fake.err" &
  PIDS+=("$!")
  # ALFRED_PACING=off: the pipeline's capacity is measured, not WhatsApp's rate limits
  # (3 members at Meta's 1 message per 6 s each would measure only the pacing).
  local envs=(WHATSAPP_API_BASE="http://127.0.0.1:$FAKE_PORT" WHATSAPP_TOKEN="fake-graph-token"
              WHATSAPP_PHONE_ID="$PHONE_ID" ALFRED_PACING="${ALFRED_PACING:-off}")
  if [[ "$mode" == embedded ]]; then
    n="${n:-10000}"
    export "${envs[@]}"
    start serve serve
  else
    n="${n:-30000}"
    fresh_redis
    fresh_pg
    export "${envs[@]}" DATABASE_URL="$DB_URL" REDIS_URL="$REDIS"
    start serve serve
    wait_ready "http://127.0.0.1:$PORT/readyz"
    if [[ "$mode" == pg-workers ]]; then
      INSTANCE=alfred-2 start worker2 worker
      INSTANCE=alfred-3 start worker3 worker
    fi
  fi
  wait_ready "http://127.0.0.1:$PORT/readyz"
  gen "$n"
  sleep 1 # let the extra workers join their consumer group before the first entry
  machine
  note "mode=$mode messages=$n: ONCE=1 wrk -t2 -c32 -d600s -s engine/load/webhook.lua (each body exactly once)"
  local t0 t_last wrk_pid
  t0=$(now_ms)
  # A thread that has all its answers stops itself, but wrk's main thread still sleeps
  # for -d: stop it with SIGINT (it then prints its summary) once the last reply is in.
  ONCE=1 BODIES="$WORK/bodies.tsv" wrk -t2 -c32 -d600s --latency -s "$HERE/webhook.lua" \
    "http://127.0.0.1:$PORT/webhook" >"$WORK/wrk.txt" &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  # The fake prints `<unix ms> <requests> <sends>` whenever its counts change.
  local deadline=$(( $(date +%s) + 600 ))
  until awk -v n="$n" '$3 >= n {found=1} END {exit !found}' "$WORK/fake.out"; do
    (( $(date +%s) < deadline )) || die "only $(tail -1 "$WORK/fake.out") replies after 600 s"
    kill -0 "$wrk_pid" 2>/dev/null || die "wrk ended early: $(cat "$WORK/wrk.txt")"
    sleep 0.2
  done
  sleep 1 # the last 200s are on their way back to wrk
  kill -INT "$wrk_pid"; wait "$wrk_pid" || true
  cat "$WORK/wrk.txt"
  grep -q "posts=$n ok=$n other=0" "$WORK/wrk.txt" || die "not every POST got a 200 (see $WORK/wrk.txt)"
  sleep 2 # anything beyond N would be a duplicate reply: give it a moment to show up
  machine
  t_last=$(awk -v n="$n" '$3 >= n {print $1; exit}' "$WORK/fake.out")
  local final; final=$(tail -1 "$WORK/fake.out")
  local secs; secs=$(awk -v a="$t0" -v b="$t_last" 'BEGIN {printf "%.2f", (b - a) / 1000}')
  note "first POST → last reply at the fake: ${secs} s"
  note "fake totals (time requests sends): $final (sends should be $n; the rest are read receipts)"
  note "RESULT e2e-$mode: $(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", n / s}') messages/s sustained (webhook → reply at the fake)"
}

# The sender alone: `alfred webhook` + `alfred worker` fill the outbox (N replies, N read
# receipts) with no sender running; then `alfred sender` starts and drains it. Rate =
# (N - 1) / (first send → N-th send at the fake), so start-up is not counted.
sender_only() { # mode: embedded | pg
  local mode="$1" n="${LOAD_N:-5000}"
  fresh_run_dir "sender-$mode"
  "$FAKE_BIN" --addr "127.0.0.1:$FAKE_PORT" >"$WORK/fake.out" 2>"$WORK/fake.err" &
  PIDS+=("$!")
  export WHATSAPP_API_BASE="http://127.0.0.1:$FAKE_PORT" WHATSAPP_TOKEN="fake-graph-token" \
    WHATSAPP_PHONE_ID="$PHONE_ID" ALFRED_PACING="${ALFRED_PACING:-off}"
  local count_rows
  if [[ "$mode" == pg ]]; then
    fresh_redis
    fresh_pg
    export DATABASE_URL="$DB_URL" REDIS_URL="$REDIS"
    count_rows() { psql -tAq "$DB_URL" -c "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"; }
  else
    (cd "$RUN_DIR" && "$BIN" migrate >/dev/null)
    count_rows() {
      python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
        "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL").fetchone()[0])' "$RUN_DIR/data/alfred.db"
    }
  fi
  start webhook webhook
  wait_ready "http://127.0.0.1:$PORT/readyz"
  start worker worker
  gen "$n"
  sleep 1
  ONCE=1 BODIES="$WORK/bodies.tsv" wrk -t2 -c32 -d600s -s "$HERE/webhook.lua" \
    "http://127.0.0.1:$PORT/webhook" >"$WORK/wrk.txt" &
  local wrk_pid=$!
  PIDS+=("$wrk_pid")
  local deadline=$(( $(date +%s) + 600 ))
  until (( $(count_rows) >= n )); do
    (( $(date +%s) < deadline )) || die "only $(count_rows) outbox rows published after 600 s"
    sleep 0.5
  done
  sleep 1 # the last 200s are on their way back to wrk
  kill -INT "$wrk_pid"; wait "$wrk_pid" || true
  grep -q "posts=$n ok=$n other=0" "$WORK/wrk.txt" || die "not every POST got a 200 (see $WORK/wrk.txt)"
  note "outbox filled: $(count_rows) published rows, no sender running"
  machine
  start sender sender
  deadline=$(( $(date +%s) + 600 ))
  until awk -v n="$n" '$3 >= n {found=1} END {exit !found}' "$WORK/fake.out"; do
    (( $(date +%s) < deadline )) || die "only $(tail -1 "$WORK/fake.out") sends after 600 s"
    sleep 0.2
  done
  sleep 2 # anything beyond N would be a duplicate send
  machine
  local t_first t_last secs
  t_first=$(awk '$3 >= 1 {print $1; exit}' "$WORK/fake.out")
  t_last=$(awk -v n="$n" '$3 >= n {print $1; exit}' "$WORK/fake.out")
  secs=$(awk -v a="$t_first" -v b="$t_last" 'BEGIN {printf "%.2f", (b - a) / 1000}')
  note "first send → send $n at the fake: ${secs} s; fake totals (time requests sends): $(tail -1 "$WORK/fake.out")"
  note "RESULT sender-$mode: $(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", (n - 1) / s}') sends/s (one sender process draining a full outbox; read receipts included)"
}

idle_rss() {
  fresh_run_dir idle-rss
  start serve serve
  wait_ready "http://127.0.0.1:$PORT/readyz"
  sleep 5 # idle: after start-up, with the worker and sender polling their queues
  machine
  note "alfred serve (embedded default, console outbound), idle 5 s after ready:"
  grep -E 'VmRSS|VmHWM|RssAnon|RssFile|Threads' "/proc/$LAST_PID/status"
}

ready() {
  local runs="${LOAD_RUNS:-20}"
  fresh_run_dir ready-embedded
  (cd "$RUN_DIR" && "$BIN" migrate >/dev/null)
  machine
  note "embedded (SQLite + SQL queue), migrated, $runs runs:"
  (cd "$RUN_DIR" && ALFRED_LISTEN="127.0.0.1:$PORT" META_APP_SECRET="$SECRET" ALFRED_FLOWS="$ROOT/flows" \
    python3 "$HERE/ready.py" --runs "$runs" --url "http://127.0.0.1:$PORT/readyz" --log "$WORK/ready-embedded.log" \
    -- "$BIN" serve)
  fresh_run_dir ready-pg
  fresh_redis
  fresh_pg
  (cd "$RUN_DIR" && DATABASE_URL="$DB_URL" "$BIN" migrate >/dev/null)
  machine
  note "Postgres + Redis, migrated, $runs runs:"
  (cd "$RUN_DIR" && DATABASE_URL="$DB_URL" REDIS_URL="$REDIS" ALFRED_LISTEN="127.0.0.1:$PORT" \
    META_APP_SECRET="$SECRET" ALFRED_FLOWS="$ROOT/flows" \
    python3 "$HERE/ready.py" --runs "$runs" --url "http://127.0.0.1:$PORT/readyz" --log "$WORK/ready-pg.log" \
    -- "$BIN" serve)
}

case "${1:-}" in
  webhook-redis) webhook_redis ;;
  e2e-embedded) e2e embedded ;;
  e2e-pg) e2e pg ;;
  e2e-pg-workers) e2e pg-workers ;;
  sender-embedded) sender_only embedded ;;
  sender-pg) sender_only pg ;;
  idle-rss) idle_rss ;;
  ready) ready ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
