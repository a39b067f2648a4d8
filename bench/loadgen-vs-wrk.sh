#!/usr/bin/env bash
# bench/loadgen-vs-wrk.sh: is raftdrill's load generator the bottleneck? (issue 15)
#
# Starts one reference node (memory store), seeds the key the workload reads, and measures on the
# same endpoint with the same connection count, back to back: wrk, `raftdrill load --engine tasks`
# and `raftdrill load --engine goose` (workload c, stale reads of one key, closed loop, one user
# per connection). Rounds alternate the tools (wrk, tasks, goose, wrk, ...) so that a neighbour's
# build slows all of them alike; the table gives each tool's median, lowest and highest rate, the
# ratio of the medians to wrk's, and CPU time per request of the tool itself and of the node (the
# robust figure on a shared machine: a busy neighbour moves the rates far more than these).
# Then each engine runs once with MEM_USERS users (default 1000; 0 skips) and its peak RSS is
# printed.
#
# Usage (from anywhere; builds the release binary when it is missing):
#   bench/loadgen-vs-wrk.sh
#   CONNS=32 DURATION=15 ROUNDS=3 MEM_USERS=1000 RAFTDRILL=path/to/raftdrill bench/loadgen-vs-wrk.sh
# Skips (exit 0) with a message when wrk is not installed (`apt-get install wrk`). Needs curl and
# jq; /usr/bin/time (Debian's `time`) for the CPU and memory figures.
set -euo pipefail

CONNS=${CONNS:-32}
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
MEM_USERS=${MEM_USERS:-1000}
ENGINES=${ENGINES:-"tasks goose"}

if ! command -v wrk >/dev/null 2>&1; then
    echo "loadgen-vs-wrk: skipped: wrk is not installed (apt-get install wrk)"
    exit 0
fi
for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || { echo "loadgen-vs-wrk: needs $tool" >&2; exit 2; }
done
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "loadgen-vs-wrk: no /usr/bin/time (apt-get install time): no CPU or memory figures" >&2; TIME=; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RAFTDRILL=${RAFTDRILL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/raftdrill}
if [[ ! -x $RAFTDRILL ]]; then
    echo "building $RAFTDRILL (release)" >&2
    (cd "$ROOT" && cargo build --release -p drills)
fi

WORK=$(mktemp -d)
NODE_PID=
cleanup() {
    if [[ -n $NODE_PID ]]; then
        kill "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A port nothing listens on (a race with another program is possible; the health wait catches it).
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Hltn "sport = :$p") ]]; then
            echo "$p"
            return
        fi
    done
    echo "no free port" >&2
    exit 4
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$RAFTDRILL" node --id 1 --listen "127.0.0.1:$PORT" --initial-members 1 \
    --store memory --data-dir "$WORK/node" >"$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 200); do
    if [[ $(curl -fsS "$URL/status" 2>/dev/null | jq -r '.leader // empty') == 1 ]]; then
        break
    fi
    sleep 0.1
done
[[ $(curl -fsS "$URL/status" | jq -r '.leader // empty') == 1 ]] || {
    echo "the node did not become leader; log:" >&2
    cat "$WORK/node.log" >&2
    exit 4
}

# The workload with `--keys 1` reads key id 0; wrk reads `hot`. Both hold the same 256-byte value,
# so both tools get the same answer, byte for byte in size.
VALUE=$(head -c 256 /dev/zero | tr '\0' v)
for key in hot k0000000000; do
    curl -fsS -X PUT "$URL/kv/$key" -d "{\"value\":\"$VALUE\"}" >/dev/null
done

# The node's CPU time so far, in clock ticks.
node_ticks() { awk '{ print $14 + $15 }' "/proc/$NODE_PID/stat"; }
TICK=$(getconf CLK_TCK)

# Runs "$@" (under /usr/bin/time when there is one); leaves user+sys seconds and peak RSS in
# $WORK/time.txt.
timed() {
    if [[ -n $TIME ]]; then
        "$TIME" -f "%U %S %M" -o "$WORK/time.txt" "$@"
    else
        echo "0 0 0" >"$WORK/time.txt"
        "$@"
    fi
}

