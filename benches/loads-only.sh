#!/usr/bin/env bash
# Loads only: each store (sequelstore native and tower-sessions, the lean and the shaped floor,
# the peer) in a process of its own, in rotating order, creating 2,000 sessions and then loading
# them L times at 1 and at 16 tasks; prints the median pass per store and its ratios.
#
# Run with:  benches/compare.sh --quick --backends sqlite   # once, to build both programs
#            R=3 L=12 benches/loads-only.sh                  # 3 rounds of 12 passes
# Options (environment): R rounds, L passes per concurrency, N sessions, BACKENDS, COMPARE (the
# compare program to run, for a build kept from before a change).
set -euo pipefail
cd "$(dirname "$0")/.."
compare=${COMPARE:-$(ls -t target/release/deps/compare-* | grep -v '\.d$' | head -n 1)}
peer=target/peer-bench/release/sequelstore-peer-bench
rounds=${R:-3}
passes=${L:-12}
sessions=${N:-2000}
stores=("sequelstore native" "sequelstore tower-sessions" "floor lean" "floor sqlx" "peer x")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for backend in ${BACKENDS:-sqlite postgres mysql}; do
    for round in $(seq 1 "$rounds"); do
        for i in "${!stores[@]}"; do
            entry=${stores[$(( (i + round - 1) % ${#stores[@]} ))]}
            store=${entry% *}
            api=${entry#* }
            if [ "$store" = peer ]; then
                cmd=("$peer" --backend "$backend" --sessions "$sessions" --loads-only "$passes")
            else
                cmd=("$compare" run --backend "$backend" --store "$store" --api "$api" \
                    --sessions "$sessions" --loads-only "$passes")
            fi
            "${cmd[@]}" 2>&1 | grep ' load ' | sed "s|^|$backend $store/$api |" >> "$out"
        done
    done
done
python3 - "$out" <<'PY'
import collections, re, statistics, sys
passes = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m = re.match(r'(\S+) (\S+) .* c=(\d+)\s+load\s+(\d+) ops/s', line)
    if m:
        backend, store, c, ops = m.groups()
        passes[(backend, int(c), store)].append(int(ops))
stores = ['sequelstore/native', 'sequelstore/tower-sessions', 'floor/lean', 'floor/sqlx', 'peer/x']
print('| backend | c | store | median loads/s | x lean floor | x peer | passes | min | max |')
print('|---|--:|---|--:|--:|--:|--:|--:|--:|')
for backend in ['sqlite', 'postgres', 'mysql']:
    for c in [1, 16]:
        row = {s: v for (b, cc, s), v in passes.items() if b == backend and cc == c}
        if not row:
            continue
        lean = statistics.median(row.get('floor/lean', [1]))
        peer = statistics.median(row.get('peer/x', [1]))
        for s in stores:
            if s in row:
                v = row[s]
                m = statistics.median(v)
                print(f'| {backend} | {c} | {s} | {m:.0f} | {m / lean:.2f} | {m / peer:.2f} | {len(v)} | {min(v)} | {max(v)} |')
PY
