//! Event intake: validated events are stored once per id, durably; the same id with the
//! same body answers with what was stored the first time.

use crate::clock::to_us;
use crate::{sha256_hex, Engine, EngineError, Result};
use std::collections::HashMap;
use tessera_domain::event::Event;
use tessera_domain::event::{ActivityKind, EventBody};
use tessera_domain::ExternalId;
use tessera_store::{EventRow, NewEvent};

/// One event to take in, with its canonical JSON (what is stored and hashed).
pub struct IngestItem {
    pub event: Event,
    pub canonical_json: String,
}

/// What became of one event.
#[derive(Debug)]
pub enum IngestOutcome {
    /// Stored now.
    Accepted(EventRow),
    /// Stored before with the same body: the first result.
    Duplicate(EventRow),
}

impl IngestOutcome {
    pub fn row(&self) -> &EventRow {
        match self {
            IngestOutcome::Accepted(row) | IngestOutcome::Duplicate(row) => row,
        }
    }
}

impl Engine {
    /// Takes in a batch of events in one transaction; each item gets its own outcome, and a
    /// refused item does not stop the others.
    pub async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<Result<IngestOutcome>>> {
        let programme = self.programme()?;
        let received_at = to_us(self.now());
        let mut tx = self.store.begin().await?;
        let mut members: HashMap<&str, Option<(i64, String)>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let event = &item.event;
            if let EventBody::Activity(ActivityKind::Custom(name)) = &event.body {
                if programme.programme.custom_activity(name.as_str()).is_none() {
                    outcomes.push(Err(EngineError::UnknownActivity(name.to_string())));
                    continue;
                }
            }
            let member = match members.get(event.member.as_str()) {
                Some(known) => known.clone(),
                None => {
                    let found = tx.member_id_by_external(event.member.as_str()).await?;
                    members.insert(event.member.as_str(), found.clone());
                    found
                }
            };
            let Some((member_id, status)) = member else {
                outcomes.push(Err(EngineError::MemberNotFound(event.member.to_string())));
                continue;
            };
            let sha = sha256_hex(item.canonical_json.as_bytes());
            // A closed account earns nothing new, but what it already bought can still be
            // completed or refunded.
            let earns = matches!(event.body, EventBody::OrderPaid(_) | EventBody::Activity(_));
            if status == "closed" && earns {
                // A repeat of an event taken in before the account closed still answers
                // with the first result.
                outcomes.push(match tx.event_get(event.id.as_str()).await? {
                    Some(row) if row.body_sha256 == sha => Ok(IngestOutcome::Duplicate(row)),
                    Some(_) => Err(EngineError::EventConflict(event.id.to_string())),
                    None => Err(EngineError::MemberClosed(event.member.to_string())),
                });
                continue;
            }
            let new = NewEvent {
                event_id: event.id.as_str(),
                member_id,
                event_type: event.body.type_name(),
                order_id: event.body.order_id().map(|o| o.as_str()),
                occurred_at_us: to_us(event.occurred_at),
                received_at_us: received_at,
                body: &item.canonical_json,
                body_sha256: &sha,
            };
            let (row, inserted) = tx.event_insert(&new).await?;
            outcomes.push(if inserted {
                Ok(IngestOutcome::Accepted(row))
            } else if row.body_sha256 == sha {
                Ok(IngestOutcome::Duplicate(row))
            } else {
                Err(EngineError::EventConflict(event.id.to_string()))
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// A member's events in arrival order, a page at a time: the rows after `after_seq`,
    /// and the cursor of the next page when there is one.
    pub async fn member_events(
        &self,
        external_id: &ExternalId,
        after_seq: i64,
        limit: u32,
    ) -> Result<(Vec<EventRow>, Option<i64>)> {
        let member = self.member(external_id).await?;
        let mut rows = self
            .store
            .events_list(member.id, after_seq, limit + 1)
            .await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        Ok((rows, next))
    }
}
