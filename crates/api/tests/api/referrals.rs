//! Referral through the API, with the manual clock: every trigger and reward kind, every
//! refusal, the cap, the clawback on refund, and 32 joins racing on one code.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_testkit::Backend;

const PROGRAMME: &str = r#"
name = "referral"
currency = "USD"
timezone = "UTC"

[points]
earn_points = 1
earn_per_minor = 100
return_window_days = 7

[[coupons]]
id = "welcome"
kind = "amount_off"
amount_minor = 500
valid_days = 30

[stored_value]
[[stored_value.offers]]
id = "pay_100"
pay_minor = 10000
credit_minor = 10000

[[plans]]
id = "club"
term = "year"
price_minor = 39800
refund = { policy = "full" }

[referral]
identity = ["phone"]
max_referrals_per_code = 40
late_days = 0

[[referral.rewards]]
id = "join_points"
on = "join"
to = "referrer"
points = 100

[[referral.rewards]]
id = "join_coupon"
on = "join"
to = "referee"
coupon = "welcome"

[[referral.rewards]]
id = "order_cash"
on = "first_order"
to = "referrer"
stored_value_minor = 1000

[[referral.rewards]]
id = "order_coupon"
on = "first_order"
to = "referee"
coupon = "welcome"
wait_days = 0

[[referral.rewards]]
id = "plan_cash"
on = "first_plan"
to = "referrer"
stored_value_minor = 10000
plans = ["club"]

[[referral.rewards]]
id = "plan_points"
on = "first_plan"
to = "referee"
points = 500
"#;

async fn app_on(backend: Backend, programme: &str) -> Option<TestApp> {
    let app = TestApp::on(backend).await?;
    let r = app.put_programme(&app.admin, programme).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    Some(app)
}

async fn join(app: &TestApp, id: &str, phone: &str, code: Option<&str>) -> Reply {
    let mut body = json!({"member_id": id, "attributes": {"phone": phone}});
    if let Some(code) = code {
        body["referral_code"] = json!(code);
    }
    app.call_as(&app.storefront, "POST", "/v1/members", Some(body))
        .await
}

