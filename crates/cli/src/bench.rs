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
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
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
