//! Programme changes against what members hold: every change that would strand a holder
//! is refused with `programme_strands_value` and the members it touches, the dry run
//! answers the same without saving, and safe changes (renames with `renamed_from`
//! included) are saved with holders still entitled and refundable.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::json;

/// The running programme: a plan with a benefit, two tiers reached live, a coupon
/// template and points.
const BASE: &str = r#"name = "t"
currency = "USD"
timezone = "UTC"

[points]
earn_points = 1
earn_per_minor = 100

[score]
window = { kind = "lifetime" }

[[score.rules]]
name = "spend"
on = "order"
score = 1
per_minor = 100

[[tiers]]
name = "base"
threshold = 0

[[tiers]]
name = "gold"
threshold = 10

[[tiers]]
name = "diamond"
threshold = 1000

[tier_rules]
evaluation = { schedule = "anniversary" }
settlement = "live"

[[plans]]
id = "plus"
term = "year"
price_minor = 10000
refund = { policy = "full" }

[[benefits]]
id = "ship"
kind = "free_shipping"
plans = ["plus"]

[[coupons]]
id = "ten"
kind = "amount_off"
amount_minor = 1000
valid_days = 30
"#;

/// `m-plan` holds plan `plus`, `m-gold` holds tier `gold` and has points, `m-coupon`
/// holds an unused coupon `ten`.
async fn app_with_holders() -> TestApp {
    let app = TestApp::sqlite().await;
    let r = app.put_programme(&app.admin, BASE).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for m in ["m-plan", "m-gold", "m-coupon"] {
        app.add_member(m).await;
    }
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "m-plan", "plan": "plus", "payment_ref": "pay-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call("POST", "/v1/events", Some(paid("e-gold", "m-gold")))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(tier(&app, "m-gold").await, "gold");
    crate::orders::coupon(&app, "m-coupon", "ten").await;
    app
}

