//! The `tessera` binary, run as a user runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use tessera_testkit::{Backend, TestDb};

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

const BAD_FILES: &[(&str, &str, &str)] = &[
    ("name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\ncolour = \"red\"\n", "4:1: colour: unknown field", "unknown key"),
    ("name = \"x\"\ncurrency = 156\ntimezone = \"UTC\"\n", "2:12: currency: invalid type", "wrong type"),
    ("name = \"x\"\ncurrency = \"RMB1\"\ntimezone = \"UTC\"\n", "2:12: currency:", "bad currency"),
    ("name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"Asia/Beijing\"\n", "3:12: timezone:", "bad time zone"),
    ("name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n[[segments]]\nname = \"a\"\ncondition = \"member.score >= \"\n", "6:30: segments[0].condition: not a valid CEL", "bad expression"),
    ("name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n[[activities]]\nname = \"quiz\"\nsegment = \"ghosts\"\n", "6:11: activities[0].segment: no segment is named `ghosts`", "dangling reference"),
];

#[test]
fn programme_check_reports_line_field_and_reason() {
    let dir = std::env::temp_dir();
    for (i, (source, expected, what)) in BAD_FILES.iter().enumerate() {
        let path = dir.join(format!("tessera-check-{}-{i}.toml", std::process::id()));
        std::fs::write(&path, source).unwrap();
        let out = tessera()
            .args(["programme", "check"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {stdout}");
        assert!(
            stdout.contains(expected),
            "{what}: `{stdout}` lacks `{expected}`"
        );
    }
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../programmes/demo.toml");
    let out = tessera()
        .args(["programme", "check", demo])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn programme_check_takes_many_files_and_fails_if_any_is_refused() {
    let presets = concat!(env!("CARGO_MANIFEST_DIR"), "/../../presets");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(presets)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    let out = tessera()
        .args(["programme", "check"])
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.matches(": ok (").count(), 7, "{stdout}");
    let bad = std::env::temp_dir().join(format!("tessera-check-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, BAD_FILES[0].0).unwrap();
    let out = tessera()
        .args(["programme", "check"])
        .arg(&files[0])
        .arg(&bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(
        stdout.matches(": ok (").count(),
        1,
        "the good file is still checked: {stdout}"
    );
}

#[test]
fn presets_are_listed_and_printed() {
    let out = tessera().args(["presets"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            "jd-plus",
            "taobao-88vip",
            "costco",
            "amazon-prime",
            "sephora",
            "starbucks",
            "yunji"
        ]
    );
    let out = tessera().args(["presets", "costco"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../presets/costco.toml"
        ))
        .unwrap()
    );
    let out = tessera().args(["presets", "nope"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no preset `nope`"));
}

struct Server {
    child: Child,
    address: String,
    admin_key: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(database: &str) -> Server {
    serve_with(database, &[], "warn", Stdio::null())
}

/// `serve --demo` on a manual clock with `extra` arguments, the log filter `log`, and its
/// stderr going to `stderr`.
fn serve_with(database: &str, extra: &[&str], log: &str, stderr: Stdio) -> Server {
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let key_file = std::env::temp_dir().join(format!(
        "tessera-cli-key-{}-{}",
        std::process::id(),
        STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut child = tessera()
        .args([
            "serve",
            "--demo",
            "--clock",
            "manual",
            "--listen",
            "127.0.0.1:0",
            "--database",
            database,
            "--admin-key-file",
            key_file.to_str().unwrap(),
        ])
        .args(extra)
        .env("TESSERA_LOG", log)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin_key = None;
    let address = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        assert!(!line.contains("tsk_"), "a key on stdout: {line}");
        if line.starts_with("Created the first admin API key in") {
            // Stdout is a pipe: the key is in the file, which only its owner may read.
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            admin_key = Some(
                std::fs::read_to_string(&key_file)
                    .unwrap()
                    .trim()
                    .to_owned(),
            );
            std::fs::remove_file(&key_file).unwrap();
        }
        if let Some(rest) = line.strip_prefix("Tessera is listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    Server {
        child,
        address,
        admin_key,
    }
}

/// A minimal HTTP/1.1 exchange, enough for a smoke test without an HTTP client crate.
fn http(
    address: &str,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn serve_and_use(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(TestDb::new(backend)) else {
        return;
    };
    let server = serve(&db.url);
    let admin = server
        .admin_key
        .clone()
        .expect("an empty database gets an admin key");
    let (status, health) = http(&server.address, "GET", "/healthz", "", "");
    assert_eq!(
        (status, health["programme_version"].as_i64()),
        (200, Some(1))
    );
    let (status, _) = http(
        &server.address,
        "POST",
        "/v1/members",
        &admin,
        r#"{"member_id":"u1"}"#,
    );
    assert_eq!(status, 201);
    // `keys create` prints the key alone; the running server accepts it.
    let out = tessera()
        .args([
            "keys",
            "create",
            "--role",
            "storefront",
            "--database",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(
        key.starts_with("tsk_") && key.trim_end() == key.trim() && key.lines().count() == 1,
        "{key:?}"
    );
    let (status, member) = http(&server.address, "GET", "/v1/members/u1", key.trim(), "");
    assert_eq!((status, member["status"].as_str()), (200, Some("active")));
    let (status, refused) = http(
        &server.address,
        "PUT",
        "/v1/programme",
        key.trim(),
        "name = \"x\"",
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    // The demo sells PLUS at once: its iQIYI code pool is filled at start.
    let (status, plus) = http(
        &server.address,
        "POST",
        "/v1/subscriptions",
        &admin,
        r#"{"member_id":"u1","plan":"plus","payment_ref":"pay-1"}"#,
    );
    assert_eq!(status, 201, "{plus}");
    assert_eq!(plus["partner_codes"][0]["code"], "DEMO-IQIYI-0001");
    // A partner key is bound to its partner and sees only its rights.
    let partner_key = |partner: &str| {
        let out = tessera()
            .args([
                "keys",
                "create",
                "--role",
                "partner",
                "--partner",
                partner,
                "--database",
                &db.url,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (status, check) = http(
        &server.address,
        "GET",
        "/v1/partner/members/u1",
        &partner_key("iqiyi"),
        "",
    );
    assert_eq!(
        (status, &check["holds"]),
        (200, &serde_json::json!(true)),
        "{check}"
    );
    let (_, check) = http(
        &server.address,
        "GET",
        "/v1/partner/members/u1",
        &partner_key("youku"),
        "",
    );
    assert_eq!(check["holds"], false, "{check}");
    let refused = tessera()
        .args([
            "keys",
            "create",
            "--role",
            "storefront",
            "--partner",
            "x",
            "--database",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    drop(server);
    // A second start on the same database prints no new admin key and keeps the data.
    let again = serve(&db.url);
    assert_eq!(again.admin_key, None);
    let (status, _) = http(&again.address, "GET", "/v1/members/u1", &admin, "");
    assert_eq!(status, 200);
}

#[test]
fn serve_on_sqlite() {
    serve_and_use(Backend::Sqlite);
}

#[test]
fn serve_on_postgres() {
    serve_and_use(Backend::Postgres);
}

#[test]
fn migrate_and_bad_database_urls() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(TestDb::new(Backend::Sqlite)).unwrap();
    assert!(tessera()
        .args(["migrate", "--database", &db.url])
        .status()
        .unwrap()
        .success());
    let out = tessera()
        .args(["migrate", "--database", "mysql://localhost/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

/// `tessera check` refuses a database that does not exist, and creates nothing.
#[test]
fn check_refuses_a_missing_database() {
    let path = std::env::temp_dir().join(format!("tessera-missing-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let out = tessera()
        .args(["check", "--database", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the database"), "{stderr}");
    assert!(!path.exists(), "check created {}", path.display());
    // A file that is not a Tessera database is refused as well.
    std::fs::write(&path, b"").unwrap();
    let out = tessera()
        .args(["check", "--database", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Tessera schema"));
    let _ = std::fs::remove_file(&path);
}

/// `tessera check` passes on a ledger the server wrote, and names a broken invariant.
fn check_on(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(TestDb::new(backend)) else {
        return;
    };
    let server = serve(&db.url);
    let admin = server.admin_key.clone().unwrap();
    let post = |path: &str, body: &str| http(&server.address, "POST", path, &admin, body).0;
    assert_eq!(post("/v1/members", r#"{"member_id":"u1"}"#), 201);
    let order = r#"{"id":"e1","type":"order.paid","member_id":"u1","occurred_at":"2026-01-01T00:00:00Z","order_id":"o1",
        "lines":[{"sku":"A","category":"books","quantity":1,"unit_price_minor":12000}],"total_minor":12000}"#;
    assert_eq!(post("/v1/events", order), 201);
    assert_eq!(
        post(
            "/v1/members/u1/points/adjustments",
            r#"{"id":"a1","points":500,"reason":"welcome"}"#
        ),
        201
    );
    assert_eq!(
        post(
            "/v1/members/u1/points/redemptions",
            r#"{"id":"r1","points":150}"#
        ),
        201
    );
    drop(server);
    let out = tessera()
        .args(["check", "--database", &db.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ledger balanced"), "{stdout}");
    assert!(stdout.contains("members checked: 1"), "{stdout}");
    // The order earned 120 (a late event: available at once) + 100 first-order bonus;
    // 500 were credited and 150 redeemed: 570 outstanding.
    assert!(
        stdout.contains("points outstanding on members' accounts: 570"),
        "{stdout}"
    );
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = db.url.replace("sqlite://", "sqlite:");
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE point_accounts SET available = available + 7")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let out = tessera()
        .args(["check", "--database", &db.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("available balance 577 but available lots hold 570"),
        "{stdout}"
    );
    assert!(stdout.contains("members hold 577"), "{stdout}");
}

#[test]
fn check_on_sqlite() {
    check_on(Backend::Sqlite);
}

#[test]
fn check_on_postgres() {
    check_on(Backend::Postgres);
}

#[test]
fn bench_ingest_runs_and_leaves_a_balanced_ledger() {
    let out = tessera()
        .args([
            "bench",
            "ingest",
            "--orders",
            "300",
            "--members",
            "20",
            "--batch",
            "100",
            "--concurrency",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| sqlite | 300 | 100 | 2 |") && stdout.contains("| balanced |"),
        "{stdout}"
    );
}

#[test]
fn bench_quote_sets_up_its_member_and_measures_every_route() {
    let out = tessera()
        .args(["bench", "quote", "--quotes", "200", "--concurrency", "2"])
        .env("TESSERA_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "| bare axum, parse the cart | 200 | 2 |",
        "| Tessera POST /v1/quotes, no member (no reads) | 200 | 2 |",
        "| Tessera POST /v1/quotes, the member | 200 | 2 |",
        "| Tessera POST /v1/quotes, the member, holdings read every time | 50 | 2 |",
    ] {
        assert!(stdout.contains(row), "{row} in {stdout}");
    }
}

/// Runs `serve` expecting it to refuse to start; returns what it printed to stderr.
fn serve_refused(args: &[&str]) -> String {
    let mut child = tessera()
        .arg("serve")
        .args(args)
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve {args:?} started instead of refusing");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// Two `serve` processes on one database run one programme: a version saved through one
/// is priced and earned by the other within 2 s. A restart with `--demo` keeps the saved
/// version; another `--programme` file is refused unless `--replace-programme` asks.
fn two_processes_run_one_programme(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(TestDb::new(backend)) else {
        return;
    };
    let a = serve(&db.url);
    let admin = a.admin_key.clone().unwrap();
    let b = serve(&db.url);
    let version = |server: &Server| {
        http(&server.address, "GET", "/healthz", "", "").1["programme_version"].as_i64()
    };
    assert_eq!((version(&a), version(&b)), (Some(1), Some(1)));
    let earned = |server: &Server, member: &str| {
        let body = format!(r#"{{"member_id":"{member}"}}"#);
        assert_eq!(
            http(&server.address, "POST", "/v1/members", &admin, &body).0,
            201
        );
        let order = format!(
            r#"{{"id":"e-{member}","type":"order.paid","member_id":"{member}","occurred_at":"2026-11-02T00:00:00Z","order_id":"o-{member}",
            "lines":[{{"sku":"A","category":"misc","quantity":1,"unit_price_minor":12000}}],"total_minor":12000}}"#
        );
        assert_eq!(
            http(&server.address, "POST", "/v1/events", &admin, &order).0,
            201
        );
        let (_, points) = http(
            &server.address,
            "GET",
            &format!("/v1/members/{member}/points"),
            &admin,
            "",
        );
        points["balances"]["pending"].as_i64().unwrap()
            + points["balances"]["available"].as_i64().unwrap()
    };
    let before = earned(&b, "u0");
    let demo = include_str!("../../../programmes/demo.toml");
    let richer = demo.replacen("earn_points = 1\n", "earn_points = 10\n", 1);
    assert_ne!(richer, demo);
    let (status, saved) = http(&a.address, "PUT", "/v1/programme", &admin, &richer);
    assert_eq!(status, 200, "{saved}");
    let saved_at = std::time::Instant::now();
    while version(&b) != Some(2) {
        assert!(
            saved_at.elapsed() < std::time::Duration::from_secs(2),
            "the other process still runs version 1"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    // The same order earns the same on both processes, by the new version.
    let (on_a, on_b) = (earned(&a, "u1"), earned(&b, "u2"));
    assert_eq!(on_a, on_b);
    assert!(on_b > before, "version 2 earns more: {before} then {on_b}");

    // A key revoked through one process (or the CLI) is refused by every one within 2 s.
    let out = tessera()
        .args([
            "keys",
            "create",
            "--role",
            "storefront",
            "--label",
            "till 4",
            "--database",
            &db.url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let till = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let member = |server: &Server| http(&server.address, "GET", "/v1/members/u1", &till, "").0;
    assert_eq!((member(&a), member(&b)), (200, 200));
    let (_, keys) = http(&a.address, "GET", "/v1/admin/keys", &admin, "");
    let id = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "till 4")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = http(
        &a.address,
        "POST",
        &format!("/v1/admin/keys/{id}/revoke"),
        &admin,
        "",
    );
    assert_eq!(status, 200);
    let revoked_at = std::time::Instant::now();
    while member(&b) != 401 {
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(2),
            "the other process still takes the revoked key"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(member(&a), 401);
    let listed = tessera()
        .args(["keys", "list", "--database", &db.url])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed
            .lines()
            .any(|l| l.ends_with("till 4") && l.contains("storefront")),
        "{listed}"
    );

    // A restart with `--demo` does not undo the saved version.
    drop(b);
    let b = serve(&db.url);
    assert_eq!(version(&b), Some(2));
    // Another file is refused at start, and loaded when asked to replace.
    let file = std::env::temp_dir().join(format!(
        "tessera-two-{}-{backend:?}.toml",
        std::process::id()
    ));
    std::fs::write(
        &file,
        demo.replacen("earn_points = 1\n", "earn_points = 3\n", 1),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let args = [
        "--clock",
        "manual",
        "--listen",
        "127.0.0.1:0",
        "--database",
        &db.url,
        "--programme",
        path,
    ];
    let err = serve_refused(&args);
    assert!(
        err.contains("runs programme version 2") && err.contains("--replace-programme"),
        "{err}"
    );
    assert_eq!(version(&a), Some(2), "a refused start saves nothing");
    let mut replacing = tessera()
        .arg("serve")
        .args(args)
        .arg("--replace-programme")
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(replacing.stdout.take().unwrap()).lines();
    let said = lines.next().map(Result::unwrap);
    let _ = replacing.kill();
    let mut err = String::new();
    replacing
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = replacing.wait();
    let said = said.unwrap_or_else(|| panic!("serve --replace-programme said nothing: {err}"));
    std::fs::remove_file(&file).unwrap();
    assert!(said.contains("replaced version 2 as version 3"), "{said}");
    let saved_at = std::time::Instant::now();
    while version(&a) != Some(3) || version(&b) != Some(3) {
        assert!(
            saved_at.elapsed() < std::time::Duration::from_secs(2),
            "version 3 not running everywhere"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

#[test]
fn two_processes_run_one_programme_on_sqlite() {
    two_processes_run_one_programme(Backend::Sqlite);
}

#[test]
fn two_processes_run_one_programme_on_postgres() {
    two_processes_run_one_programme(Backend::Postgres);
}

/// `--log-json`: every line the server writes to stderr is JSON, from its start to its
/// stop, an error included; a request's lines carry its id (taken from `X-Request-Id`,
/// echoed in the answer) and the id of the key that made it.
#[test]
fn json_logs_from_the_first_line_to_the_last_with_request_ids() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(TestDb::new(Backend::Sqlite)) else {
        return;
    };
    let mut server = serve_with(&db.url, &["--log-json"], "info", Stdio::piped());
    let (address, admin) = (server.address.clone(), server.admin_key.clone().unwrap());
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /v1/members/nobody HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nX-Request-Id: trace-42\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: trace-42"),
        "{answer}"
    );
    // Without an id of the client's, the answer carries one of the server's.
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id: "),
        "{answer}"
    );
    // A graceful stop, then every line of stderr parses as JSON.
    let stopped = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let logged: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!logged.is_empty());
    let request = logged
        .iter()
        .find(|l| l["span"]["request_id"] == "trace-42" && l["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("no request line with its id: {err}"));
    assert!(request["span"]["key_id"].is_number(), "{request}");
    assert_eq!(request["fields"]["status"], "404");
    assert!(!err.contains('\u{1b}'), "no colour codes in a log file");

    // A start that fails logs its error as JSON too.
    let failed = tessera()
        .args([
            "serve",
            "--database",
            "sqlite:///nonexistent-dir/x/y.db",
            "--log-json",
        ])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8(failed.stderr).unwrap();
    assert!(!err.is_empty());
    for line in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["level"], "ERROR", "{line}");
    }
}

/// `tessera programme diff OLD NEW` lists what changes; with `--database` it counts the
/// members touched there and exits with 1 when `PUT /v1/programme` would refuse it.
#[test]
fn programme_diff_lists_changes_and_counts_holders_in_a_database() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt
        .block_on(TestDb::new(Backend::Sqlite))
        .expect("SQLite is always there");
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../programmes/demo.toml"
    ))
    .unwrap();
    let dir = std::env::temp_dir();
    let old = dir.join(format!("tessera-diff-old-{}.toml", std::process::id()));
    let new = dir.join(format!("tessera-diff-new-{}.toml", std::process::id()));
    std::fs::write(&old, &demo).unwrap();
    std::fs::write(
        &new,
        demo.replace("currency = \"CNY\"", "currency = \"USD\"")
            .replace("price_minor = 14900", "price_minor = 19900"),
    )
    .unwrap();
    let diff = |database: Option<&str>| {
        let mut command = tessera();
        command.args(["programme", "diff"]).arg(&old).arg(&new);
        if let Some(url) = database {
            command.args(["--database", url]);
        }
        let out = command.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = diff(None);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("currency   currency"), "{stdout}");
    assert!(stdout.contains("CNY -> USD"), "{stdout}");
    assert!(stdout.contains("plans      plus"), "{stdout}");
    assert!(stdout.contains("members not counted"), "{stdout}");

    // A member with points: the currency of the ledger may no longer change.
    {
        let server = serve(&db.url);
        let admin = server.admin_key.clone().unwrap();
        let (status, _) = http(
            &server.address,
            "POST",
            "/v1/members",
            &admin,
            r#"{"member_id":"u1"}"#,
        );
        assert_eq!(status, 201);
        let (status, _) = http(
            &server.address,
            "POST",
            "/v1/members/u1/points/adjustments",
            &admin,
            r#"{"id":"a1","points":50,"reason":"welcome"}"#,
        );
        assert_eq!(status, 201);
    }
    let (code, stdout) = diff(Some(&db.url));
    let _ = std::fs::remove_file(&old);
    let _ = std::fs::remove_file(&new);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("CNY -> USD  (1 member(s))"), "{stdout}");
    assert!(
        stdout.contains("refused (programme_strands_value)"),
        "{stdout}"
    );
}

/// `serve --preset NAME` loads the preset shipped in the binary on an empty database; an
/// unknown name is refused before anything starts.
#[test]
fn serve_runs_a_preset() {
    let path = std::env::temp_dir().join(format!("tessera-preset-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let args = [
        "--clock",
        "manual",
        "--listen",
        "127.0.0.1:0",
        "--database",
        &url,
    ];
    let err = serve_refused(&[&args[..], &["--preset", "nope"]].concat());
    assert!(err.contains("no preset `nope`"), "{err}");
    let mut child = tessera()
        .arg("serve")
        .args(args)
        .args(["--preset", "yunji", "--admin-key-file"])
        .arg(path.with_extension("key"))
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .take_while(|l| !l.contains("listening"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let _ = std::fs::remove_file(path.with_extension("key"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the preset yunji loaded as version 1")),
        "{lines:?}"
    );
}
