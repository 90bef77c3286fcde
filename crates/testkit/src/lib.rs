//! A fresh database per test, on either backend.
//!
//! PostgreSQL is reached at `TESSERA_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable, PostgreSQL tests
//! fail: a silent skip is how a red suite looks green. A developer without PostgreSQL asks
//! for the skip by name with `TESSERA_SKIP_POSTGRES=1`, and each skipped test says so.

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed when dropped.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS gives randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the PostgreSQL tests were asked to skip (`TESSERA_SKIP_POSTGRES=1`); never under
/// `CI=true`, where a green run must have run them.
pub fn skip_postgres() -> bool {
    let asked = std::env::var("TESSERA_SKIP_POSTGRES").is_ok_and(|v| v == "1");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    asked && !ci
}

pub fn postgres_admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDb {
    /// A new empty database, or `None` when PostgreSQL tests are skipped by name
    /// (`TESSERA_SKIP_POSTGRES=1`). An unreachable server fails the test otherwise.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let path =
                    std::env::temp_dir().join(format!("tessera-test-{}.db", random_suffix()));
                Some(TestDb {
                    url: format!("sqlite://{}", path.display()),
                    cleanup: Cleanup::File(path),
                })
            }
            Backend::Postgres => {
                if skip_postgres() {
                    eprintln!("skipping a PostgreSQL test: TESSERA_SKIP_POSTGRES is set");
                    return None;
                }
                let admin_url = postgres_admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
                    Ok(c) => c,
                    Err(e) => panic!(
                        "PostgreSQL is unreachable at {admin_url}: {e} \
                         (set TESSERA_SKIP_POSTGRES=1 to skip the PostgreSQL tests by name)"
                    ),
                };
                let name = format!("tessera_test_{}", random_suffix());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create a test database");
                let _ = conn.close().await;
                let (base, _) = admin_url
                    .rsplit_once('/')
                    .expect("a database URL has a path");
                Some(TestDb {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Database { admin_url, name },
                })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Database { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime, which cannot block on itself.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await
                            .ok()
                    })
                })
                .join();
            }
        }
    }
}

/// Runs a test body once per backend: `both_backends!(name, |url| async move { ... })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::TestDb::new($crate::Backend::Sqlite)
                    .await
                    .expect("SQLite is always there");
                ($body)(db.url.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = $crate::TestDb::new($crate::Backend::Postgres).await else {
                    return;
                };
                ($body)(db.url.clone()).await;
            }
        }
    };
}
