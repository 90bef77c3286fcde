//! The store contract: every test here runs against SQLite and against PostgreSQL, and
//! both must behave the same. One module per family of tables; the last test checks that
//! every public operation of the store (`Store`, `Tx`, `CheckSnapshot`, any type with
//! public methods in `src/`) is called by some test of this binary.
//!
//! Conventions the coverage test relies on: a `Store` is always named `store` and a `Tx`
//! always `tx` where an operation is called (`store.member_get(`, `tx.lots_insert(`), and a
//! `CheckSnapshot` `check_snapshot`.

mod answers;
mod bench;
mod closing;
mod commerce;
mod foundation;
mod offers;
mod points;
mod programme;
mod reads;
mod referrals;
mod subscriptions;
mod tiers;

use tessera_store::*;
use tessera_testkit::both_backends;

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// Runs `sql` with `$1` bound to `member_id` on a connection of its own: what a broken
/// write would leave, for the checks that must find it.
async fn corrupt(url: &str, sql: &str, member_id: i64) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let done = sqlx::query(sql)
        .bind(member_id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(done.rows_affected() > 0, "{sql} changed nothing");
}

fn is_sqlite(store: &Store) -> bool {
    store.backend_name() == "sqlite"
}

fn new_member(external_id: &str) -> NewMember<'_> {
    NewMember {
        external_id,
        attributes: "{}",
        referred_by_code: None,
        referral_code: None,
        now_us: 1_000,
    }
}

async fn add_member(store: &Store, external_id: &str) -> MemberRow {
    let mut tx = store.begin().await.unwrap();
    let row = tx.member_insert(&new_member(external_id)).await.unwrap();
    tx.commit().await.unwrap();
    row
}

/// `n` members named `{prefix}0`, `{prefix}1`, ..., made in one transaction, in id order.
async fn add_members(store: &Store, prefix: &str, n: usize) -> Vec<MemberRow> {
    let mut tx = store.begin().await.unwrap();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let external_id = format!("{prefix}{i}");
        out.push(tx.member_insert(&new_member(&external_id)).await.unwrap());
    }
    tx.commit().await.unwrap();
    out
}

fn event<'a>(event_id: &'a str, member_id: i64, body: &'a str, sha: &'a str) -> NewEvent<'a> {
    NewEvent {
        event_id,
        member_id,
        event_type: "activity",
        order_id: None,
        occurred_at_us: 5,
        received_at_us: 6,
        body,
        body_sha256: sha,
    }
}

/// Whether `result` is the conflict a unique constraint raises.
fn is_conflict<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict(_)))
}

// ---- coverage: a new store operation without a contract test fails the suite ----

/// The `.rs` files of a directory of this crate, sorted by name: (file name, text). Read
/// at run time rather than with `include_str!`, so that a new file is checked too.
fn rust_sources(dir: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// Every `pub fn` and `pub async fn` of the inherent `impl` blocks of `source` (`impl
/// Store`, `impl Tx`, `impl CheckSnapshot`, ...; not `impl Trait for Type`): (type,
/// name). A block opens at a line starting with `impl` and closes at a line starting with
/// `}`; its methods are indented by exactly four spaces.
fn public_operations(source: &str) -> Vec<(String, String)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut owner: Option<String> = None;
    let mut ops = Vec::new();
    for line in source.lines() {
        if let Some(rest) = line.strip_prefix("impl ") {
            let inherent = !rest.contains(" for ") && !line.trim_end().ends_with("{}");
            owner = inherent.then(|| ident(rest));
        } else if line.starts_with("impl") || line.starts_with('}') {
            owner = None;
        } else if let Some(owner) = &owner {
            let Some(rest) = line
                .strip_prefix("    pub async fn ")
                .or_else(|| line.strip_prefix("    pub fn "))
            else {
                continue;
            };
            ops.push((owner.clone(), ident(rest)));
        }
    }
    ops
}

/// `CheckSnapshot` -> `check_snapshot`: the name a test gives a value of the type.
fn snake_case(type_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in type_name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The test sources without comments or whitespace, so that a call rustfmt split over
/// lines (`store\n    .member_get(`) reads as one.
fn calls_in_tests() -> String {
    rust_sources("tests/contract")
        .iter()
        .flat_map(|(_, source)| source.lines())
        .map(|line| line.split("//").next().unwrap_or(""))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect()
}

#[test]
fn every_public_operation_is_covered() {
    let ops: Vec<(String, String, String)> = rust_sources("src")
        .into_iter()
        .flat_map(|(file, source)| {
            public_operations(&source)
                .into_iter()
                .map(move |(owner, name)| (file.clone(), owner, name))
        })
        .collect();
    // The parser itself: known operations of each type are found, private ones are not.
    for (owner, name) in [
        ("Store", "connect"),
        ("Store", "account_get"),
        ("Store", "baseline_inserts"),
        ("Tx", "commit"),
        ("Tx", "code_take"),
        ("Tx", "client_answer_put"),
    ] {
        assert!(
            ops.iter().any(|(_, o, n)| o == owner && n == name),
            "the operation parser missed {owner}::{name}"
        );
    }
    assert!(!ops.iter().any(|(_, _, n)| n == "param" || n == "from_row"));
    let calls = calls_in_tests();
    let missing: Vec<String> = ops
        .iter()
        .filter(|(_, owner, name)| {
            let by_value = format!("{}.{name}(", snake_case(owner));
            let by_type = format!("{owner}::{name}(");
            !calls.contains(&by_value) && !calls.contains(&by_type)
        })
        .map(|(file, owner, name)| format!("{owner}::{name} (src/{file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} store operations have no contract test (call each as \
         `store.NAME(`, `tx.NAME(` or `Type::NAME(`):\n  {}",
        missing.len(),
        ops.len(),
        missing.join("\n  ")
    );
}
