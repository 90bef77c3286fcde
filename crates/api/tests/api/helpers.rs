use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use tessera_engine::{Engine, ManualClock, Role};
use tessera_store::Store;
use tessera_testkit::{Backend, TestDb};
use tower::ServiceExt;

pub const DEMO: &str = include_str!("../../../../programmes/demo.toml");

pub struct TestApp {
    pub router: axum::Router,
    pub engine: Arc<Engine>,
    pub store: Store,
    pub admin: String,
    pub storefront: String,
    pub partner: String,
    pub url: String,
    /// The engine's clock: moving it here runs no job (as between two runs of the jobs).
    pub clock: Arc<ManualClock>,
    pub _db: TestDb,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
    pub headers: axum::http::HeaderMap,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub const START: &str = "2026-11-23T00:00:00Z";

impl TestApp {
    pub async fn sqlite() -> TestApp {
        Self::on(Backend::Sqlite)
            .await
            .expect("SQLite is always there")
    }

    /// A fresh app on `backend` with a manual clock at `START` and the demo programme;
    /// `None` when the PostgreSQL tests are skipped by name (`TESSERA_SKIP_POSTGRES=1`).
    pub async fn on(backend: Backend) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        let store = Store::connect(&db.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let engine = Arc::new(
            Engine::start(store.clone(), clock.clone(), Some(DEMO))
                .await
                .expect("engine starts"),
        );
        let admin = engine.create_key(Role::Admin).await.unwrap();
        let storefront = engine.create_key(Role::Storefront).await.unwrap();
        let partner = engine.create_key(Role::Partner).await.unwrap();
        let router = tessera_api::app(engine.clone());
        Some(TestApp {
            clock: clock.clone(),
            router,
            engine,
            store,
            admin,
            storefront,
            partner,
            url: db.url.clone(),
            _db: db,
        })
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            text,
            headers,
        }
    }

    /// A JSON request with the admin key.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.admin.clone(), method, path, body).await
    }

    pub async fn call_as(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"));
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    pub async fn put_programme(&self, key: &str, source: &str) -> Reply {
        let req = Request::builder()
            .method("PUT")
            .uri("/v1/programme")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/toml")
            .body(Body::from(source.to_owned()))
            .unwrap();
        self.send(req).await
    }

    pub async fn add_member(&self, external_id: &str) {
        let r = self
            .call(
                "POST",
                "/v1/members",
                Some(serde_json::json!({ "member_id": external_id })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    /// Asserts that `tessera check` would find the ledger balanced.
    /// Moves the manual clock to `at` (RFC 3339); the time-driven jobs due by then run.
    pub async fn set_clock(&self, at: &str) {
        let r = self
            .call(
                "POST",
                "/v1/admin/clock",
                Some(serde_json::json!({"now": at})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    pub async fn assert_ledger_balanced(&self) {
        let report = self.engine.check_ledger(|_, _| {}).await.unwrap();
        assert!(
            report.is_balanced(),
            "ledger check: {:?}",
            report.violations
        );
    }

    /// Row counts of every table of the schema, by name.
    pub async fn counts(&self) -> Vec<(String, i64)> {
        self.store.table_row_counts().await.unwrap()
    }
}

pub fn paid(id: &str, member: &str) -> Value {
    serde_json::json!({
        "id": id, "type": "order.paid", "member_id": member,
        "occurred_at": "2026-11-22T10:00:00+08:00", "order_id": format!("o-{id}"),
        "lines": [{"sku": "A1", "category": "books", "quantity": 2, "unit_price_minor": 3000, "tags": ["promo"]}],
        "shipping_minor": 600, "total_minor": 6600
    })
}
