//! The comparison workload, written once and compiled into both programs: `benches/compare`
//! (sequelstore and the hand-written sqlx floor) and `benches/peer` (tower-sessions-sqlx-store),
//! so every store runs exactly the same operations in the same order.
//!
//! A store is a [`Driver`]; [`run`] drives it through the phases create, load (random order),
//! update, touch, load_touch and destroy at each concurrency (tasks sharing one pool), then a
//! sweep of N expired rows among N live ones, then a memory probe, and returns one [`Measured`]
//! per phase. Results travel between the programs as JSON ([`to_json`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Res<T> = Result<T, BoxError>;

/// Work run, untimed, just before the timed sweep, the same for every store of a database:
/// on SQLite a `PRAGMA wal_checkpoint(TRUNCATE)`, so that the one timed statement run of the
/// sweep does not also pay (or not) for copying the create phases' log into the database,
/// depending on where the automatic checkpoint happened to fall.
pub(crate) type Settle =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Res<()>> + Send>> + Send + Sync>;

/// One session of the workload: the tower-sessions id, the same id as text (tower-sessions'
/// 22-character base64url form, used by every store) and about 200 bytes of JSON data.
#[derive(Debug, Clone)]
pub(crate) struct Sess {
    pub(crate) id: i128,
    pub(crate) sid: String,
    pub(crate) data: Map<String, Value>,
}

/// A store under test. Every method is one request's worth of work and returns once the
/// database has answered; `load` and `load_touch` decode the data and say whether a live
/// session was found.
pub(crate) trait Driver: Send + Sync + 'static {
    /// Writes a new session expiring in a day.
    fn create(&self, s: &Sess) -> impl Future<Output = Res<()>> + Send;
    /// Writes a session that expired an hour ago (setup for the sweep; not timed).
    fn create_expired(&self, s: &Sess) -> impl Future<Output = Res<()>> + Send;
    /// Reads a session.
    fn load(&self, s: &Sess) -> impl Future<Output = Res<bool>> + Send;
    /// Writes changed data to an existing session.
    fn update(&self, s: &Sess) -> impl Future<Output = Res<()>> + Send;
    /// Slides the expiry of a session to a day from now.
    fn touch(&self, s: &Sess) -> impl Future<Output = Res<()>> + Send;
    /// A request with sliding expiry: read the session and slide its expiry.
    fn load_touch(&self, s: &Sess) -> impl Future<Output = Res<bool>> + Send;
    /// Deletes a session.
    fn destroy(&self, s: &Sess) -> impl Future<Output = Res<()>> + Send;
    /// Deletes every expired session.
    fn sweep(&self) -> impl Future<Output = Res<()>> + Send;
}

/// What a run does.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) sessions: usize,
    pub(crate) concurrencies: Vec<usize>,
    pub(crate) seed: u64,
}

/// One measured phase.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) concurrency: usize,
    pub(crate) op: &'static str,
    pub(crate) ops: usize,
    pub(crate) ops_per_s: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    CreateExpired,
    Load,
    Update,
    Touch,
    LoadTouch,
    Destroy,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::CreateExpired => "create_expired",
            Op::Load => "load",
            Op::Update => "update",
            Op::Touch => "touch",
            Op::LoadTouch => "load_touch",
            Op::Destroy => "destroy",
        }
    }
}

/// A small deterministic generator (splitmix64): the same seed gives every store the same
/// ids, data and order.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// tower-sessions' text form of an id: the 16 little-endian bytes in base64url, unpadded.
pub(crate) fn sid_text(id: i128) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.to_le_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

/// About 200 bytes of JSON, as a signed-in user's session might hold.
pub(crate) fn session_data(rng: &mut Rng, n: usize) -> Map<String, Value> {
    let user = rng.next() % 1_000_000;
    let value = json!({
        "user_id": user,
        "name": format!("user-{user}"),
        "roles": ["reader", "writer"],
        "csrf": format!("{:016x}{:016x}", rng.next(), rng.next()),
        "locale": "en-GB",
        "theme": "dark",
        "cart": [rng.next() % 1000, rng.next() % 1000, rng.next() % 1000],
        "last_path": format!("/account/orders/{n}/details"),
        "visits": n,
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a json object literal"),
    }
}

/// `n` sessions with fresh ids.
pub(crate) fn sessions(n: usize, seed: u64) -> Vec<Sess> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let id = (i128::from(rng.next()) << 64) | i128::from(rng.next());
            Sess {
                id,
                sid: sid_text(id),
                data: session_data(&mut rng, i),
            }
        })
        .collect()
}

/// The same sessions with one field changed, for the update phase.
fn changed(sessions: &[Sess]) -> Vec<Sess> {
    sessions
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.data.insert("theme".into(), json!("light"));
            s
        })
        .collect()
}

