//! `tessera bench history`: what a member's history costs the hot paths. One member with
//! many past orders (every lot still open), one with a few, on the same database in the
//! same run; the same redemption, order commit and batch with a refund for each, timed
//! one request at a time. "Cost follows what is open, not history": the ratio is the bar.

use anyhow::bail;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_engine::{Engine, Role};
use tower::ServiceExt;

/// The instant the clock stands at while measuring; the history lies before it, and every
/// lot is released and not yet expired (the demo's points expire at the end of next year).
const NOW: &str = "2026-12-20T00:00:00Z";

struct Bench {
    router: axum::Router,
    key: String,
}

impl Bench {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))?;
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// `orders` paid orders for `member`, spread over the year before `NOW`, in batches.
    async fn history(&self, member: &str, orders: u64) -> anyhow::Result<()> {
        let start: jiff::Timestamp = "2026-01-02T00:00:00Z".parse()?;
        let span_s = 340 * 86_400;
        let mut n = 0;
        while n < orders {
            let events: Vec<serde_json::Value> = (n..(n + 1000).min(orders))
                .map(|k| {
                    let at = start
                        + jiff::SignedDuration::from_secs((span_s * k / orders.max(1)) as i64);
                    order_event(member, &format!("{member}-h{k}"), &at.to_string())
                })
                .collect();
            n += events.len() as u64;
            let r = self
                .call(
                    "POST",
                    "/v1/events/batch",
                    serde_json::json!({ "events": events }),
                )
                .await?;
            if r["rejected"] != 0 {
                bail!("history refused: {r}");
            }
        }
        Ok(())
    }
}

fn order_event(member: &str, id: &str, at: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "type": "order.paid", "member_id": member, "occurred_at": at,
        "order_id": id, "lines": [{"sku": "X", "category": "misc", "quantity": 1,
        "unit_price_minor": 10_000}], "total_minor": 10_000})
}

/// The median of `rounds` timings of `op(round)`.
async fn median<F, Fut>(rounds: u32, mut op: F) -> anyhow::Result<Duration>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(rounds as usize);
    for round in 0..rounds {
        let started = Instant::now();
        op(round).await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

pub async fn history_bench(
    database: Option<String>,
    orders: u64,
    rounds: u32,
) -> anyhow::Result<()> {
    let temp =
        std::env::temp_dir().join(format!("tessera-bench-history-{}.db", std::process::id()));
    let url = database.unwrap_or_else(|| format!("sqlite://{}", temp.display()));
    let store = tessera_store::Store::connect(&url).await?;
    store.migrate().await?;
    let clock = Arc::new(Engine::manual_clock(&store, Some(NOW.parse()?)).await?);
    let engine = Arc::new(Engine::start(store.clone(), clock, Some(crate::DEMO_PROGRAMME)).await?);
    let bench = Bench {
        router: tessera_api::app(engine.clone()),
        key: engine.create_key(Role::Admin).await?,
    };
    let fresh = 200u64;
    let started = Instant::now();
    for (member, count) in [("old", orders), ("new", fresh)] {
        bench
            .call(
                "POST",
                "/v1/members",
                serde_json::json!({ "member_id": member }),
            )
            .await?;
        bench.history(member, count).await?;
    }
    engine.run_due_work(NOW.parse()?).await?;
    println!(
        "history: {orders} orders for `old`, {fresh} for `new`, written and released in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:<44} {:>12} {:>12} {:>7}",
        "operation (median of rounds)", "new", "old", "ratio"
    );
    let mut worst: f64 = 0.0;
    for what in [
        "redemption of 100 points",
        "order commit spending 100 points",
        "batch: an order and a refund of an old one",
    ] {
        let mut medians = Vec::new();
        for (member, count) in [("new", fresh), ("old", orders)] {
            let b = &bench;
            let m = median(rounds, |round| async move {
                let tag = format!("{member}-{round}");
                match what {
                    "redemption of 100 points" => {
                        b.call("POST", &format!("/v1/members/{member}/points/redemptions"),
                            serde_json::json!({"id": format!("r-{tag}"), "points": 100})).await?;
                    }
                    "order commit spending 100 points" => {
                        b.call("POST", "/v1/orders", serde_json::json!({"order_id": format!("c-{tag}"),
                            "member_id": member, "lines": [{"sku": "X", "category": "misc", "quantity": 1,
                            "unit_price_minor": 10_000}], "points": 100})).await?;
                    }
                    _ => {
                        let old_order = format!("{member}-h{}", u64::from(round) % count);
                        let events = serde_json::json!({"events": [
                            order_event(member, &format!("b-{tag}"), NOW),
                            {"id": format!("rf-{tag}"), "type": "order.refunded", "member_id": member,
                             "occurred_at": NOW, "order_id": old_order, "refund": {"amount_minor": 1000}},
                        ]});
                        let r = b.call("POST", "/v1/events/batch", events).await?;
                        if r["rejected"] != 0 {
                            bail!("refused: {r}");
                        }
                    }
                }
                Ok(())
            })
            .await?;
            medians.push(m);
        }
        let ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64();
        worst = worst.max(ratio);
        println!(
            "{what:<44} {:>9.2} ms {:>9.2} ms {ratio:>7.2}",
            medians[0].as_secs_f64() * 1e3,
            medians[1].as_secs_f64() * 1e3
        );
    }
    println!("worst ratio old/new: {worst:.2} (the bar: at most 2)");
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
    }
    Ok(())
}
