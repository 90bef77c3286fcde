//! The baseline of Tessera's benchmarks: plain SQL inserts on the same database, so that
//! a figure is reported next to what the database itself does on the same machine.

use crate::{Result, Store};

impl Store {
    /// Inserts `rows` rows of `body` into a scratch table, `batch` rows per transaction,
    /// one INSERT statement per row, from `concurrency` writers at once. The table is
    /// dropped first and afterwards.
    pub async fn baseline_inserts(
        &self,
        rows: u64,
        batch: u64,
        concurrency: usize,
        body: &str,
    ) -> Result<()> {
        if batch == 0 {
            return Err(crate::StoreError::Database(
                "a baseline batch has at least one row".into(),
            ));
        }
        sqlx::query("DROP TABLE IF EXISTS bench_baseline")
            .execute(&self.write)
            .await?;
        sqlx::query(
            "CREATE TABLE bench_baseline (seq BIGINT PRIMARY KEY, member_id BIGINT NOT NULL, body TEXT NOT NULL)",
        )
        .execute(&self.write)
        .await?;
        let batches: Vec<(u64, u64)> = (0..rows.div_ceil(batch))
            .map(|b| (b * batch, ((b + 1) * batch).min(rows)))
            .collect();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(batches));
        let mut workers = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (store, queue, body) = (self.clone(), queue.clone(), body.to_owned());
            workers.push(tokio::spawn(async move {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((from, to)) = next else {
                        return Ok::<(), crate::StoreError>(());
                    };
                    let mut tx = store.begin().await?;
                    for seq in from..to {
                        sqlx::query(
                            "INSERT INTO bench_baseline (seq, member_id, body) VALUES ($1, $2, $3)",
                        )
                        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                        .bind(i64::try_from(seq % 10_000).unwrap_or(0))
                        .bind(&body)
                        .execute(&mut *tx.tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
            }));
        }
        for w in workers {
            w.await
                .map_err(|e| crate::StoreError::Database(e.to_string()))??;
        }
        sqlx::query("DROP TABLE bench_baseline")
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
