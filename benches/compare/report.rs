//! Merges the run files of one `compare.sh` run into one table, checks the targets, and
//! writes the JSON list (`target/bench-compare.json` by default).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::workload::Res;

const FLOOR: &str = "floor";
const PEER: &str = "tower-sessions-sqlx-store";
const OURS: &str = "sequelstore";
/// The lean floor's api name: its own three-column table (`lean.rs`), the one the ratios use.
const LEAN: &str = "lean";
/// The floor on the `ConnectSession` table, beside it: the gap between the two is the table.
const SHAPED: &str = "sqlx";

/// One store, API, backend, concurrency and operation, over all rounds.
#[derive(Debug, Default, Clone)]
struct Cell {
    ops_per_s: Vec<f64>,
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
    peak_kib: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

type Key = (String, usize, String, String, String); // backend, concurrency, op, store, api

fn order_of(op: &str) -> usize {
    [
        "create",
        "load",
        "update",
        "touch",
        "load_touch",
        "destroy",
        "sweep",
    ]
    .iter()
    .position(|o| *o == op)
    .unwrap_or(99)
}

fn store_order(store: &str, api: &str) -> usize {
    match (store, api) {
        (OURS, "native") => 0,
        (OURS, _) => 1,
        (FLOOR, LEAN) => 2,
        (FLOOR, _) => 3,
        _ => 4,
    }
}

/// `report [--json FILE] FILE...`
pub(crate) fn report(rest: &[String]) -> Res<()> {
    let mut json_out = "target/bench-compare.json".to_owned();
    let mut files = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if a == "--json" {
            json_out = it.next().ok_or("--json needs a file")?.clone();
        } else {
            files.push(a.clone());
        }
    }
    let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
    // backend, store, api -> rows stored -> rss KiB (all rounds)
    let mut memory: BTreeMap<(String, String, String), BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for f in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(f)?)?;
        let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        let (store, api, backend) = (s("store"), s("api"), s("backend"));
        for r in v["results"].as_array().into_iter().flatten() {
            let key = (
                backend.clone(),
                r["concurrency"].as_u64().unwrap_or(0) as usize,
                r["op"].as_str().unwrap_or("").to_owned(),
                store.clone(),
                api.clone(),
            );
            let c = cells.entry(key).or_default();
            c.ops_per_s
                .push(r["ops_per_s"].as_f64().unwrap_or(f64::NAN));
            c.p50_us.push(r["p50_us"].as_f64().unwrap_or(f64::NAN));
            c.p99_us.push(r["p99_us"].as_f64().unwrap_or(f64::NAN));
            c.peak_kib.push(r["peak_kib"].as_f64().unwrap_or(f64::NAN));
        }
        let m = memory
            .entry((backend.clone(), store.clone(), api.clone()))
            .or_default();
        for p in v["memory"].as_array().into_iter().flatten() {
            m.entry(p["rows"].as_u64().unwrap_or(0))
                .or_default()
                .push(p["rss_kib"].as_f64().unwrap_or(f64::NAN));
        }
    }

    let ops = |k: &Key| cells.get(k).map(|c| median(&c.ops_per_s));
    let mut keys: Vec<&Key> = cells.keys().collect();
    keys.sort_by_key(|k| {
        (
            backend_order(&k.0),
            k.1,
            order_of(&k.2),
            store_order(&k.3, &k.4),
        )
    });

    let mut list = Vec::new();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| backend | c | op | store | api | ops/s | x floor | x shaped floor | x peer | p50 us | p99 us | peak MiB |"
    );
    let _ = writeln!(table, "|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|");
    for k in &keys {
        let c = &cells[*k];
        let here = median(&c.ops_per_s);
        let floor = ops(&(k.0.clone(), k.1, k.2.clone(), FLOOR.into(), LEAN.into()));
        let shaped = ops(&(k.0.clone(), k.1, k.2.clone(), FLOOR.into(), SHAPED.into()));
        let peer = ops(&(
            k.0.clone(),
            k.1,
            k.2.clone(),
            PEER.into(),
            "tower-sessions-0.14".into(),
        ));
        let ratio = |base: Option<f64>| base.filter(|b| *b > 0.0).map(|b| here / b);
        let (rf, rs, rp) = (ratio(floor), ratio(shaped), ratio(peer));
        let (p50, p99, peak) = (median(&c.p50_us), median(&c.p99_us), median(&c.peak_kib));
        let fmt_ratio = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}"));
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.0} | {:.0} | {:.1} |",
            k.0,
            k.1,
            k.2,
            k.3,
            k.4,
            here,
            fmt_ratio(rf),
            fmt_ratio(rs),
            fmt_ratio(rp),
            p50,
            p99,
            peak / 1024.0
        );
        list.push(json!({
            "store": k.3, "api": k.4, "backend": k.0, "concurrency": k.1, "op": k.2,
            "ops_per_s": here, "p50_us": p50, "p99_us": p99,
            "ratio_to_floor": rf, "ratio_to_shaped_floor": rs, "ratio_to_peer": rp,
            "peak_kib": peak, "rounds": c.ops_per_s.len(),
        }));
    }
    println!("{table}");

    println!("Resident memory (MiB) by rows stored, after the workload (memory probe):\n");
    let mut header_rows: Vec<u64> = Vec::new();
    for m in memory.values() {
        for r in m.keys() {
            if !header_rows.contains(r) {
                header_rows.push(*r);
            }
        }
    }
    header_rows.sort_unstable();
    let mut mem = String::from("| backend | store | api |");
    for r in &header_rows {
        let _ = write!(mem, " {r} rows |");
    }
    mem.push('\n');
    mem.push_str("|---|---|---|");
    for _ in &header_rows {
        mem.push_str("--:|");
    }
    mem.push('\n');
    let mut mem_keys: Vec<_> = memory.keys().collect();
    mem_keys.sort_by_key(|k| (backend_order(&k.0), store_order(&k.1, &k.2)));
    for k in mem_keys {
        let _ = write!(mem, "| {} | {} | {} |", k.0, k.1, k.2);
        for r in &header_rows {
            match memory[k].get(r) {
                Some(v) => {
                    let _ = write!(mem, " {:.1} |", median(v) / 1024.0);
                }
                None => mem.push_str(" - |"),
            }
        }
        mem.push('\n');
    }
    println!("{mem}");

    println!("Targets:\n");
    for line in targets(&list) {
        println!("{line}");
    }

    if let Some(dir) = std::path::Path::new(&json_out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_out, serde_json::to_vec_pretty(&Value::Array(list))?)?;
    println!("\nwrote {json_out}");
    Ok(())
}

