//! `tessera bench`: measurements written to docs/BENCHMARKS.md, each next to a baseline
//! measured in the same run on the same database.

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tessera_domain::{Attributes, ExternalId};
use tessera_engine::{Engine, Role};
use tower::ServiceExt;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// `order.paid` events through POST /v1/events/batch (in process, without the socket),
    /// against plain SQL inserts of the same number of rows.
    Ingest {
        /// sqlite://PATH or postgres://...; default: a new SQLite file in the temp folder.
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        /// Events per batch request (at most 1,000).
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1000))]
        batch: u64,
        #[arg(long, default_value_t = 10_000)]
        members: u64,
        /// Batch requests in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Lines per order.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=500))]
        lines: u32,
        /// The programme to run; default: the demo programme.
        #[arg(long)]
        programme: Option<std::path::PathBuf>,
    },
    /// A member with many past orders (every lot still open) against one with a few:
    /// redemption, order commit and a batch with a refund, the median of each, and the
    /// ratio (the bar: at most 2).
    History {
        /// sqlite://PATH or postgres://...; default: a new SQLite file in the temp folder.
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        /// Timed rounds of each operation for each member.
        #[arg(long, default_value_t = 21)]
        rounds: u32,
    },
    /// `POST /v1/quotes` for a 10-line cart and a member with a plan, a tier, coupons and
    /// points (the demo programme), in process, against a bare axum route that parses the
    /// same body, in the same run. With `--serve`, both are served over HTTP instead, for
    /// `wrk` or `oha` (the commands are printed).
    Quote {
        #[arg(long, default_value_t = 20_000)]
        quotes: u64,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Serve Tessera on this address and the bare route on the next port, until Ctrl-C.
        #[arg(long)]
        serve: Option<std::net::SocketAddr>,
    },
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::History {
            database,
            orders,
            rounds,
        } => crate::bench_history::history_bench(database, orders, rounds.max(1)).await,
        BenchCommand::Quote {
            quotes,
            concurrency,
            serve,
        } => quote_bench(quotes, concurrency.max(1), serve).await,
        BenchCommand::Ingest {
            database,
            orders,
            batch,
            members,
            concurrency,
            lines,
            programme,
        } => {
            let source = match programme {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                None => crate::DEMO_PROGRAMME.to_owned(),
            };
            ingest(
                database,
                orders,
                batch,
                members.max(1),
                concurrency.max(1),
                lines,
                &source,
            )
            .await
        }
    }
}

/// A small deterministic generator, so that every run sends the same orders.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

