#!/usr/bin/env bash
# sequelstore side by side with hand-written sqlx (the floor) and tower-sessions-sqlx-store 0.15
# (the peer), on SQLite, PostgreSQL and MariaDB/MySQL, in one run.
#
# Run with:  benches/compare.sh --quick        # 1,000 sessions, one round: a minute or two
#            benches/compare.sh                # 10,000 sessions, three alternating rounds
# The store on a table with a user column (`--api users`) and the cached store (`--api cached`)
# run beside the others; on PostgreSQL a staleness run
# follows (10,000 destroys on one instance, each timed until another stops serving it).
# Options:   --rounds N   --sessions N   --backends "sqlite postgres mysql"
#            --sweep-1m   (also sweep 1,000,000 expired rows on PostgreSQL under load; slow)
#            --no-amplification
# Servers:   POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) and MYSQL_URL
#            (default mysql://root@127.0.0.1:3306/test); one that does not answer is skipped
#            with a loud message.
#
# Builds benches/compare (our store through its own API and its tower-sessions adapter, and
# the floor) and benches/peer (its own cargo project and target directory, as sqlx 0.8 and 0.9
# cannot share a build) in release mode; runs every store in a process of its own, alternating
# the order each round; prints one table (medians over rounds) and writes
# target/bench-compare.json.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=""
rounds=""
sessions=()
backends="sqlite postgres mysql"
sweep=""
amplification=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick="--quick" ;;
        --rounds) rounds="$2"; shift ;;
        --sessions) sessions=(--sessions "$2"); shift ;;
        --backends) backends="$2"; shift ;;
        --sweep-1m) sweep=1 ;;
        --no-amplification) amplification="" ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$rounds" ]; then
    if [ -n "$quick" ]; then rounds=1; else rounds=3; fi
fi

features=sqlite,postgres,mysql,tower-sessions,cache
echo "== building benches/compare (release)" >&2
compare=$(cargo bench --bench compare --features "$features" --no-run \
    --message-format=json-render-diagnostics \
    | grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | tail -n 1)
echo "== building benches/peer (release, target/peer-bench)" >&2
cargo build --release --locked --manifest-path benches/peer/Cargo.toml --target-dir target/peer-bench
peer=target/peer-bench/release/sequelstore-peer-bench

out=target/bench-compare-runs
rm -rf "$out"
mkdir -p "$out"
failed=()
ran=()
stores=("sequelstore native" "sequelstore users" "sequelstore tower-sessions" "sequelstore cached" "floor lean" "floor sqlx" "peer tower-sessions-0.14")

for backend in $backends; do
    if ! "$compare" probe --backend "$backend"; then
        continue
    fi
    ran+=("$backend")
    for round in $(seq 1 "$rounds"); do
        # Rotate the order each round, so no store always runs first (or last).
        for i in "${!stores[@]}"; do
            entry=${stores[$(( (i + round - 1) % ${#stores[@]} ))]}
            store=${entry% *}
            api=${entry#* }
            file="$out/$backend-$store-$api-$round.json"
            echo "== $backend round $round/$rounds: $store ($api)" >&2
            if [ "$store" = peer ]; then
                cmd=("$peer" --backend "$backend" $quick "${sessions[@]}" --out "$file")
            else
                cmd=("$compare" run --backend "$backend" --store "$store" --api "$api" \
                    $quick "${sessions[@]}" --out "$file")
            fi
            if ! "${cmd[@]}"; then
                echo "!!! FAILED: $backend $store ($api) round $round" >&2
                failed+=("$backend/$store/$api/$round")
            fi
        done
    done
done

if [ ${#ran[@]} -eq 0 ]; then
    echo "!!! nothing ran" >&2
    exit 1
fi

echo
echo "## sequelstore vs floor (hand-written sqlx on its own lean table; \"shaped\": on the ConnectSession table) vs peer (tower-sessions-sqlx-store 0.15)"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, rounds: $rounds, $( [ -n "$quick" ] && echo quick || echo full)"
echo
"$compare" report --json target/bench-compare.json "$out"/*.json

if [ -n "$amplification" ]; then
    for backend in "${ran[@]}"; do
        "$compare" amplification --backend "$backend" || failed+=("amplification/$backend")
    done
fi

# Issue 13, part 2: how long another instance's cache can return a destroyed session.
for backend in "${ran[@]}"; do
    if [ "$backend" = postgres ]; then
        echo
        "$compare" staleness --backend postgres $quick || failed+=("staleness")
    fi
done

if [ -n "$sweep" ]; then
    if "$compare" probe --backend postgres; then
        "$compare" sweep-1m $quick || failed+=("sweep-1m")
    fi
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "!!! failed: ${failed[*]}" >&2
    exit 1
fi
