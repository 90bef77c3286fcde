//! A retry always gets the first answer. A request that carries a client id of its own
//! (an order refund, a stored-value refund, a coupon issue, a top-up) is looked up by that
//! id under the member's lock; the first time, its answer is stored in the same
//! transaction as its effect, and every retry replays that answer.
//!
//! The fingerprint that tells a retry from another request reusing the id is built from
//! the parsed request in a stable form (JSON with sorted keys), never from `Debug` output
//! or from the server's time, so it survives a restart and a deploy.

use crate::clock::to_us;
use crate::{sha256_hex, EngineError, Result};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_store::{ClientAnswerRow, Tx};

/// One request identified by the client's id within a kind of request.
pub(crate) struct ClientRequest {
    kind: &'static str,
    client_id: String,
    request_sha256: String,
}

impl ClientRequest {
    /// `fingerprint` holds every parsed field of the request that decides its effect.
    pub(crate) fn new(
        kind: &'static str,
        client_id: impl Into<String>,
        fingerprint: &serde_json::Value,
    ) -> ClientRequest {
        // serde_json's maps are ordered by key, so equal requests print equal text.
        let text = format!("{kind}\n{fingerprint}");
        ClientRequest {
            kind,
            client_id: client_id.into(),
            request_sha256: sha256_hex(text.as_bytes()),
        }
    }

    /// The first answer, when this id was answered before; the member must be locked.
    /// The same id with another request is `client_id_conflict`.
    pub(crate) async fn replay<T: DeserializeOwned>(
        &self,
        tx: &mut Tx,
        member_id: i64,
    ) -> Result<Option<T>> {
        let Some(row) = tx
            .client_answer_get(member_id, self.kind, &self.client_id)
            .await?
        else {
            return Ok(None);
        };
        if row.request_sha256 != self.request_sha256 {
            return Err(EngineError::ClientIdConflict(self.client_id.clone()));
        }
        serde_json::from_str(&row.answer).map(Some).map_err(|e| {
            tessera_store::StoreError::Database(format!("corrupt stored answer: {e}")).into()
        })
    }

    /// Stores the first answer, in the transaction of the request's effect.
    pub(crate) async fn remember<T: Serialize>(
        &self,
        tx: &mut Tx,
        member_id: i64,
        answer: &T,
        now: Timestamp,
    ) -> Result<()> {
        let answer = serde_json::to_string(answer).map_err(|e| {
            tessera_store::StoreError::Database(format!("an answer that does not serialize: {e}"))
        })?;
        let row = ClientAnswerRow {
            request_sha256: self.request_sha256.clone(),
            answer,
        };
        tx.client_answer_put(member_id, self.kind, &self.client_id, &row, to_us(now))
            .await?;
        Ok(())
    }
}