# Prints "rate requests": wrk's requests per second and count.
run_wrk() {
    timed wrk -t2 -c"$CONNS" -d"${DURATION}s" "$URL/kv/hot?consistency=stale" >"$WORK/wrk.txt"
    echo "$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.txt") $(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")"
}

# Prints "rate operations" of a load run; $1 = engine, $2 = users, $3 = duration (s).
run_load() {
    local engine=$1 users=$2 secs=$3 out=$WORK/load-$1
    rm -rf "$out"
    timed "$RAFTDRILL" load --endpoints "$URL" --engine "$engine" --workload c --consistency stale \
        --keys 1 --users "$users" --duration "${secs}s" --no-tui --out "$out" \
        >"$WORK/load.txt" 2>&1 || { cat "$WORK/load.txt" >&2; return 1; }
    echo "$(jq -r '.totals.tps' "$out/summary.json") $(jq -r '.totals.ops' "$out/summary.json")"
}

declare -A RATE TOOL_US NODE_US
TOOLS="wrk $ENGINES"
echo "one node at $URL; $CONNS connections, ${DURATION}s per run, $ROUNDS rounds; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    for tool in $TOOLS; do
        before=$(node_ticks)
        if [[ $tool == wrk ]]; then
            read -r rate n < <(run_wrk)
        else
            read -r rate n < <(run_load "$tool" "$CONNS" "$DURATION")
        fi
        [[ -n ${n:-} && $n != null ]] || { echo "loadgen-vs-wrk: $tool measured nothing" >&2; exit 4; }
        node=$(awk -v a="$before" -v b="$(node_ticks)" -v t="$TICK" -v n="$n" 'BEGIN { print (b - a) / t * 1e6 / n }')
        read -r user sys _ <"$WORK/time.txt"
        mine=$(awk -v u="$user" -v s="$sys" -v n="$n" 'BEGIN { print (u + s) * 1e6 / n }')
        RATE[$tool]="${RATE[$tool]:-} $rate"
        TOOL_US[$tool]="${TOOL_US[$tool]:-} $mine"
        NODE_US[$tool]="${NODE_US[$tool]:-} $node"
        printf 'round %d  %-6s %9.0f req/s  tool %5.2f µs/req  node %5.2f µs/req  (load average %s)\n' \
            "$round" "$tool" "$rate" "$mine" "$node" "$(cut -d' ' -f1 /proc/loadavg)"
    done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
lowest() { tr ' ' '\n' | sed '/^$/d' | sort -g | head -1; }
highest() { tr ' ' '\n' | sed '/^$/d' | sort -g | tail -1; }

WRK_MED=$(echo "${RATE[wrk]}" | median)
echo
printf '%-7s %10s %10s %10s %7s %13s %13s\n' tool "median/s" "min/s" "max/s" "x wrk" "tool µs/req" "node µs/req"
for tool in $TOOLS; do
    med=$(echo "${RATE[$tool]}" | median)
    printf '%-7s %10.0f %10.0f %10.0f %7.2f %13.2f %13.2f\n' "$tool" "$med" \
        "$(echo "${RATE[$tool]}" | lowest)" "$(echo "${RATE[$tool]}" | highest)" \
        "$(awk -v a="$med" -v b="$WRK_MED" 'BEGIN { print a / b }')" \
        "$(echo "${TOOL_US[$tool]}" | median)" "$(echo "${NODE_US[$tool]}" | median)"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ $MEM_USERS -gt 0 && -n $TIME ]]; then
    echo
    printf '%-7s %8s %12s %12s\n' engine users "ops/s" "peak RSS MB"
    for engine in $ENGINES; do
        read -r rate n < <(run_load "$engine" "$MEM_USERS" 10)
        [[ -n ${n:-} && $n != null ]] || { echo "loadgen-vs-wrk: $engine measured nothing" >&2; exit 4; }
        read -r _ _ kb <"$WORK/time.txt"
        printf '%-7s %8d %12.0f %12.1f\n' "$engine" "$MEM_USERS" "$rate" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
    done
fi