async fn call<D: Driver>(d: &D, op: Op, s: &Sess) -> Res<bool> {
    match op {
        Op::Create => d.create(s).await.map(|()| true),
        Op::CreateExpired => d.create_expired(s).await.map(|()| true),
        Op::Load => d.load(s).await,
        Op::Update => d.update(s).await.map(|()| true),
        Op::Touch => d.touch(s).await.map(|()| true),
        Op::LoadTouch => d.load_touch(s).await,
        Op::Destroy => d.destroy(s).await.map(|()| true),
    }
}

/// Runs `op` once on each session in `order`, from `concurrency` tasks that take the next
/// session as they finish one; returns the wall time and each call's latency in nanoseconds.
async fn phase<D: Driver>(
    driver: &Arc<D>,
    op: Op,
    sessions: &Arc<Vec<Sess>>,
    order: Arc<Vec<usize>>,
    concurrency: usize,
) -> Res<(Duration, Vec<u64>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (driver, sessions, order, next) = (
            Arc::clone(driver),
            Arc::clone(sessions),
            Arc::clone(&order),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(order.len() / concurrency + 1);
            let mut missing = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&k) = order.get(i) else { break };
                let t = Instant::now();
                let found = call(&*driver, op, &sessions[k]).await?;
                latencies.push(t.elapsed().as_nanos() as u64);
                missing += usize::from(!found);
            }
            Ok::<_, BoxError>((latencies, missing))
        }));
    }
    let mut all = Vec::with_capacity(order.len());
    let mut missing = 0;
    for task in tasks {
        let (latencies, m) = task.await??;
        all.extend(latencies);
        missing += m;
    }
    let wall = start.elapsed();
    if missing > 0 {
        return Err(format!("{}: {missing} sessions were not found", op.name()).into());
    }
    Ok((wall, all))
}

fn measured(op: &'static str, concurrency: usize, wall: Duration, mut lat: Vec<u64>) -> Measured {
    lat.sort_unstable();
    let pct = |p: usize| {
        if lat.is_empty() {
            0.0
        } else {
            lat[(lat.len() * p / 100).min(lat.len() - 1)] as f64 / 1000.0
        }
    };
    Measured {
        concurrency,
        op,
        ops: lat.len(),
        ops_per_s: lat.len() as f64 / wall.as_secs_f64(),
        p50_us: pct(50),
        p99_us: pct(99),
    }
}

/// How many times each load phase runs; the median run is reported.
const LOAD_REPEATS: usize = 5;

/// Warms the pool (connections opened, statements prepared) on sessions that are not measured.
async fn warm_up<D: Driver>(driver: &Arc<D>, seed: u64) -> Res<()> {
    let warm = Arc::new(sessions(200, seed ^ 0x5eed));
    let order = Arc::new((0..warm.len()).collect::<Vec<_>>());
    for op in [
        Op::Create,
        Op::Load,
        Op::Update,
        Op::Touch,
        Op::LoadTouch,
        Op::Destroy,
    ] {
        phase(driver, op, &warm, Arc::clone(&order), 16).await?;
    }
    Ok(())
}