fn backend_order(b: &str) -> usize {
    match b {
        "sqlite" => 0,
        "postgres" => 1,
        _ => 2,
    }
}

/// The targets, as MET / MISSED lines for every op where both sides were measured.
fn targets(list: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let mut missed = 0;
    let mut met = 0;
    for v in list {
        if v["store"] != OURS {
            continue;
        }
        let (backend, c, op, api) = (
            v["backend"].as_str().unwrap_or(""),
            v["concurrency"].as_u64().unwrap_or(0),
            v["op"].as_str().unwrap_or(""),
            v["api"].as_str().unwrap_or(""),
        );
        let label = format!("{backend} c={c} {op} ({api})");
        let mut check = |what: &str, r: Option<f64>, want: f64| {
            if let Some(r) = r {
                if r >= want {
                    met += 1;
                } else {
                    missed += 1;
                    out.push(format!(
                        "MISSED {label}: {what} {r:.2}x, target {want}x ({:.0}% short)",
                        (1.0 - r / want) * 100.0
                    ));
                }
            }
        };
        let rf = v["ratio_to_floor"].as_f64();
        let rp = v["ratio_to_peer"].as_f64();
        // Issue 13, part 2: cached loads of hot sessions at 10x the floor at 16 tasks on
        // PostgreSQL. The cache's writes pay a NOTIFY more, by design: no target.
        if api == "cached" {
            if op == "load" && c == 16 && backend == "postgres" {
                check("cached load vs floor", rf, 10.0);
            }
            continue;
        }
        // Issue 14: a table with the user column stays within 10% of the plain one.
        if api == "users" {
            let native = list.iter().find(|n| {
                n["store"] == OURS
                    && n["api"] == "native"
                    && n["backend"] == backend
                    && n["concurrency"].as_u64() == Some(c)
                    && n["op"] == op
            });
            let r = native
                .and_then(|n| n["ops_per_s"].as_f64())
                .zip(v["ops_per_s"].as_f64())
                .filter(|(n, _)| *n > 0.0)
                .map(|(n, u)| u / n);
            check("with users vs without", r, 0.9);
            continue;
        }
        // tower-sessions has no touch: its touch and load_touch save the whole record, against
        // the floor's one-column UPDATE. Not like for like; compared with the peer only.
        let like_for_like = api == "native" || !matches!(op, "touch" | "load_touch");
        // Issue 13: loads at the lean floor or better; MariaDB's touch and update at 0.95x.
        let want = match (op, backend) {
            ("load", _) => 1.0,
            ("touch" | "update", "mysql") => 0.95,
            _ => 0.9,
        };
        if like_for_like {
            check("vs floor", rf, want);
        }
        check("vs peer", rp, if op == "create" { 1.5 } else { 1.0 });
        if api == "native" && op == "load_touch" && c == 16 && backend != "mysql" {
            check("get_and_touch vs floor's load-then-touch", rf, 1.6);
        }
    }
    out.insert(0, format!("{met} throughput targets met, {missed} missed"));
    out
}
