use crate::helpers::*;

/// (what, file, line, field) — each file refused at that line and field.
pub const BAD_FILES: &[(&str, &str, u32, &str)] = &[
    ("unknown key", "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\ncolour = \"red\"\n", 4, "colour"),
    ("wrong type", "name = \"x\"\ncurrency = 156\ntimezone = \"UTC\"\n", 2, "currency"),
    ("bad currency", "name = \"x\"\ncurrency = \"RMB1\"\ntimezone = \"UTC\"\n", 2, "currency"),
    ("bad time zone", "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"Asia/Beijing\"\n", 3, "timezone"),
    ("bad expression", "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n\n[[segments]]\nname = \"a\"\ncondition = \"member.score >= \"\n", 7, "segments[0].condition"),
    ("unknown variable", "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n\n[[segments]]\nname = \"a\"\ncondition = \"cart.total > 0\"\n", 7, "segments[0].condition"),
    ("dangling reference", "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n\n[[activities]]\nname = \"quiz\"\nsegment = \"ghosts\"\n", 7, "activities[0].segment"),
    ("unknown key in a section", "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n\n[[activities]]\nname = \"quiz\"\npoints = 5\n", 7, "activities[0].points"),
];

#[tokio::test]
async fn bad_files_are_refused_with_line_and_field_and_the_running_version_stays() {
    let app = TestApp::sqlite().await;
    let before = app.call("GET", "/v1/programme", None).await.body;
    assert_eq!(before["version"], 1);
    for (what, file, line, field) in BAD_FILES {
        let r = app.put_programme(&app.admin, file).await;
        assert_eq!(r.status, 422, "{what}: {}", r.text);
        assert_eq!(r.code(), "programme_invalid", "{what}");
        let detail = &r.body["error"]["details"][0];
        assert_eq!(detail["line"], *line, "{what}: {}", r.text);
        assert_eq!(detail["field"], *field, "{what}: {}", r.text);
        assert_eq!(
            app.call("GET", "/v1/programme", None).await.body,
            before,
            "{what}: the running version changed"
        );
    }
    assert_eq!(
        app.call("GET", "/v1/programme/versions", None).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn accepted_versions_are_numbered_and_kept() {
    let app = TestApp::sqlite().await;
    let v2 = DEMO.replace("Tessera demo shop", "Second");
    let r = app.put_programme(&app.admin, &v2).await;
    assert_eq!(
        (r.status.as_u16(), r.body["version"].as_i64()),
        (200, Some(2)),
        "{}",
        r.text
    );
    assert_eq!(r.body["name"], "Second");
    assert_eq!(r.body["currency"], "CNY");
    assert_eq!(r.body["minor_units"], 2);
    // The same file again is not a new version.
    assert_eq!(app.put_programme(&app.admin, &v2).await.body["version"], 2);
    let v3 = DEMO.replace("Tessera demo shop", "Third");
    assert_eq!(app.put_programme(&app.admin, &v3).await.body["version"], 3);
    let page = app
        .call("GET", "/v1/programme/versions?limit=2", None)
        .await;
    let versions: Vec<_> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .call(
            "GET",
            &format!("/v1/programme/versions?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(rest.body["items"][0]["version"], 1);
    assert!(rest.body["next_cursor"].is_null());
}

/// Eight programme saves at once on both databases: each gets its own version, none a 5xx.
async fn concurrent_saves_each_get_a_version(backend: tessera_testkit::Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let source = DEMO.replacen("Tessera demo shop", &format!("Shop {n}"), 1);
            app.put_programme(&app.admin.clone(), &source).await
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.status.is_success(), "{} {}", r.status, r.text);
    }
    let versions = app
        .call("GET", "/v1/programme/versions?limit=50", None)
        .await;
    assert_eq!(
        versions.body["items"].as_array().unwrap().len(),
        9,
        "{}",
        versions.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_each_get_a_version_sqlite() {
    concurrent_saves_each_get_a_version(tessera_testkit::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_each_get_a_version_postgres() {
    concurrent_saves_each_get_a_version(tessera_testkit::Backend::Postgres).await;
}

/// `GET /v1/programme` shows every section in structured form: the typed briefs, and the
/// whole file as JSON.
#[tokio::test]
async fn the_running_programme_shows_every_section() {
    let app = TestApp::sqlite().await;
    let p = app.call("GET", "/v1/programme", None).await.body;
    let ids = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&p["plans"]), ["plus", "vip88"], "{p}");
    assert_eq!(p["plans"][0]["term"], "1 year");
    assert_eq!(p["plans"][0]["trial_days"], 30);
    assert_eq!(
        p["plans"][0]["partner_rights"],
        serde_json::json!(["iqiyi_vip"])
    );
    assert!(ids(&p["benefits"]).contains(&"plus_prices".to_owned()));
    assert_eq!(ids(&p["coupons"]), ["ten_off_99", "books_20", "free_ship"]);
    assert_eq!(p["coupons"][1]["kind"], "percent_off");
    assert_eq!(
        ids(&p["stored_value_offers"]),
        ["pay_1000_get_1100", "pay_500_get_520"]
    );
    assert!(p["score_rules"].as_array().is_some_and(|r| !r.is_empty()));
    // Every section of the file, every key.
    let file = &p["file"];
    for section in [
        "segments",
        "activities",
        "points",
        "score",
        "tiers",
        "tier_rules",
        "plans",
        "benefits",
        "coupons",
        "stored_value",
    ] {
        assert!(!file[section].is_null(), "{section} missing from {file}");
    }
    assert_eq!(file["plans"][0]["refund"]["policy"], "full_within_days");
}