async fn ingest(
    database: Option<String>,
    orders: u64,
    batch: u64,
    members: u64,
    concurrency: usize,
    lines: u32,
    programme: &str,
) -> anyhow::Result<()> {
    let temp = std::env::temp_dir().join(format!("tessera-bench-{}.db", std::process::id()));
    let url = database.unwrap_or_else(|| format!("sqlite://{}", temp.display()));
    let store = tessera_store::Store::connect(&url)
        .await
        .with_context(|| format!("cannot open {url}"))?;
    store.migrate().await?;
    let clock = Arc::new(Engine::manual_clock(&store, None).await?);
    let engine = Arc::new(Engine::start(store.clone(), clock, Some(programme)).await?);
    let key = engine.create_key(Role::Admin).await?;
    let run = format!(
        "{:x}",
        std::process::id() as u64 ^ engine.now().as_second().unsigned_abs()
    );
    eprintln!("database: {} ({url})", store.backend_name());
    eprintln!("creating {members} members ...");
    for m in 0..members {
        let id = ExternalId::parse(format!("b{run}-{m}"))?;
        engine
            .create_member(&id, &Attributes::default(), None)
            .await?;
    }
    let mut rng = SplitMix(42);
    let now = engine.now();
    let mut bodies: VecDeque<String> = VecDeque::new();
    let mut sample = String::new();
    let mut n = 0u64;
    while n < orders {
        let size = batch.min(orders - n);
        let mut events = Vec::with_capacity(size as usize);
        for _ in 0..size {
            let member = rng.next() % members;
            let mut total = 0i64;
            let order_lines: Vec<serde_json::Value> = (0..lines)
                .map(|l| {
                    let price = 100 + i64::try_from(rng.next() % 20_000).unwrap_or(0);
                    let quantity = 1 + rng.next() % 3;
                    total += price * i64::try_from(quantity).unwrap_or(1);
                    serde_json::json!({"sku": format!("SKU-{}", rng.next() % 5000), "category": if l % 2 == 0 { "books" } else { "music" },
                        "quantity": quantity, "unit_price_minor": price})
                })
                .collect();
            let occurred = now.checked_sub(
                jiff::Span::new().seconds(i64::try_from(rng.next() % 86_400).unwrap_or(0)),
            )?;
            let event = serde_json::json!({"id": format!("e{run}-{n}"), "type": "order.paid", "member_id": format!("b{run}-{member}"),
                "occurred_at": occurred.to_string(), "order_id": format!("o{run}-{n}"), "lines": order_lines,
                "shipping_minor": 600, "total_minor": total + 600});
            if sample.is_empty() {
                sample = event.to_string();
            }
            events.push(event);
            n += 1;
        }
        bodies.push_back(serde_json::json!({ "events": events }).to_string());
    }

    eprintln!(
        "baseline: {orders} plain INSERTs of one {}-byte row each, {batch} per transaction ...",
        sample.len()
    );
    let started = Instant::now();
    store
        .baseline_inserts(orders, batch, concurrency, &sample)
        .await?;
    let baseline_s = started.elapsed().as_secs_f64();

    eprintln!(
        "Tessera: {orders} order.paid events in batches of {batch}, {concurrency} at once ..."
    );
    let router = tessera_api::app(engine.clone());
    let queue = Arc::new(Mutex::new(bodies));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (router, queue, key) = (router.clone(), queue.clone(), key.clone());
        workers.push(tokio::spawn(async move {
            let mut accepted = 0u64;
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some(body) = next else {
                    return Ok::<u64, anyhow::Error>(accepted);
                };
                let request = Request::post("/v1/events/batch")
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body))?;
                let response = router.clone().oneshot(request).await?;
                let status = response.status();
                let bytes = response.into_body().collect().await?.to_bytes();
                if !status.is_success() {
                    bail!(
                        "the batch was refused: {status} {}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
                let result: serde_json::Value = serde_json::from_slice(&bytes)?;
                accepted += result["accepted"].as_u64().unwrap_or(0);
            }
        }));
    }
    let mut accepted = 0;
    for w in workers {
        accepted += w.await??;
    }
    let tessera_s = started.elapsed().as_secs_f64();
    if accepted != orders {
        bail!("only {accepted} of {orders} orders were accepted");
    }
    let report = engine.check_ledger(|_, _| {}).await?;
    let rate = |s: f64| if s > 0.0 { orders as f64 / s } else { 0.0 };
    println!("| backend | orders | batch | in flight | Tessera orders/s | plain INSERT rows/s | ratio | ledger |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {orders} | {batch} | {concurrency} | {:.0} | {:.0} | {:.2} | {} |",
        store.backend_name(),
        rate(tessera_s),
        rate(baseline_s),
        baseline_s / tessera_s,
        if report.is_balanced() {
            "balanced"
        } else {
            "VIOLATED"
        }
    );
    store.close().await;
    if url.contains(&temp.display().to_string()) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
        }
    }
    if !report.is_balanced() {
        bail!(
            "the ledger check failed after the benchmark: {:?}",
            report.violations
        );
    }
    Ok(())
}

/// The cart of the quote benchmark: 10 lines over member prices, a member-day discount,
/// two coupons' categories and a members-only line.
fn bench_cart() -> serde_json::Value {
    serde_json::json!({
        "member_id": "bench",
        "lines": [
            {"sku": "TEA-500G", "category": "grocery", "quantity": 2, "unit_price_minor": 5900},
            {"sku": "RICE-5KG", "category": "grocery", "quantity": 1, "unit_price_minor": 6900},
            {"sku": "NOVEL-1", "category": "books", "quantity": 1, "unit_price_minor": 4500},
            {"sku": "NOVEL-2", "category": "books", "quantity": 3, "unit_price_minor": 3333},
            {"sku": "PEN", "category": "office", "quantity": 10, "unit_price_minor": 250},
            {"sku": "MUG", "category": "home", "quantity": 1, "unit_price_minor": 3900},
            {"sku": "SOAP", "category": "home", "quantity": 4, "unit_price_minor": 899},
            {"sku": "OIL-1L", "category": "grocery", "quantity": 1, "unit_price_minor": 2990},
            {"sku": "SALT", "category": "grocery", "quantity": 2, "unit_price_minor": 350},
            {"sku": "WINE-CLUB", "category": "drinks", "quantity": 1, "unit_price_minor": 29900, "tags": ["members_only"]}
        ],
        "shipping_minor": 800,
        "coupons": [1, 2],
        "points": 500
    })
}

