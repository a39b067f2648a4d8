#!/usr/bin/env bash
# bench/cluster-vs-etcd.sh: the reference cluster against etcd 3.4, same machine, same tool
# (issue 14).
#
# Starts 3 reference nodes (`raftdrill cluster`, disk store, fsync always), drives their leader
# with wrk: PUT of 256-byte values over 10,000 keys, at 1 and at 64 connections; stops them;
# then does the same to 3 etcd members (`raftdrill cluster --target etcd`, etcd's v3 JSON
# gateway, `/v3/kv/put`). Prints one table: writes/s, p50 and p99 per tool and connection count,
# non-2xx answers, and the CPU time of all three nodes per 1,000 writes. It also prints this
# disk's bare 4 KiB fdatasync latency (the floor of a single writer's p50), and for the
# reference cluster where a write's time went, stage by stage (each node's `/admin/stages`,
# reset before each row: see target-cluster/src/stages.rs).
#
# Usage (builds the release binary when it is missing):
#   bench/cluster-vs-etcd.sh
#   DURATION=15 CONNS="1 64" RAFTDRILL=path/to/raftdrill bench/cluster-vs-etcd.sh
# Skips (exit 0) with a message when wrk or etcd is missing (apt-get install wrk etcd-server).
# Needs curl and jq.
set -euo pipefail

DURATION=${DURATION:-15}
CONNS=${CONNS:-"1 64"}

for tool in wrk etcd; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "cluster-vs-etcd: skipped: $tool is not installed (apt-get install wrk etcd-server)"
        exit 0
    fi
