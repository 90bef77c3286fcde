//! Score and tiers through the API, with the manual clock: Sephora across two year ends,
//! Starbucks' twelve months, score caps, a refund that lowers the score at once and the
//! tier at the next evaluation after a warning, and evaluations that run once.

use crate::helpers::*;
use crate::points::balances;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

const HEAD: &str = "name = \"t\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n";

async fn app_with(programme: &str, members: &[&str]) -> TestApp {
    let app = TestApp::sqlite().await;
    let r = app
        .put_programme(&app.admin, &format!("{HEAD}{programme}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for m in members {
        app.add_member(m).await;
    }
    app
}

async fn order(app: &TestApp, member: &str, id: &str, at: &str, cents: i64) {
    let e = json!({"id": id, "type": "order.paid", "member_id": member, "occurred_at": at, "order_id": id,
        "lines": [{"sku": "A", "category": "beauty", "quantity": 1, "unit_price_minor": cents}], "total_minor": cents});
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn refund(app: &TestApp, member: &str, order_id: &str, at: &str, cents: i64) {
    let e = json!({"id": format!("r-{order_id}-{cents}"), "type": "order.refunded", "member_id": member, "occurred_at": at,
        "order_id": order_id, "refund": {"amount_minor": cents}});
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn tier(app: &TestApp, member: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/members/{member}/tier"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

fn kinds(view: &Value) -> Vec<String> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|h| {
            format!(
                "{} {}",
                h["kind"].as_str().unwrap(),
                h["to"].as_str().unwrap_or("")
            )
        })
        .collect()
}

const SEPHORA: &str = r#"
[points]
earn_points = 1
earn_per_minor = 100
expiry = { policy = "inactivity", months = 18 }

[[tiers]]
name = "insider"
threshold = 0

[[tiers]]
name = "vib"
threshold = 35000

[[tiers]]
name = "rouge"
threshold = 100000

[tier_rules]
measure = "spend"
window = { kind = "calendar_year" }
evaluation = { schedule = "yearly", month = 1, day = 1 }
retention = { kind = "rest_of_year_and_next" }
warning_days = 30
"#;

#[tokio::test]
async fn sephora_across_two_year_ends() {
    let app = app_with(SEPHORA, &["ana", "bo"]).await;
    app.set_clock("2026-11-23T12:00:00Z").await;
    order(&app, "ana", "a1", "2026-11-23T10:00:00Z", 20_000).await;
    assert_eq!(tier(&app, "ana").await["tier"], "insider");
    order(&app, "ana", "a2", "2026-11-23T11:00:00Z", 15_000).await;
    let v = tier(&app, "ana").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("vib"), Some(35_000))
    );
    assert_eq!(v["retained_until"], "2028-01-01T00:00:00Z");
    assert_eq!(
        v["next"],
        json!({"tier": "rouge", "threshold": 100000, "missing": 65000})
    );
    // 1 point per dollar.
    assert_eq!(balances(&app, "ana").await, (0, 350, 0));
    // Bo reaches Rouge at $1,000 in 2026 and earns VIB again in 2027.
    order(&app, "bo", "b1", "2026-11-23T10:00:00Z", 100_000).await;
    assert_eq!(tier(&app, "bo").await["tier"], "rouge");

    app.set_clock("2027-01-01T00:00:01Z").await;
    assert_eq!(
        tier(&app, "ana").await["tier"],
        "vib",
        "kept through the next calendar year"
    );
    order(&app, "bo", "b2", "2027-06-01T00:00:00Z", 40_000).await;

    app.set_clock("2027-12-05T00:00:00Z").await;
    let v = tier(&app, "ana").await;
    assert_eq!(
        v["keep"],
        json!({"needed": 35000, "by": "2028-01-01T00:00:00Z"})
    );
    assert!(kinds(&v).contains(&"warning insider".to_owned()), "{v}");

    app.set_clock("2028-01-01T00:00:01Z").await;
    let ana = tier(&app, "ana").await;
    assert_eq!(ana["tier"], "insider", "not earned again in 2027");
    assert_eq!(
        kinds(&ana),
        ["upgrade vib", "warning insider", "downgrade insider"]
    );
    // Bo's Rouge (2026) ran out at the end of 2027; the VIB earned in 2027 holds in 2028.
    let bo = tier(&app, "bo").await;
    assert_eq!(bo["tier"], "vib", "{bo}");

    app.set_clock("2029-01-01T00:00:01Z").await;
    assert_eq!(tier(&app, "bo").await["tier"], "insider");
    app.assert_ledger_balanced().await;
}