/// The baseline: a bare axum route that parses the same cart and answers a small JSON.
fn bare_router() -> axum::Router {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        category: String,
        quantity: u32,
        unit_price_minor: i64,
        #[serde(default)]
        tags: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Cart {
        member_id: Option<String>,
        lines: Vec<Line>,
        shipping_minor: i64,
        coupons: Vec<i64>,
        points: i64,
    }
    async fn quote(axum::Json(cart): axum::Json<Cart>) -> axum::Json<serde_json::Value> {
        let total: i64 = cart
            .lines
            .iter()
            .map(|l| l.unit_price_minor * i64::from(l.quantity))
            .sum();
        axum::Json(serde_json::json!({"total_minor": total + cart.shipping_minor}))
    }
    axum::Router::new().route("/v1/quotes", axum::routing::post(quote))
}

async fn quote_bench(
    quotes: u64,
    concurrency: usize,
    serve: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let temp = std::env::temp_dir().join(format!("tessera-bench-quote-{}.db", std::process::id()));
    let url = format!("sqlite://{}", temp.display());
    let store = tessera_store::Store::connect(&url).await?;
    store.migrate().await?;
    let clock =
        Arc::new(Engine::manual_clock(&store, Some("2026-11-28T02:00:00Z".parse()?)).await?);
    let engine = Arc::new(Engine::start(store.clone(), clock, Some(crate::DEMO_PROGRAMME)).await?);
    let key = engine.create_key(Role::Admin).await?;
    let router = tessera_api::app(engine.clone());
    let call = |method: &'static str, path: String, body: serde_json::Value| {
        let (router, key) = (router.clone(), key.clone());
        async move {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))?;
            let response = router.oneshot(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            if !status.is_success() {
                bail!("{status}: {}", String::from_utf8_lossy(&bytes));
            }
            Ok::<serde_json::Value, anyhow::Error>(serde_json::from_slice(&bytes)?)
        }
    };
    // The member: gold by score (three days at the day cap), PLUS, two coupons, points.
    call(
        "POST",
        "/v1/members".into(),
        serde_json::json!({"member_id": "bench"}),
    )
    .await?;
    for (i, day) in ["24", "25", "26"].iter().enumerate() {
        call("POST", "/v1/events".into(), serde_json::json!({"id": format!("bench-o{i}"), "type": "order.paid",
            "member_id": "bench", "occurred_at": format!("2026-11-{day}T10:00:00+08:00"), "order_id": format!("bench-o{i}"),
            "lines": [{"sku": "X", "category": "misc", "quantity": 1, "unit_price_minor": 200_000}], "total_minor": 200_000})).await?;
    }
    call(
        "POST",
        "/v1/admin/code-pools/iqiyi_vip".into(),
        serde_json::json!({"codes": ["BENCH-1"]}),
    )
    .await?;
    call(
        "POST",
        "/v1/subscriptions".into(),
        serde_json::json!({"member_id": "bench", "plan": "plus", "payment_ref": "bench-pay"}),
    )
    .await?;
    call(
        "POST",
        "/v1/members/bench/coupons".into(),
        serde_json::json!({"id": "c1", "template": "ten_off_99"}),
    )
    .await?;
    call(
        "POST",
        "/v1/members/bench/coupons".into(),
        serde_json::json!({"id": "c2", "template": "books_20"}),
    )
    .await?;
    call(
        "POST",
        "/v1/members/bench/points/adjustments".into(),
        serde_json::json!({"id": "a1", "points": 5000, "reason": "bench"}),
    )
    .await?;
    let sample = call("POST", "/v1/quotes".into(), bench_cart()).await?;
    if sample["payable"] != true || sample["tier"] != "gold" || sample["plans"][0] != "plus" {
        bail!("the benchmark member is not set up as intended: {sample}");
    }
    let body = bench_cart().to_string();

    if let Some(address) = serve {
        let body_path = std::env::temp_dir().join("tessera-bench-cart.json");
        std::fs::write(&body_path, &body)?;
        let tessera = tokio::net::TcpListener::bind(address).await?;
        let bare_address = std::net::SocketAddr::new(address.ip(), address.port() + 1);
        let bare = tokio::net::TcpListener::bind(bare_address).await?;
        println!(
            "Tessera: http://{address}/v1/quotes   bare axum: http://{bare_address}/v1/quotes"
        );
        println!("key: {key}");
        println!("body: {}", body_path.display());
        println!(
            "oha -z 20s -q 2000 --latency-correction --disable-keepalive=false -m POST -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -D {} http://{address}/v1/quotes",
            body_path.display()
        );
        let t = tokio::spawn(async move { axum::serve(tessera, router).await });
        let b = tokio::spawn(async move { axum::serve(bare, bare_router()).await });
        tokio::signal::ctrl_c().await?;
        t.abort();
        b.abort();
        return Ok(());
    }

    async fn drive(
        router: axum::Router,
        key: String,
        body: String,
        quotes: u64,
        concurrency: usize,
    ) -> anyhow::Result<f64> {
        let left = Arc::new(std::sync::atomic::AtomicU64::new(quotes));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (router, key, body, left) =
                (router.clone(), key.clone(), body.clone(), left.clone());
            workers.push(tokio::spawn(async move {
                while left
                    .fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
                {
                    let request = Request::post("/v1/quotes")
                        .header("authorization", format!("Bearer {key}"))
                        .header("content-type", "application/json")
                        .body(Body::from(body.clone()))?;
                    let response = router.clone().oneshot(request).await?;
                    if !response.status().is_success() {
                        bail!("a quote failed: {}", response.status());
                    }
                    response.into_body().collect().await?;
                }
                Ok::<(), anyhow::Error>(())
            }));
        }
        for w in workers {
            w.await??;
        }
        Ok(quotes as f64 / started.elapsed().as_secs_f64())
    }
    eprintln!("warming up ...");
    drive(router.clone(), key.clone(), body.clone(), 500, concurrency).await?;
    drive(bare_router(), key.clone(), body.clone(), 500, concurrency).await?;
    eprintln!("{quotes} quotes of a 10-line cart, {concurrency} in flight, in process ...");
    let bare = drive(
        bare_router(),
        key.clone(),
        body.clone(),
        quotes,
        concurrency,
    )
    .await?;
    let mut guest: serde_json::Value = serde_json::from_str(&body)?;
    guest["member_id"] = serde_json::Value::Null;
    guest["coupons"] = serde_json::json!([]);
    guest["points"] = serde_json::json!(0);
    let guest = drive(
        router.clone(),
        key.clone(),
        guest.to_string(),
        quotes,
        concurrency,
    )
    .await?;
    let tessera = drive(
        router.clone(),
        key.clone(),
        body.clone(),
        quotes,
        concurrency,
    )
    .await?;
    engine.set_holdings_reuse(false);
    let uncached = drive(
        router.clone(),
        key.clone(),
        body.clone(),
        quotes / 4,
        concurrency,
    )
    .await?;
    engine.set_holdings_reuse(true);
    println!("| route | quotes | in flight | quotes/s | ratio to bare |");
    println!("|---|---|---|---|---|");
    println!("| bare axum, parse the cart | {quotes} | {concurrency} | {bare:.0} | 1.00 |");
    println!("| Tessera POST /v1/quotes, no member (no reads) | {quotes} | {concurrency} | {guest:.0} | {:.2} |", guest / bare);
    println!(
        "| Tessera POST /v1/quotes, the member | {quotes} | {concurrency} | {tessera:.0} | {:.2} |",
        tessera / bare
    );
    println!(
        "| Tessera POST /v1/quotes, the member, holdings read every time | {} | {concurrency} | {uncached:.0} | {:.2} |",
        quotes / 4,
        uncached / bare
    );
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
    }
    Ok(())
}