done
for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || { echo "cluster-vs-etcd: needs $tool" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RAFTDRILL=${RAFTDRILL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/raftdrill}
if [[ ! -x $RAFTDRILL ]]; then
    echo "building $RAFTDRILL (release)" >&2
    (cd "$ROOT" && cargo build --release -p drills)
fi

WORK=$(mktemp -d)
CLUSTER_PID=
stop_cluster() {
    if [[ -n $CLUSTER_PID ]]; then
        kill -TERM "$CLUSTER_PID" 2>/dev/null || true
        wait "$CLUSTER_PID" 2>/dev/null || true
        CLUSTER_PID=
    fi
}
cleanup() {
    stop_cluster
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# The wrk scripts: a random key of 10,000 per request, a 256-byte value.
cat >"$WORK/reference.lua" <<'LUA'
local value = string.rep("v", 256)
local body = '{"value":"' .. value .. '"}'
local headers = { ["Content-Type"] = "application/json" }
request = function()
    return wrk.format("PUT", string.format("/kv/k%05d", math.random(0, 9999)), headers, body)
end
LUA
cat >"$WORK/etcd.lua" <<'LUA'
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local chars = 4 - (b and 0 or 1) - (c and 0 or 1)
        for j = 1, 4 do
            if j <= chars then
                local k = math.floor(n / 64 ^ (4 - j)) % 64
                out[#out + 1] = alphabet:sub(k + 1, k + 1)
            else
                out[#out + 1] = "="
            end
        end
    end
    return table.concat(out)
end
local value = b64(string.rep("v", 256))
local keys = {}
for i = 0, 9999 do
    keys[i] = b64(string.format("k%05d", i))
end
local headers = { ["Content-Type"] = "application/json" }
request = function()
    local body = '{"key":"' .. keys[math.random(0, 9999)] .. '","value":"' .. value .. '"}'
    return wrk.format("POST", "/v3/kv/put", headers, body)
end
LUA

# CPU ticks (user + system) of the cluster's node processes.
node_ticks() {
    local total=0 pid
    for pid in $(pgrep -P "$CLUSTER_PID"); do
        if [[ -r /proc/$pid/stat ]]; then
            local f
            read -r -a f < <(sed 's/.*) //' "/proc/$pid/stat")
            total=$((total + f[11] + f[12]))
        fi
    done
    echo "$total"
}

# Starts `raftdrill cluster` with the given flags and prints the leader's client URL.
start_cluster() {
    local log=$WORK/cluster.log
    "$RAFTDRILL" cluster --nodes 3 "$@" >"$log" 2>&1 &
    CLUSTER_PID=$!
    local urls=()
    NODE_URLS=()
    for _ in $(seq 300); do
        mapfile -t urls < <(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$log" | sort -u)
        if [[ ${#urls[@]} -ge 3 ]] && grep -qi leader "$log"; then
            break
        fi
        kill -0 "$CLUSTER_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
        sleep 0.1
    done
    LEADER_URL=
    for _ in $(seq 100); do
        for u in "${urls[@]}"; do
            if [[ $TARGET == reference ]]; then
                if [[ $(curl -fsS "$u/status" 2>/dev/null | jq -r .role) == leader ]]; then
                    LEADER_URL=$u
                fi
            else
                local st
                st=$(curl -fsS -X POST "$u/v3/maintenance/status" -d '{}' 2>/dev/null || true)
                if [[ -n $st && $(jq -r '.header.member_id == .leader' <<<"$st") == true ]]; then
                    LEADER_URL=$u
                fi
            fi
        done
        if [[ -n $LEADER_URL ]]; then
            NODE_URLS=("${urls[@]}")
            return 0
        fi
        sleep 0.1
    done
    echo "cluster-vs-etcd: no leader found for $TARGET" >&2
    cat "$log" >&2
    return 1
}

HZ=$(getconf CLK_TCK)
ROWS=()
STAGE_ROWS=()

# The stage table of the reference cluster after a row: the leader's write, log append,
# replication round trip and apply; the followers' AppendEntries handling (the slower one).
stage_rows() {
    local conns=$1 leader follower u
    leader=$(curl -fsS "$LEADER_URL/admin/stages")
    follower='{}'
    for u in "${NODE_URLS[@]}"; do
        [[ $u == "$LEADER_URL" ]] && continue
        local st
        st=$(curl -fsS "$u/admin/stages")
        if [[ $(jq -n --argjson a "$st" --argjson b "$follower" \
            '($a.follower_append.p50_ms // 0) > ($b.follower_append.p50_ms // 0)') == true ]]; then
            follower=$st
        fi
    done
    local row
    for row in "leader write:write" "leader write, to its flush:write_to_flush" \
        "leader write, to its apply:write_to_apply" "leader log_append:log_append" "leader replicate:replicate" \
        "leader replicate_empty:replicate_empty" "leader replicate_wait:replicate_wait" \
        "leader apply:apply"; do
        STAGE_ROWS+=("$(jq -r --arg c "$conns" --arg n "${row%%:*}" --arg k "${row##*:}" \
            '.[$k] // empty | "| \($c) | \($n) | \(.count) | \(.items_per_pass * 10 | round / 10) | \(.p50_ms) | \(.p99_ms) | \(.mean_ms * 1000 | round / 1000) |"' <<<"$leader")")
    done
    for row in "follower follower_append:follower_append" "follower log_append:log_append"; do
        STAGE_ROWS+=("$(jq -r --arg c "$conns" --arg n "${row%%:*}" --arg k "${row##*:}" \
            '.[$k] // empty | "| \($c) | \($n) | \(.count) | \(.items_per_pass * 10 | round / 10) | \(.p50_ms) | \(.p99_ms) | \(.mean_ms * 1000 | round / 1000) |"' <<<"$follower")")
    done
}
run_target() {
    TARGET=$1
    shift
    start_cluster "$@"
    for c in $CONNS; do
        local before after out rate p50 p99 non2xx cpu
        if [[ $TARGET == reference ]]; then
            for u in "${NODE_URLS[@]}"; do curl -fsS "$u/admin/stages?reset=true" >/dev/null; done
        fi
        before=$(node_ticks)
        out=$(wrk -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -d "${DURATION}s" --latency \
            -s "$WORK/$TARGET.lua" "$LEADER_URL")
        after=$(node_ticks)
        [[ $TARGET == reference ]] && stage_rows "$c"
        rate=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
        cpu=$(awk -v t=$((after - before)) -v hz="$HZ" -v r="$rate" -v d="$DURATION" \
            'BEGIN { n = r * d; if (n > 0) printf "%.0f", t / hz * 1000 / n * 1000; else print "-" }')
        ROWS+=("$(printf '| %-9s | %4s | %9.0f | %8s | %8s | %6s | %14s |' \
            "$TARGET" "$c" "$rate" "$p50" "$p99" "${non2xx:-0}" "$cpu")")
    done
    stop_cluster
}

# The floor: a bare 4 KiB write + fdatasync on the disk the data dirs use. dd gives the mean of
# 1000 (outliers included); python3, when present, the median, which is what a p50 compares with.
fsync_floor() {
    local f=$WORK/fsync-probe
    dd if=/dev/zero of="$f" bs=4k count=1000 oflag=dsync 2>&1 |
        awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "mean of 1000 %.3f ms", $(i - 1) }'
    rm -f "$f"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$f" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
took = []
for _ in range(1000):
    t = time.perf_counter()
    os.write(fd, bytes(4096))
    os.fdatasync(fd)
    took.append(time.perf_counter() - t)
os.close(fd)
took.sort()
print(f", median {took[500] * 1000:.3f} ms", end="")
PY
    fi
}

run_target reference --data-dir "$WORK/ref" --fsync always
run_target etcd --target etcd --data-dir "$WORK/etcd"

echo
echo "PUT of 256 B values over 10k keys to the leader, wrk, ${DURATION}s per row, 3 nodes, fsync on"
echo "| store     | conns | writes/s | p50      | p99      | non-2xx | CPU ms / 1k writes |"
echo "|-----------|------:|---------:|---------:|---------:|--------:|-------------------:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "a bare 4 KiB appended write + fdatasync on this disk: $(fsync_floor)"
echo
echo "reference cluster, where the time went (ms; items: entries per pass)"
echo "| conns | stage | passes | items | p50 | p99 | mean |"
echo "|------:|-------|-------:|------:|----:|----:|-----:|"
printf '%s\n' "${STAGE_ROWS[@]}"