const STARBUCKS: &str = r#"
[points]
earn_points = 1
earn_per_minor = 100
stacking = "highest"
expiry = { policy = "rolling", months = 6 }

[[points.multipliers]]
name = "gold_rate"
percent = 120
condition = "member.tier == 'gold'"

[[points.multipliers]]
name = "reserve_rate"
percent = 170
condition = "member.tier == 'reserve'"

[[points.expiry_overrides]]
name = "gold_stars_never_expire"
condition = "member.tier in ['gold', 'reserve']"
expiry = { policy = "never" }

[[tiers]]
name = "green"
threshold = 0

[[tiers]]
name = "gold"
threshold = 500

[[tiers]]
name = "reserve"
threshold = 2500

[tier_rules]
measure = "points"
window = { kind = "rolling_months", months = 12 }
evaluation = { schedule = "monthly", day = 1 }
retention = { kind = "months", months = 12 }
"#;

#[tokio::test]
async fn starbucks_gold_for_twelve_months() {
    let app = app_with(STARBUCKS, &["sam", "rae"]).await;
    app.set_clock("2026-11-23T12:00:00Z").await;
    order(&app, "sam", "s1", "2026-11-23T09:00:00Z", 30_000).await;
    order(&app, "sam", "s2", "2026-11-23T10:00:00Z", 25_000).await;
    let v = tier(&app, "sam").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("gold"), Some(550))
    );
    assert_eq!(v["retained_until"], "2027-11-23T10:00:00Z");
    // Gold earns 1.2 stars per dollar, and its stars never expire.
    order(&app, "sam", "s3", "2026-11-23T11:00:00Z", 10_000).await;
    assert_eq!(balances(&app, "sam").await, (0, 670, 0));
    app.set_clock("2027-11-01T00:00:01Z").await;
    assert_eq!(
        tier(&app, "sam").await["tier"],
        "gold",
        "kept for 12 months after qualifying"
    );
    app.set_clock("2027-12-01T00:00:01Z").await;
    let v = tier(&app, "sam").await;
    assert_eq!(v["tier"], "green", "{v}");
    // The override is judged when stars are earned: the 550 earned as Green expired after
    // six months, the 120 earned as Gold never expire.
    assert_eq!(balances(&app, "sam").await.1, 120);
    // Reserve at 2,500 stars in 12 months, then 1.7 stars per dollar.
    order(&app, "rae", "r1", "2027-12-01T00:00:00Z", 250_000).await;
    let v = tier(&app, "rae").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("reserve"), Some(2_500))
    );
    assert_eq!(v["next"], Value::Null);
    order(&app, "rae", "r2", "2027-12-01T00:00:01Z", 10_000).await;
    assert_eq!(balances(&app, "rae").await.1, 2_670);
    let member = app.call("GET", "/v1/members/rae", None).await;
    assert_eq!(
        member.body["tier"], "reserve",
        "the member view shows the tier"
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn score_caps_per_order_day_and_month_cut_exactly() {
    let programme = r#"
[score]
window = { kind = "rolling_months", months = 12 }
cap_per_order = 300
cap_per_day = 500
cap_per_month = 1200

[[score.rules]]
name = "spend"
on = "order"
score = 1
per_minor = 100

[[score.rules]]
name = "review"
on = "review"
score = 20

[[tiers]]
name = "member"
threshold = 0

[[tiers]]
name = "super"
threshold = 1000

[tier_rules]
evaluation = { schedule = "monthly", day = 1 }
"#;
    let app = app_with(programme, &["t"]).await;
    app.set_clock("2026-11-30T00:00:00Z").await;
    let steps = [
        ("2026-11-02T10:00:00Z", 20_000, 200),  // 200
        ("2026-11-02T11:00:00Z", 50_000, 500),  // the order cap: 300
        ("2026-11-02T12:00:00Z", 50_000, 500),  // the day is full
        ("2026-11-03T10:00:00Z", 50_000, 800),  // 300
        ("2026-11-04T10:00:00Z", 50_000, 1100), // 300
        ("2026-11-05T10:00:00Z", 50_000, 1200), // what is left of the month: 100
        ("2026-11-06T10:00:00Z", 50_000, 1200),
    ];
    for (i, (at, cents, score)) in steps.iter().enumerate() {
        order(&app, "t", &format!("o{i}"), at, *cents).await;
        let v = tier(&app, "t").await;
        assert_eq!(v["score"], *score, "step {i}: {v}");
    }
    assert_eq!(tier(&app, "t").await["tier"], "super");
    let review = json!({"id": "rv", "type": "activity", "member_id": "t", "occurred_at": "2026-12-01T00:00:00Z", "activity": "review"});
    assert_eq!(
        app.call("POST", "/v1/events", Some(review)).await.status,
        StatusCode::CREATED
    );
    app.set_clock("2026-12-02T00:00:00Z").await;
    assert_eq!(tier(&app, "t").await["score"], 1220);
}

const JD_LIKE: &str = r#"
[score]
window = { kind = "rolling_months", months = 12 }

[[score.rules]]
name = "spend"
on = "order"
score = 1
per_minor = 100

[[tiers]]
name = "silver"
threshold = 0

[[tiers]]
name = "gold"
threshold = 100

[tier_rules]
evaluation = { schedule = "monthly", day = 1 }
warning_days = 10
"#;

#[tokio::test]
async fn a_refund_lowers_the_score_at_once_and_the_tier_at_the_evaluation_after_a_warning() {
    let app = app_with(JD_LIKE, &["j"]).await;
    app.set_clock("2026-11-23T12:00:00Z").await;
    order(&app, "j", "o1", "2026-11-23T00:00:00Z", 15_000).await;
    assert_eq!(tier(&app, "j").await["tier"], "gold");
    refund(&app, "j", "o1", "2026-11-23T01:00:00Z", 10_000).await;
    let v = tier(&app, "j").await;
    assert_eq!(
        (v["score"].as_i64(), v["tier"].as_str()),
        (Some(50), Some("gold")),
        "{v}"
    );
    assert_eq!(
        v["keep"],
        json!({"needed": 50, "by": "2026-12-01T00:00:00Z"})
    );
    app.set_clock("2026-11-25T00:00:00Z").await;
    assert_eq!(
        kinds(&tier(&app, "j").await),
        ["upgrade gold", "warning silver"]
    );
    app.set_clock("2026-12-01T00:00:00Z").await;
    let v = tier(&app, "j").await;
    assert_eq!(
        kinds(&v),
        ["upgrade gold", "warning silver", "downgrade silver"]
    );
    // The same instant again, and the job run directly: nothing more happens.
    app.set_clock("2026-12-01T00:00:00Z").await;
    let again = app
        .engine
        .run_due_work("2026-12-01T00:00:00Z".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(again, tessera_engine::DueWork::default());
    assert_eq!(tier(&app, "j").await["history"], v["history"]);
}

#[tokio::test]
async fn an_evaluation_cut_short_by_a_stop_runs_once_at_the_next_start() {
    let app = app_with(JD_LIKE, &["k"]).await;
    app.set_clock("2026-11-23T12:00:00Z").await;
    order(&app, "k", "o1", "2026-11-23T00:00:00Z", 15_000).await;
    refund(&app, "k", "o1", "2026-11-23T01:00:00Z", 10_000).await;
    let later: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
    let restarted = tessera_engine::Engine::start(
        app.store.clone(),
        Arc::new(tessera_engine::ManualClock::new(later)),
        None,
    )
    .await
    .unwrap();
    let first = restarted.tick().await.unwrap();
    assert_eq!(
        (
            first.tiers.warnings,
            first.tiers.evaluations,
            first.tiers.changes
        ),
        (1, 1, 1)
    );
    assert_eq!(
        restarted.tick().await.unwrap(),
        tessera_engine::DueWork::default()
    );
    assert_eq!(
        kinds(&tier(&app, "k").await),
        ["upgrade gold", "warning silver", "downgrade silver"]
    );
}

#[tokio::test]
async fn tier_refusals() {
    let app = app_with("", &["m"]).await;
    let r = app.call("GET", "/v1/members/m/tier", None).await;
    assert_eq!(r.code(), "tiers_disabled");
    let r = app.call("GET", "/v1/members/nobody/tier", None).await;
    assert_eq!(r.code(), "tiers_disabled");
    let app = app_with(JD_LIKE, &[]).await;
    assert_eq!(
        app.call("GET", "/v1/members/nobody/tier", None)
            .await
            .code(),
        "member_not_found"
    );
    assert_eq!(
        app.call_as(&app.partner, "GET", "/v1/members/nobody/tier", None)
            .await
            .code(),
        "forbidden"
    );
}

/// JD's 京享值 is settled monthly: the score counts at once, the tier moves only at the
/// settlement, up or down.
#[tokio::test]
async fn settled_tiers_move_only_at_evaluations() {
    let programme = JD_LIKE.replace(
        "warning_days = 10",
        "warning_days = 0\nsettlement = \"at_evaluation\"",
    );
    let app = app_with(&programme, &["s"]).await;
    app.set_clock("2026-11-23T12:00:00Z").await;
    order(&app, "s", "o1", "2026-11-23T00:00:00Z", 15_000).await;
    let v = tier(&app, "s").await;
    assert_eq!(
        (v["tier"].as_str(), v["score"].as_i64()),
        (Some("silver"), Some(150)),
        "{v}"
    );
    assert_eq!(v["next_evaluation"], "2026-12-01T00:00:00Z");
    app.set_clock("2026-12-01T00:00:00Z").await;
    let v = tier(&app, "s").await;
    assert_eq!(v["tier"], "gold", "{v}");
    assert_eq!(kinds(&v), ["upgrade gold"]);
    assert_eq!(v["history"][0]["at"], "2026-12-01T00:00:00Z");
    // A year later the score has rolled off: down at the first evaluation after that.
    app.set_clock("2027-12-01T00:00:00Z").await;
    assert_eq!(tier(&app, "s").await["tier"], "silver");
}

/// One batch whose events straddle the edge of a rolling window: what left the window is
/// no longer counted for the later event.
#[tokio::test]
async fn a_batch_counts_each_event_in_its_own_window() {
    let programme = r#"
[score]
window = { kind = "rolling_months", months = 1 }

[[score.rules]]
name = "spend"
on = "order"
score = 1
per_minor = 100

[[tiers]]
name = "basic"
threshold = 0

[[tiers]]
name = "silver"
threshold = 150

[[tiers]]
name = "gold"
threshold = 200

[tier_rules]
evaluation = { schedule = "monthly", day = 1 }
"#;
    let app = app_with(programme, &["w"]).await;
    app.set_clock("2026-11-25T00:00:00Z").await;
    order(&app, "w", "early", "2026-10-20T00:00:00Z", 10_000).await;
    let line = |id: &str, at: &str, cents: i64| {
        json!({"id": id, "type": "order.paid", "member_id": "w", "occurred_at": at, "order_id": id,
            "lines": [{"sku": "A", "category": "c", "quantity": 1, "unit_price_minor": cents}], "total_minor": cents})
    };
    let batch = json!({"events": [line("a", "2026-11-19T00:00:00Z", 6_000), line("b", "2026-11-21T00:00:00Z", 5_000)]});
    let r = app.call("POST", "/v1/events/batch", Some(batch)).await;
    assert_eq!(r.body["accepted"], 2, "{}", r.text);
    let v = tier(&app, "w").await;
    // At 19 Nov: 100 (20 Oct) + 60 = 160, silver. At 21 Nov the October order has left the
    // window: 60 + 50 = 110, not gold.
    assert_eq!(v["tier"], "silver", "{v}");
    assert_eq!(kinds(&v), ["upgrade silver"]);
    assert_eq!(v["history"][0]["value"], 160);
    assert_eq!(v["score"], 110);
}

/// Caps count what earlier events of the same batch earned, for points and for the score.
#[tokio::test]
async fn caps_count_the_batch_itself() {
    let programme = r#"
[points]
earn_points = 1
earn_per_minor = 100
cap_per_day = 80

[score]
window = { kind = "lifetime" }
cap_per_day = 120

[[score.rules]]
name = "spend"
on = "order"
score = 1
per_minor = 100
"#;
    let app = app_with(programme, &["c"]).await;
    app.set_clock("2026-11-23T12:00:00Z").await;
    let line = |id: &str| {
        json!({"id": id, "type": "order.paid", "member_id": "c", "occurred_at": "2026-11-23T10:00:00Z", "order_id": id,
            "lines": [{"sku": "A", "category": "c", "quantity": 1, "unit_price_minor": 5_000}], "total_minor": 5_000})
    };
    let batch = json!({"events": [line("x1"), line("x2"), line("x3")]});
    let r = app.call("POST", "/v1/events/batch", Some(batch)).await;
    assert_eq!(r.body["accepted"], 3, "{}", r.text);
    // 50 + 30 (the day's points cap) + 0; 50 + 50 + 20 (the day's score cap).
    assert_eq!(balances(&app, "c").await, (0, 80, 0));
    let id = tessera_domain::ExternalId::parse("c").unwrap();
    let member = app.engine.member(&id).await.unwrap();
    let score = app
        .engine
        .store()
        .measure_sum_read(member.id, "score", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(score, 120);
}

/// The tier view shows the newest 50 lines of history and says where the rest starts; the
/// history route pages through all of it.
#[tokio::test]
async fn tier_history_pages_past_the_view() {
    let app = app_with(SEPHORA, &["h"]).await;
    let id = tessera_domain::ExternalId::parse("h").unwrap();
    let member = app.engine.member(&id).await.unwrap();
    let rows: Vec<tessera_store::HistoryRow> = (1..=120)
        .map(|no| tessera_store::HistoryRow {
            member_id: member.id,
            history_no: no,
            at_us: 1_800_000_000_000_000 + no,
            kind: "warning".into(),
            from_tier: Some("VIB".into()),
            to_tier: Some("Insider".into()),
            measure_value: no,
            needed: Some(1),
            evaluation_at_us: Some(1_900_000_000_000_000),
        })
        .collect();
    let mut tx = app.store.begin().await.unwrap();
    tx.history_insert(&rows).await.unwrap();
    tx.commit().await.unwrap();
    let view = tier(&app, "h").await;
    let shown: Vec<i64> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["value"].as_i64().unwrap())
        .collect();
    assert_eq!(shown, (71..=120).rev().collect::<Vec<_>>());
    let mut seen = shown;
    let mut cursor = view["history_next_cursor"].as_str().unwrap().to_owned();
    loop {
        let r = app
            .call(
                "GET",
                &format!("/v1/members/h/tier/history?limit=30&cursor={cursor}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        seen.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["value"].as_i64().unwrap()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (1..=120).rev().collect::<Vec<_>>(), "every line once");
    let first = app.call("GET", "/v1/members/h/tier/history", None).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 50);
    // A member with little history: no cursor.
    app.add_member("quiet").await;
    assert_eq!(
        tier(&app, "quiet").await["history_next_cursor"],
        Value::Null
    );
}

const GOLD_PACK: &str = r#"
[[tiers]]
name = "member"
threshold = 0

[[tiers]]
name = "gold"
threshold = 10000

[tier_rules]
measure = "spend"
window = { kind = "rolling_months", months = 1 }
evaluation = { schedule = "monthly", day = 1 }
warning_days = 0

[[coupons]]
id = "gift"
kind = "amount_off"
amount_minor = 100
minimum_minor = 0
valid_days = 30

[[benefits]]
id = "gold_pack"
kind = "coupon_grant"
tiers = ["gold"]
coupon = "gift"
count = 1
"#;

/// A clock that jumps over months in which a member was gold and then lost it grants
/// each month they held the tier, and none after: the tier history says who held what
/// when, not the tier at the moment the job runs.
#[tokio::test]
async fn tier_grants_follow_the_history_across_a_jump() {
    let app = app_with(GOLD_PACK, &["g"]).await;
    app.set_clock("2027-01-10T00:00:00Z").await;
    order(&app, "g", "o1", "2027-01-10T00:00:00Z", 20_000).await;
    app.set_clock("2027-01-10T12:00:00Z").await;
    let granted = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["issued_at"].as_str().unwrap()[..10].to_owned())
            .collect()
    };
    let c = app.call("GET", "/v1/members/g/coupons", None).await;
    assert_eq!(granted(&c.body), ["2027-01-10"], "{}", c.text);
    // Gold through February (January's spend is in the window at the 1 February
    // evaluation), member from the 1 March evaluation on.
    app.set_clock("2027-05-15T00:00:00Z").await;
    let view = tier(&app, "g").await;
    assert_eq!(view["tier"], "member", "{view}");
    let c = app.call("GET", "/v1/members/g/coupons", None).await;
    assert_eq!(
        granted(&c.body),
        ["2027-02-01", "2027-01-10"],
        "January and February, nothing after the downgrade: {}",
        c.text
    );
}