async fn code_of(app: &TestApp, id: &str) -> String {
    let r = app
        .call("GET", &format!("/v1/members/{id}/referrals"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["code"].as_str().unwrap().to_owned()
}

async fn referrals(app: &TestApp, id: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/members/{id}/referrals"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// The state of each reward of `referee`'s referral, by reward id.
async fn reward_states(app: &TestApp, referee: &str) -> Vec<(String, String, i64)> {
    let body = referrals(app, referee).await;
    let mut out: Vec<(String, String, i64)> = body["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reward_id"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
                r["clawed_back"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn available_points(app: &TestApp, id: &str) -> i64 {
    let r = app
        .call("GET", &format!("/v1/members/{id}/points"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["balances"]["available"].as_i64().unwrap()
}

async fn bonus(app: &TestApp, id: &str) -> i64 {
    let r = app
        .call("GET", &format!("/v1/members/{id}/stored-value"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["bonus_minor"].as_i64().unwrap()
}

/// (template, state) of each coupon of a member, oldest first.
async fn coupons(app: &TestApp, id: &str) -> Vec<(String, String, String)> {
    let r = app
        .call("GET", &format!("/v1/members/{id}/coupons"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut out: Vec<(String, String, String)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["template"].as_str().unwrap().to_owned(),
                c["state"].as_str().unwrap().to_owned(),
                c["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn order(app: &TestApp, member: &str, order_id: &str, at: &str) {
    let event = json!({"id": format!("paid-{order_id}"), "type": "order.paid", "member_id": member,
        "occurred_at": at, "order_id": order_id,
        "lines": [{"sku": "A1", "category": "books", "quantity": 1, "unit_price_minor": 5000}],
        "shipping_minor": 0, "total_minor": 5000});
    let r = app.call("POST", "/v1/events", Some(event)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn refund_order(app: &TestApp, member: &str, order_id: &str, at: &str) {
    let event = json!({"id": format!("refund-{order_id}"), "type": "order.refunded", "member_id": member,
        "occurred_at": at, "order_id": order_id, "refund": {"amount_minor": 5000}});
    let r = app.call("POST", "/v1/events", Some(event)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

fn states_of(list: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), *c))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn every_trigger_and_reward_kind_is_granted_and_a_refund_takes_back_what_it_gave() {
    let app = app_on(Backend::Sqlite, PROGRAMME).await.unwrap();
    let alice = join(&app, "alice", "+1 555 0001", None).await;
    assert_eq!(alice.status, StatusCode::CREATED, "{}", alice.text);
    let code = alice.body["referral_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8, "an 8-character code: {code}");
    assert_eq!(code_of(&app, "alice").await, code, "a code is stable");

    // Join: 100 points to the referrer at once, a coupon to the referee. The code is
    // taken as people type it.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let bob = join(&app, "bob", "+1 555 0002", Some(&typed)).await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.text);
    assert_eq!(bob.body["referred_by"], json!(code));
    assert_eq!(available_points(&app, "alice").await, 100);
    assert_eq!(
        coupons(&app, "bob").await,
        vec![("welcome".into(), "issued".into(), "referral".into())]
    );
    assert_eq!(
        reward_states(&app, "bob").await,
        states_of(&[("join_coupon", "granted", 0), ("join_points", "granted", 0)])
    );
    let a = referrals(&app, "alice").await;
    assert_eq!(a["referred"][0]["member_id"], "bob");
    assert_eq!(
        referrals(&app, "bob").await["referred_by"]["member_id"],
        "alice"
    );

    // First order: the referee's coupon at once (no wait), the referrer's cash once the
    // 7-day return window has passed; a second order sets nothing off.
    order(&app, "bob", "o1", START).await;
    order(&app, "bob", "o2", START).await;
    app.set_clock("2026-11-23T00:00:01Z").await;
    assert_eq!(coupons(&app, "bob").await.len(), 2);
    assert_eq!(
        bonus(&app, "alice").await,
        0,
        "not before the return window"
    );
    app.set_clock("2026-11-29T23:59:59Z").await;
    assert_eq!(
        bonus(&app, "alice").await,
        0,
        "7 days after, exclusive of the end"
    );
    app.set_clock("2026-11-30T00:00:00Z").await;
    assert_eq!(
        bonus(&app, "alice").await,
        1000,
        "granted at the window's end"
    );

    // First plan: cash to the referrer (a quarter of the fee, as Yunji paid) and points to
    // the referee; its refund takes both back.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "bob", "plan": "club", "payment_ref": "pay-club"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sub = r.body["id"].clone();
    assert_eq!(bonus(&app, "alice").await, 11000);
    let bob_points = available_points(&app, "bob").await;
    assert_eq!(
        bob_points,
        100 + 500,
        "two orders' 50 points each, and the plan's 500"
    );
    let r = app
        .call("POST", &format!("/v1/subscriptions/{sub}/refunds"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(bonus(&app, "alice").await, 1000);
    assert_eq!(available_points(&app, "bob").await, 100);

    // The first order refunded in full after its rewards were given: the referrer's cash
    // and the referee's unused coupon are taken back.
    refund_order(&app, "bob", "o1", "2026-11-30T00:00:00Z").await;
    app.set_clock("2026-11-30T00:00:01Z").await;
    assert_eq!(bonus(&app, "alice").await, 0);
    assert_eq!(
        coupons(&app, "bob").await,
        vec![
            ("welcome".into(), "issued".into(), "referral".into()),
            ("welcome".into(), "voided".into(), "referral".into())
        ]
    );
    assert_eq!(
        reward_states(&app, "bob").await,
        states_of(&[
            ("join_coupon", "granted", 0),
            ("join_points", "granted", 0),
            ("order_cash", "clawed_back", 1000),
            ("order_coupon", "clawed_back", 1),
            ("plan_cash", "clawed_back", 10000),
            ("plan_points", "clawed_back", 500),
        ])
    );

    // A first order refunded before its reward is due cancels it; the next order sets it
    // off again.
    let carol = join(&app, "carol", "+1 555 0003", Some(&code)).await;
    assert_eq!(carol.status, StatusCode::CREATED, "{}", carol.text);
    order(&app, "carol", "o3", "2026-11-30T00:00:01Z").await;
    refund_order(&app, "carol", "o3", "2026-11-30T00:00:01Z").await;
    let carol_states = reward_states(&app, "carol").await;
    assert!(
        carol_states.contains(&("order_cash".into(), "canceled".into(), 0)),
        "{carol_states:?}"
    );
    order(&app, "carol", "o4", "2026-12-01T00:00:00Z").await;
    app.set_clock("2026-12-08T00:00:00Z").await;
    assert!(reward_states(&app, "carol").await.contains(&(
        "order_cash".into(),
        "granted".into(),
        0
    )));
    assert_eq!(bonus(&app, "alice").await, 1000);

    // The figures: three members, two referred, one of them paid for a plan.
    let r = app.call("GET", "/v1/referrals", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            &r.body["members"],
            &r.body["referred_members"],
            &r.body["referred_paying"],
            &r.body["unreferred_paying"]
        ),
        (&json!(3), &json!(2), &json!(1), &json!(0))
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn every_refusal_has_its_code() {
    let late = PROGRAMME.replace("late_days = 0", "late_days = 30");
    let app = app_on(Backend::Sqlite, &late).await.unwrap();
    for (id, phone) in [("alice", "1"), ("bob", "2"), ("erin", "5")] {
        let r = join(&app, id, phone, None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        app.set_clock(&format!("2026-11-23T00:00:0{}Z", phone))
            .await;
    }
    let alice = code_of(&app, "alice").await;
    let erin = code_of(&app, "erin").await;
    let r = join(&app, "dan", "4", Some(&alice)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let post_referrer = |member: &'static str, code: String| {
        let app = &app;
        async move {
            app.call_as(
                &app.storefront,
                "POST",
                &format!("/v1/members/{member}/referrer"),
                Some(json!({ "code": code })),
            )
            .await
        }
    };
    // (case, reply, status, code, field)
    let cases: Vec<(&str, Reply, StatusCode, &str, Option<&str>)> = vec![
        (
            "an unknown code",
            join(&app, "x1", "9", Some("ZZZZZZZZ")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "referral_code_unknown",
            Some("referral_code"),
        ),
        (
            "the referrer's phone",
            join(&app, "x2", "1", Some(&alice)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "referral_self",
            Some("referral_code"),
        ),
        (
            "the member's own code",
            post_referrer("alice", alice.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "referral_self",
            Some("code"),
        ),
        (
            "a code of a member who joined later",
            post_referrer("bob", erin.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "referral_self",
            Some("code"),
        ),
        (
            "a second referrer",
            post_referrer("dan", erin.clone()).await,
            StatusCode::CONFLICT,
            "referral_second_referrer",
            Some("code"),
        ),
    ];
    for (case, reply, status, code, field) in cases {
        assert_eq!(reply.status, status, "{case}: {}", reply.text);
        assert_eq!(reply.code(), code, "{case}");
        assert_eq!(reply.body["error"]["field"].as_str(), field, "{case}");
    }
    // Nothing of a refused sign-up was kept.
    let r = app.call("GET", "/v1/members/x2", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Within the late window a code given later is taken; past it, refused.
    let r = post_referrer("erin", alice.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["referred_by"]["member_id"], "alice");
    app.set_clock("2026-12-23T00:00:02Z").await;
    let r = post_referrer("bob", alice.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "referral_too_late")
    );

    // A code at its limit, and a code whose owner closed their account.
    let limited = late.replace("max_referrals_per_code = 40", "max_referrals_per_code = 2");
    let r = app.put_programme(&app.admin, &limited).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = join(&app, "x3", "7", Some(&alice)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "referral_code_unusable"),
        "{}",
        r.text
    );
    let r = app.call("POST", "/v1/members/erin/close", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = join(&app, "x4", "8", Some(&erin)).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "referral_code_unusable")
    );

    // Without a `[referral]` section a code given later is refused as such, and a code at
    // sign-up is kept as given.
    let without = &limited[..limited.find("[referral]").unwrap()];
    let r = app.put_programme(&app.admin, without).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = post_referrer("bob", alice.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "referral_disabled")
    );
    let r = join(&app, "x5", "9", Some("FRIEND-42")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["referred_by"], "FRIEND-42");
}

const CAPPED: &str = r#"
name = "capped"
currency = "USD"
timezone = "UTC"

[points]
earn_points = 1
earn_per_minor = 100

[referral]
cap = { rewards = 10, period = "month" }

[[referral.rewards]]
id = "join_points"
on = "join"
to = "referrer"
points = 100
"#;

async fn thirty_two_joins_on_one_code_give_exactly_the_cap(backend: Backend) {
    let Some(app) = app_on(backend, CAPPED).await else {
        return;
    };
    let r = join(&app, "owner", "0", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let code = r.body["referral_code"].as_str().unwrap().to_owned();
    let app = Arc::new(app);
    let joins = (0..32).map(|i| {
        let (app, code) = (app.clone(), code.clone());
        tokio::spawn(
            async move { join(&app, &format!("j{i}"), &format!("p{i}"), Some(&code)).await },
        )
    });
    for j in joins {
        let r = j.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // Every reward is settled by the sign-up or by the clock's next run.
    app.set_clock("2026-11-23T00:00:01Z").await;
    assert_eq!(
        available_points(&app, "owner").await,
        1000,
        "10 rewards of 100"
    );
    let mut granted = 0;
    let mut capped = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/members/owner/referrals?limit=10&cursor={c}"),
            None => "/v1/members/owner/referrals?limit=10".to_owned(),
        };
        let r = app.call("GET", &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for referee in r.body["referred"].as_array().unwrap() {
            match referee["rewards"][0]["state"].as_str().unwrap() {
                "granted" => granted += 1,
                "capped" => capped += 1,
                other => panic!("a reward {other}"),
            }
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!((granted, capped), (10, 22));
    // A new month opens the cap again.
    app.set_clock("2026-12-01T00:00:00Z").await;
    let r = join(&app, "december", "d", Some(&code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(available_points(&app, "owner").await, 1100);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn thirty_two_joins_on_one_code_give_exactly_the_cap_on_sqlite() {
    thirty_two_joins_on_one_code_give_exactly_the_cap(Backend::Sqlite).await;
}

#[tokio::test]
async fn thirty_two_joins_on_one_code_give_exactly_the_cap_on_postgres() {
    thirty_two_joins_on_one_code_give_exactly_the_cap(Backend::Postgres).await;
}

const PLAN_DAYS: &str = r#"
name = "plan days"
currency = "USD"
timezone = "UTC"

[[plans]]
id = "club"
term = "year"
price_minor = 39800
refund = { policy = "full" }

[referral]

[[referral.rewards]]
id = "join_days"
on = "join"
to = "referee"
plan_days = { plan = "club", days = 30 }

[[referral.rewards]]
id = "plan_days"
on = "first_plan"
to = "referrer"
plan_days = { plan = "club", days = 60 }
"#;

/// (plan, until) of each plan a member holds now.
async fn holds(app: &TestApp, member: &str) -> Vec<(String, String)> {
    let r = app
        .call("GET", &format!("/v1/members/{member}/entitlements"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["plan"].as_str().unwrap().to_owned(),
                p["until"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn plan_days_start_a_plan_or_extend_the_running_one_and_are_taken_back() {
    let app = app_on(Backend::Sqlite, PLAN_DAYS).await.unwrap();
    let alice = join(&app, "alice", "1", None).await;
    let code = alice.body["referral_code"].as_str().unwrap().to_owned();
    let buy = |member: &'static str, payment_ref: &'static str| {
        let app = &app;
        async move {
            let r = app
                .call_as(
                    &app.storefront,
                    "POST",
                    "/v1/subscriptions",
                    Some(json!({"member_id": member, "plan": "club", "payment_ref": payment_ref})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.body["id"].clone()
        }
    };
    buy("alice", "pay-a").await;
    assert_eq!(
        holds(&app, "alice").await,
        [("club".into(), "2027-11-23T00:00:00Z".into())]
    );

    // Joining gives bob 30 days of the club from now: a subscription of its own.
    let r = join(&app, "bob", "2", Some(&code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        holds(&app, "bob").await,
        [("club".into(), "2026-12-23T00:00:00Z".into())]
    );

    // Bob's first paid year follows his free days; alice's 60 days follow her paid year.
    let bobs = buy("bob", "pay-b").await;
    assert_eq!(
        holds(&app, "bob").await,
        [("club".into(), "2027-12-23T00:00:00Z".into())]
    );
    assert_eq!(
        holds(&app, "alice").await,
        [("club".into(), "2028-01-22T00:00:00Z".into())]
    );

    // Bob's plan refunded: alice's 60 days, not begun, are taken back whole.
    let r = app
        .call("POST", &format!("/v1/subscriptions/{bobs}/refunds"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        holds(&app, "alice").await,
        [("club".into(), "2027-11-23T00:00:00Z".into())]
    );
    let states = reward_states(&app, "bob").await;
    assert_eq!(
        states,
        states_of(&[
            ("join_days", "granted", 0),
            ("plan_days", "clawed_back", 60)
        ])
    );
    let r = referrals(&app, "bob").await;
    assert_eq!(r["rewards"][0]["plan"], "club", "{r}");
}

const OWED: &str = r#"
name = "owed"
currency = "USD"
timezone = "UTC"

[points]
earn_points = 1
earn_per_minor = 100

[[plans]]
id = "club"
term = "year"
price_minor = 39800
refund = { policy = "full" }

[referral]
late_days = 30

[[referral.rewards]]
id = "plan_points"
on = "first_plan"
to = "referee"
points = 500

[[referral.rewards]]
id = "order_points"
on = "first_order"
to = "referrer"
points = 50
wait_days = 0
"#;

#[tokio::test]
async fn what_cannot_be_taken_back_yet_stays_owed_and_old_orders_set_nothing_off() {
    let app = app_on(Backend::Sqlite, OWED).await.unwrap();
    let alice = join(&app, "alice", "1", None).await;
    let code = alice.body["referral_code"].as_str().unwrap().to_owned();
    let r = join(&app, "bob", "2", Some(&code)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "bob", "plan": "club", "payment_ref": "pay-b"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sub = r.body["id"].clone();
    assert_eq!(available_points(&app, "bob").await, 500);
    // Bob spends 400 of the 500, then his plan is refunded: 100 is taken back now, the
    // other 400 stays owed.
    let r = app
        .call(
            "POST",
            "/v1/members/bob/points/redemptions",
            Some(json!({"id": "spend", "points": 400})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call("POST", &format!("/v1/subscriptions/{sub}/refunds"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(available_points(&app, "bob").await, 0);
    assert_eq!(
        reward_states(&app, "bob").await,
        states_of(&[("plan_points", "clawback_due", 100)])
    );
    // Points come back to him (here by hand); the next try, an hour on, takes the rest.
    let r = app
        .call(
            "POST",
            "/v1/members/bob/points/adjustments",
            Some(json!({"id": "goodwill", "points": 1000, "reason": "goodwill"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.set_clock("2026-11-23T00:59:59Z").await;
    assert_eq!(
        available_points(&app, "bob").await,
        1000,
        "not before the hour"
    );
    app.set_clock("2026-11-23T01:00:00Z").await;
    assert_eq!(available_points(&app, "bob").await, 600);
    assert_eq!(
        reward_states(&app, "bob").await,
        states_of(&[("plan_points", "clawed_back", 500)])
    );

    // A code given later (within late_days): an order from before the referral sets
    // nothing off, the next one does; the same code again answers as the first time.
    app.add_member("carol").await;
    let early = json!({"id": "c-early", "type": "order.paid", "member_id": "carol",
        "occurred_at": "2026-11-23T01:00:00Z", "order_id": "c-1",
        "lines": [{"sku": "A1", "category": "books", "quantity": 1, "unit_price_minor": 5000}],
        "shipping_minor": 0, "total_minor": 5000});
    app.set_clock("2026-11-23T02:00:00Z").await;
    for _ in 0..2 {
        let r = app
            .call_as(
                &app.storefront,
                "POST",
                "/v1/members/carol/referrer",
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app.call("POST", "/v1/events", Some(early)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.set_clock("2026-11-23T02:00:01Z").await;
    assert!(reward_states(&app, "carol").await.is_empty());
    let late = json!({"id": "c-late", "type": "order.paid", "member_id": "carol",
        "occurred_at": "2026-11-23T02:00:01Z", "order_id": "c-2",
        "lines": [{"sku": "A1", "category": "books", "quantity": 1, "unit_price_minor": 5000}],
        "shipping_minor": 0, "total_minor": 5000});
    let r = app.call("POST", "/v1/events", Some(late)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.set_clock("2026-11-23T02:00:02Z").await;
    assert_eq!(
        reward_states(&app, "carol").await,
        states_of(&[("order_points", "granted", 0)])
    );

    // A closed or erased member is given no code.
    for step in ["close", "erase"] {
        let r = app
            .call("POST", &format!("/v1/members/carol/{step}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app
        .call("GET", "/v1/members/erased-3/referrals", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["code"], json!(null), "{}", r.text);
    app.assert_ledger_balanced().await;
}
