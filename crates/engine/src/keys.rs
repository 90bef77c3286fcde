//! API keys. A key is shown once, when made; the database keeps only its SHA-256 (keys are
//! 256 random bits, so a fast hash is enough: there is nothing to brute-force).

use crate::clock::to_us;
use crate::error::Result;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tessera_store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including the programme, the clock and member changes.
    Admin,
    /// The shop's checkout and order pipeline: members, events, quotes, orders.
    Storefront,
    /// A partner of an ecosystem programme: membership checks and partner redemptions.
    Partner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Storefront => "storefront",
            Role::Partner => "partner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "storefront" => Some(Role::Storefront),
            "partner" => Some(Role::Partner),
            _ => None,
        }
    }
}

/// The caller of a request, once its key is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub role: Role,
}

pub const KEY_PREFIX: &str = "tsk_";

pub fn key_sha256(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Makes a key for `role`, stores its hash, and returns the key itself.
pub async fn create_key(store: &Store, role: Role, now: jiff::Timestamp) -> Result<String> {
    create_key_for(store, role, None, now).await
}

/// Makes a key; a partner's key is bound to the partner whose rights it answers for.
pub async fn create_key_for(
    store: &Store,
    role: Role,
    partner: Option<&str>,
    now: jiff::Timestamp,
) -> Result<String> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| {
        tessera_store::StoreError::Database(format!("no randomness from the operating system: {e}"))
    })?;
    let key = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 6).collect();
    let mut tx = store.begin().await?;
    let id = tx
        .api_key_insert(&key_sha256(&key), &prefix, role.as_str(), to_us(now))
        .await?;
    if let Some(partner) = partner {
        tx.api_key_set_partner(id, partner).await?;
    }
    tx.commit().await?;
    Ok(key)
}