/// The whole workload on one driver. `progress` is told each phase as it ends.
pub(crate) async fn run<D: Driver>(
    driver: Arc<D>,
    cfg: &Config,
    settle: Option<&Settle>,
    mut progress: impl FnMut(&Measured),
) -> Res<Vec<Measured>> {
    warm_up(&driver, cfg.seed).await?;
    let mut out = Vec::new();
    for (round, &c) in cfg.concurrencies.iter().enumerate() {
        let seed = cfg.seed.wrapping_add(round as u64 * 1_000_003);
        let base = Arc::new(sessions(cfg.sessions, seed));
        let updated = Arc::new(changed(&base));
        let in_order = Arc::new((0..base.len()).collect::<Vec<_>>());
        let mut shuffled: Vec<usize> = (0..base.len()).collect();
        Rng::new(seed ^ 0xface).shuffle(&mut shuffled);
        let random = Arc::new(shuffled);
        let steps = [
            (Op::Create, &base, &in_order),
            (Op::Load, &base, &random),
            (Op::Update, &updated, &random),
            (Op::Touch, &updated, &random),
            (Op::LoadTouch, &updated, &random),
            (Op::Destroy, &updated, &random),
        ];
        for (op, sessions, order) in steps {
            // A load changes nothing, so it is measured LOAD_REPEATS times and the median run
            // kept: one pass over 2,000 sessions takes a tenth of a second, and at one task a
            // pass lands in one of two modes (whether the threads a call wakes are parked on the
            // other core), which one pass per round turned into a coin toss per store.
            let repeats = if matches!(op, Op::Load) {
                LOAD_REPEATS
            } else {
                1
            };
            let mut runs = Vec::with_capacity(repeats);
            for _ in 0..repeats {
                let (wall, lat) = phase(&driver, op, sessions, Arc::clone(order), c).await?;
                runs.push(measured(op.name(), c, wall, lat));
            }
            runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
            let m = runs.swap_remove(runs.len() / 2);
            progress(&m);
            out.push(m);
        }
    }

    // The sweep: N expired rows among N live ones, made untimed; one sweep timed.
    let n = cfg.sessions;
    let live = Arc::new(sessions(n, cfg.seed ^ 0x11fe));
    let dead = Arc::new(sessions(n, cfg.seed ^ 0xdead));
    let all = Arc::new((0..n).collect::<Vec<_>>());
    phase(&driver, Op::Create, &live, Arc::clone(&all), 16).await?;
    phase(&driver, Op::CreateExpired, &dead, Arc::clone(&all), 16).await?;
    if let Some(settle) = settle {
        settle().await?;
    }
    let t = Instant::now();
    driver.sweep().await?;
    let wall = t.elapsed();
    let mut m = measured("sweep", 1, wall, vec![wall.as_nanos() as u64]);
    // Rows removed per second; the latency columns hold the one sweep's duration.
    m.ops = n;
    m.ops_per_s = n as f64 / wall.as_secs_f64();
    progress(&m);
    out.push(m);
    // Every live session is still there, every expired one gone.
    phase(&driver, Op::Load, &live, Arc::clone(&all), 16).await?;
    let sample = Arc::new((0..n.min(100)).collect::<Vec<_>>());
    let (_, _) = phase(&driver, Op::Destroy, &dead, sample, 16).await?;
    phase(&driver, Op::Destroy, &live, all, 16).await?;
    Ok(out)
}

/// Memory against rows stored: writes `steps` batches of `batch` sessions (ids made on the fly,
/// nothing kept by the program) and reads the resident set size after each batch.
pub(crate) async fn memory_probe<D: Driver>(
    driver: Arc<D>,
    batch: usize,
    steps: usize,
    seed: u64,
) -> Res<Vec<(usize, u64)>> {
    let mut points = Vec::with_capacity(steps + 1);
    points.push((0, rss_kib()));
    for step in 0..steps {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (driver, next) = (Arc::clone(&driver), Arc::clone(&next));
            let seed = seed.wrapping_add(step as u64 * 7919);
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng::new(seed);
                let data = session_data(&mut rng, 0);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= batch {
                        return Ok::<_, BoxError>(());
                    }
                    let id = (i128::from(seed) << 64) | i as i128;
                    let s = Sess {
                        id,
                        sid: sid_text(id),
                        data: data.clone(),
                    };
                    driver.create(&s).await?;
                    // Read some back, so that caches on the read path fill as well.
                    if i % 4 == 0 {
                        driver.load(&s).await?;
                    }
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        points.push(((step + 1) * batch, rss_kib()));
    }
    Ok(points)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The process's peak resident set size so far (VmHWM), in KiB; 0 where /proc is missing.
pub(crate) fn peak_kib() -> u64 {
    status_kib("VmHWM:")
}

/// The process's resident set size now (VmRSS), in KiB.
pub(crate) fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// The results of one program run as JSON: one object per phase, plus the memory probe.
pub(crate) fn to_json(
    store: &str,
    api: &str,
    backend: &str,
    results: &[Measured],
    memory: &[(usize, u64)],
) -> Value {
    let peak = peak_kib();
    let rows: Vec<Value> = results
        .iter()
        .map(|m| {
            json!({
                "store": store, "api": api, "backend": backend,
                "concurrency": m.concurrency, "op": m.op, "ops": m.ops,
                "ops_per_s": m.ops_per_s, "p50_us": m.p50_us, "p99_us": m.p99_us,
                "peak_kib": peak,
            })
        })
        .collect();
    let memory: Vec<Value> = memory
        .iter()
        .map(|(rows, kib)| json!({"rows": rows, "rss_kib": kib}))
        .collect();
    json!({
        "store": store, "api": api, "backend": backend,
        "results": rows, "memory": memory, "peak_kib": peak,
    })
}

/// Creates the sessions, then runs the load phase `rounds` times at each concurrency.
async fn loads_only<D: Driver>(
    driver: &Arc<D>,
    cfg: &Config,
    rounds: usize,
    label: &str,
) -> Res<()> {
    warm_up(driver, cfg.seed).await?;
    let base = Arc::new(sessions(cfg.sessions, cfg.seed));
    let in_order = Arc::new((0..base.len()).collect::<Vec<_>>());
    let mut shuffled: Vec<usize> = (0..base.len()).collect();
    Rng::new(cfg.seed ^ 0xface).shuffle(&mut shuffled);
    let random = Arc::new(shuffled);
    phase(driver, Op::Create, &base, Arc::clone(&in_order), 16).await?;
    for &c in &cfg.concurrencies {
        for _ in 0..rounds {
            let (wall, lat) = phase(driver, Op::Load, &base, Arc::clone(&random), c).await?;
            let m = measured(Op::Load.name(), c, wall, lat);
            eprintln!(
                "  {label:<40} c={c:<2} load {:>9.0} ops/s  p50 {:>8.1} us",
                m.ops_per_s, m.p50_us
            );
        }
    }
    phase(driver, Op::Destroy, &base, in_order, 16).await?;
    Ok(())
}

/// Command-line options both programs take.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) backend: String,
    pub(crate) store: String,
    pub(crate) api: String,
    pub(crate) out: Option<String>,
    pub(crate) quick: bool,
    pub(crate) sessions: Option<usize>,
    pub(crate) pool: u32,
    pub(crate) seed: u64,
    /// `--loads-only N`: create the sessions, then run only the load phase N times at each
    /// concurrency, with no report: a steady load to profile (`perf record -p`).
    pub(crate) loads_only: usize,
    pub(crate) rest: Vec<String>,
}