async fn tier(app: &TestApp, member: &str) -> String {
    let r = app
        .call("GET", &format!("/v1/members/{member}/tier"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["tier"].as_str().unwrap_or_default().to_owned()
}

async fn dry_run(app: &TestApp, source: &str) -> Reply {
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/programme/dry-run")
        .header("authorization", format!("Bearer {}", app.admin))
        .body(axum::body::Body::from(source.to_owned()))
        .unwrap();
    app.send(req).await
}

/// Each change that would strand a holder: (what, the new file, the section and id
/// named, the members counted).
#[tokio::test]
async fn stranding_changes_are_refused_with_their_code_and_count() {
    let app = app_with_holders().await;
    let without_plan = BASE
        .replace("[[plans]]\nid = \"plus\"\nterm = \"year\"\nprice_minor = 10000\nrefund = { policy = \"full\" }\n", "")
        .replace("plans = [\"plus\"]", "tiers = [\"gold\"]");
    let cases: Vec<(&str, String, &str, &str, i64)> = vec![
        ("a plan with a live subscription removed", without_plan, "plans", "plus", 1),
        (
            "a plan renamed without renamed_from",
            BASE.replace("id = \"plus\"", "id = \"prime\"")
                .replace("plans = [\"plus\"]", "plans = [\"prime\"]"),
            "plans",
            "plus",
            1,
        ),
        (
            "a tier a member holds removed",
            BASE.replace("[[tiers]]\nname = \"gold\"\nthreshold = 10\n", ""),
            "tiers",
            "gold",
            1,
        ),
        (
            "a coupon template with a live coupon removed",
            BASE.replace("[[coupons]]\nid = \"ten\"\nkind = \"amount_off\"\namount_minor = 1000\nvalid_days = 30\n", ""),
            "coupons",
            "ten",
            1,
        ),
        (
            "the currency of a ledger with entries",
            BASE.replace("currency = \"USD\"", "currency = \"EUR\""),
            "currency",
            "currency",
            1,
        ),
        (
            "the time zone of a ledger with entries",
            BASE.replace("timezone = \"UTC\"", "timezone = \"Asia/Shanghai\""),
            "timezone",
            "timezone",
            1,
        ),
    ];
    let before = app.call("GET", "/v1/programme", None).await.body;
    for (what, source, section, id, members) in &cases {
        let dry = dry_run(&app, source).await;
        assert_eq!(dry.status, StatusCode::OK, "{what}: {}", dry.text);
        assert_eq!(dry.body["accepted"], false, "{what}: {}", dry.text);
        let r = app.put_programme(&app.admin, source).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{what}: {}", r.text);
        assert_eq!(r.code(), "programme_strands_value", "{what}");
        let stranded = &r.body["error"]["stranded"];
        assert_eq!(
            stranded.as_array().map(Vec::len),
            Some(1),
            "{what}: {}",
            r.text
        );
        assert_eq!(stranded[0]["section"], *section, "{what}: {}", r.text);
        assert_eq!(stranded[0]["id"], *id, "{what}: {}", r.text);
        assert_eq!(stranded[0]["members"], *members, "{what}: {}", r.text);
        assert_eq!(
            dry.body["stranded"], *stranded,
            "{what}: the dry run answers the same"
        );
        assert_eq!(
            app.call("GET", "/v1/programme", None).await.body,
            before,
            "{what}: nothing was saved"
        );
    }
}

/// Safe changes are saved: a price changed, a plan added, a benefit removed (reported
/// with the members who had it), and a plan, tier and coupon template renamed with
/// `renamed_from`, after which their holders still hold them under the new ids and the
/// plan's subscription is still refundable.
#[tokio::test]
async fn safe_changes_and_renames_are_saved_and_holders_keep_what_they_hold() {
    let app = app_with_holders().await;
    // A threshold raised past a holder's score: the tier stays, and the dry run says who
    // would move at their next evaluation.
    let higher = BASE.replace(
        "name = \"gold\"\nthreshold = 10",
        "name = \"gold\"\nthreshold = 100",
    );
    let dry = dry_run(&app, &higher).await;
    assert_eq!(dry.body["accepted"], true, "{}", dry.text);
    assert_eq!(dry.body["members_changing_tier"], 1, "{}", dry.text);
    assert_eq!(dry.body["changes"][0]["id"], "gold", "{}", dry.text);
    assert_eq!(dry.body["changes"][0]["change"], "changed", "{}", dry.text);
    let dry = dry_run(&app, BASE).await;
    assert_eq!(dry.body["members_changing_tier"], 0, "{}", dry.text);
    let repriced = BASE.replace("price_minor = 10000", "price_minor = 12000");
    let added =
        format!("{repriced}\n[[plans]]\nid = \"lite\"\nterm = \"month\"\nprice_minor = 900\n");
    let no_benefit = added.replace(
        "[[benefits]]\nid = \"ship\"\nkind = \"free_shipping\"\nplans = [\"plus\"]\n",
        "",
    );
    let renamed = no_benefit
        .replace("id = \"plus\"", "id = \"prime\"\nrenamed_from = \"plus\"")
        .replace(
            "name = \"gold\"",
            "name = \"golden\"\nrenamed_from = \"gold\"",
        )
        .replace("id = \"ten\"", "id = \"tenner\"\nrenamed_from = \"ten\"");
    // (what, the file, the changes expected: section, id, change, members)
    type Expected<'a> = Vec<(&'a str, &'a str, &'a str, i64)>;
    let steps: Vec<(&str, &str, Expected)> = vec![
        (
            "a price changed",
            &repriced,
            vec![("plans", "plus", "changed", 0)],
        ),
        ("a plan added", &added, vec![("plans", "lite", "added", 0)]),
        (
            "a benefit removed",
            &no_benefit,
            vec![("benefits", "ship", "removed", 1)],
        ),
        (
            "a plan, a tier and a coupon template renamed",
            &renamed,
            vec![
                ("plans", "prime", "renamed", 1),
                ("tiers", "golden", "renamed", 1),
                ("coupons", "tenner", "renamed", 1),
            ],
        ),
    ];
    for (what, source, expected) in &steps {
        let dry = dry_run(&app, source).await;
        assert_eq!(dry.status, StatusCode::OK, "{what}: {}", dry.text);
        assert_eq!(dry.body["accepted"], true, "{what}: {}", dry.text);
        let changes: Vec<(String, String, String, i64)> = dry.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["section"].as_str().unwrap().to_owned(),
                    c["id"].as_str().unwrap().to_owned(),
                    c["change"].as_str().unwrap().to_owned(),
                    c["members"].as_i64().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, String, String, i64)> = expected
            .iter()
            .map(|(s, i, c, m)| ((*s).to_owned(), (*i).to_owned(), (*c).to_owned(), *m))
            .collect();
        assert_eq!(changes, expected, "{what}: {}", dry.text);
        let r = app.put_programme(&app.admin, source).await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
    }
    // The holders hold what they held, under the new ids.
    let r = app
        .call("GET", "/v1/members/m-plan/entitlements", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["plans"][0]["plan"], "prime", "{}", r.text);
    assert_eq!(tier(&app, "m-gold").await, "golden");
    let r = app.call("GET", "/v1/members/m-coupon/coupons", None).await;
    assert_eq!(r.body["items"][0]["template"], "tenner", "{}", r.text);
    assert_eq!(r.body["items"][0]["state"], "issued", "{}", r.text);
    // The renamed plan's subscription is refundable, by its policy.
    let subscription = &app
        .call("GET", "/v1/members/m-plan/subscriptions", None)
        .await
        .body["items"][0];
    assert_eq!(subscription["plan"], "prime");
    let r = app
        .call(
            "POST",
            &format!("/v1/subscriptions/{}/refunds", subscription["id"]),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["calculation"]["refund_minor"], 10000, "{}", r.text);
    // The same renames again are no change: the old ids are gone from the running version.
    let dry = dry_run(&app, &renamed).await;
    assert_eq!(dry.body["changes"], json!([]), "{}", dry.text);
    app.assert_ledger_balanced().await;
}
