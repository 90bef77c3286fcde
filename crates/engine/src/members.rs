//! Members: sign-up, look-up, changes, closing.

use crate::clock::{from_us, to_us};
use crate::{Engine, EngineError, Result};
use jiff::Timestamp;
use tessera_domain::{Attributes, ExternalId, ReferralCode};
use tessera_store::{MemberRow, NewMember, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Active,
    Frozen,
    Closed,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Frozen => "frozen",
            MemberStatus::Closed => "closed",
        }
    }

    fn parse(s: &str) -> MemberStatus {
        match s {
            "frozen" => MemberStatus::Frozen,
            "closed" => MemberStatus::Closed,
            _ => MemberStatus::Active,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: i64,
    pub external_id: String,
    pub status: MemberStatus,
    pub attributes: serde_json::Value,
    pub referred_by: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

impl Member {
    fn from_row(row: MemberRow) -> Member {
        Member {
            id: row.id,
            external_id: row.external_id,
            status: MemberStatus::parse(&row.status),
            attributes: serde_json::from_str(&row.attributes)
                .unwrap_or_else(|_| serde_json::json!({})),
            referred_by: row.referred_by_code,
            created_at: from_us(row.created_at_us),
            updated_at: from_us(row.updated_at_us),
            closed_at: row.closed_at_us.map(from_us),
        }
    }
}

/// A change to a member: attributes by JSON merge patch, and/or a new status.
#[derive(Debug, Default)]
pub struct MemberPatch {
    pub attributes: Option<serde_json::Value>,
    /// `Active` or `Frozen`; closing has its own use case.
    pub status: Option<MemberStatus>,
}

impl Engine {
    pub async fn create_member(
        &self,
        external_id: &ExternalId,
        attributes: &Attributes,
        referred_by: Option<&ReferralCode>,
    ) -> Result<Member> {
        let attributes = attributes.to_json_string();
        let new = NewMember {
            external_id: external_id.as_str(),
            attributes: &attributes,
            referred_by_code: referred_by.map(ReferralCode::as_str),
            now_us: to_us(self.now()),
        };
        let mut tx = self.store.begin().await?;
        let row = match tx.member_insert(&new).await {
            Err(StoreError::Conflict(_)) => {
                return Err(EngineError::MemberExists(external_id.to_string()))
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(Member::from_row(row))
    }

    pub async fn member(&self, external_id: &ExternalId) -> Result<Member> {
        self.store
            .member_get(external_id.as_str())
            .await?
            .map(Member::from_row)
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))
    }

    pub async fn patch_member(
        &self,
        external_id: &ExternalId,
        patch: MemberPatch,
    ) -> Result<Member> {
        let mut tx = self.store.begin().await?;
        let mut row = tx
            .member_for_update(external_id.as_str())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))?;
        if row.status == MemberStatus::Closed.as_str() {
            return Err(EngineError::MemberClosed(external_id.to_string()));
        }
        if let Some(patch) = patch.attributes {
            let current: serde_json::Value =
                serde_json::from_str(&row.attributes).unwrap_or_else(|_| serde_json::json!({}));
            let current = Attributes::parse(current).unwrap_or_default();
            row.attributes = current
                .merge_patch(patch)
                .map_err(|e| e.within("attributes"))?
                .to_json_string();
        }
        if let Some(status) = patch.status {
            row.status = status.as_str().to_owned();
        }
        row.updated_at_us = to_us(self.now());
        tx.member_update(&row).await?;
        tx.commit().await?;
        Ok(Member::from_row(row))
    }

    /// Closes an account: personal attributes are erased, the history stays (finance needs
    /// the ledger). Closing a closed member changes nothing.
    pub async fn close_member(&self, external_id: &ExternalId) -> Result<Member> {
        let mut tx = self.store.begin().await?;
        let mut row = tx
            .member_for_update(external_id.as_str())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))?;
        if row.status != MemberStatus::Closed.as_str() {
            let now = to_us(self.now());
            row.status = MemberStatus::Closed.as_str().to_owned();
            row.attributes = "{}".to_owned();
            row.updated_at_us = now;
            row.closed_at_us = Some(now);
            tx.member_update(&row).await?;
            tx.commit().await?;
        }
        Ok(Member::from_row(row))
    }
}