impl Args {
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Res<Args> {
        let mut a = Args {
            backend: "sqlite".into(),
            store: String::new(),
            api: String::new(),
            out: None,
            quick: false,
            sessions: None,
            pool: 16,
            seed: 42,
            loads_only: 0,
            rest: Vec::new(),
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--backend" => a.backend = value("--backend")?,
                "--store" => a.store = value("--store")?,
                "--api" => a.api = value("--api")?,
                "--out" => a.out = Some(value("--out")?),
                "--sessions" => a.sessions = Some(value("--sessions")?.parse()?),
                "--pool" => a.pool = value("--pool")?.parse()?,
                "--seed" => a.seed = value("--seed")?.parse()?,
                "--loads-only" => a.loads_only = value("--loads-only")?.parse()?,
                "--quick" => a.quick = true,
                // cargo bench passes --bench to a harness = false target.
                "--bench" => {}
                _ => a.rest.push(arg),
            }
        }
        Ok(a)
    }

    /// 10,000 sessions; 1,000 with --quick.
    pub(crate) fn config(&self) -> Config {
        Config {
            sessions: self
                .sessions
                .unwrap_or(if self.quick { 1_000 } else { 10_000 }),
            concurrencies: vec![1, 16],
            seed: self.seed,
        }
    }

    /// The URL of the server for `backend`, from POSTGRES_URL / MYSQL_URL.
    pub(crate) fn server_url(&self) -> String {
        match self.backend.as_str() {
            "postgres" => std::env::var("POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            "mysql" => std::env::var("MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into()),
            _ => String::new(),
        }
    }

    /// A SQLite file of this process's own in the temporary directory.
    pub(crate) fn sqlite_path(&self, who: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("sequelstore-bench-{who}-{}.db", std::process::id()))
    }
}

/// Removes a SQLite file with its WAL and shared-memory files.
pub(crate) fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Runs the workload and the memory probe on `driver` and writes the JSON to `--out` (or
/// stdout), printing each phase to stderr as it ends.
pub(crate) async fn run_and_report<D: Driver>(
    driver: D,
    args: &Args,
    settle: Option<Settle>,
) -> Res<()> {
    let cfg = args.config();
    let driver = Arc::new(driver);
    let label = format!("{}/{}/{}", args.store, args.api, args.backend);
    if args.loads_only > 0 {
        return loads_only(&driver, &cfg, args.loads_only, &label).await;
    }
    let results = run(Arc::clone(&driver), &cfg, settle.as_ref(), |m| {
        eprintln!(
            "  {label:<40} c={:<2} {:<11} {:>9.0} ops/s  p50 {:>8.1} us  p99 {:>8.1} us",
            m.concurrency, m.op, m.ops_per_s, m.p50_us, m.p99_us
        );
    })
    .await?;
    let memory = memory_probe(Arc::clone(&driver), cfg.sessions, 4, args.seed ^ 0x3e3).await?;
    eprintln!(
        "  {label:<40} rss KiB by rows stored: {}",
        memory
            .iter()
            .map(|(r, k)| format!("{r}:{k}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let json = to_json(&args.store, &args.api, &args.backend, &results, &memory);
    match &args.out {
        Some(path) => std::fs::write(path, serde_json::to_vec_pretty(&json)?)?,
        None => println!("{}", serde_json::to_string_pretty(&json)?),
    }
    Ok(())
}
