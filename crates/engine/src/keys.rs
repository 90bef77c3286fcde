//! API keys. A key is shown once, when made; the database keeps only its SHA-256 (keys are
//! 256 random bits, so a fast hash is enough: there is nothing to brute-force).

use crate::clock::to_us;
use crate::error::Result;
use crate::EngineError;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tessera_store::{ApiKeyRow, NewApiKey, Store, Tx};

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

/// A key to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub role: Role,
    /// For a partner's key: a partner the running programme declares.
    pub partner: Option<String>,
    pub label: Option<String>,
    /// After this instant (wall clock) the key is refused.
    pub expires_at: Option<jiff::Timestamp>,
}

/// A key as an operator sees it: never the key itself, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    pub id: i64,
    pub prefix: String,
    pub role: Role,
    pub partner: Option<String>,
    pub label: Option<String>,
    pub created_at: jiff::Timestamp,
    pub expires_at: Option<jiff::Timestamp>,
    pub revoked_at: Option<jiff::Timestamp>,
    /// Recorded at most once a minute per key and process.
    pub last_used_at: Option<jiff::Timestamp>,
}

impl KeyView {
    pub(crate) fn of(row: ApiKeyRow) -> Result<KeyView> {
        use crate::clock::from_us;
        let role = Role::parse(&row.role).ok_or_else(|| {
            tessera_store::StoreError::Database(format!("key {} has no known role", row.id))
        })?;
        Ok(KeyView {
            id: row.id,
            prefix: row.prefix,
            role,
            partner: row.partner,
            label: row.label,
            created_at: from_us(row.created_at_us),
            expires_at: row.expires_at_us.map(from_us),
            revoked_at: row.revoked_at_us.map(from_us),
            last_used_at: row.last_used_at_us.map(from_us),
        })
    }
}

/// Whether a stored key lets its holder in at `now` (wall clock): not revoked, not expired.
pub(crate) fn usable_at(row: &ApiKeyRow, now: jiff::Timestamp) -> bool {
    row.revoked_at_us.is_none() && row.expires_at_us.is_none_or(|e| to_us(now) < e)
}

/// Longest label of a key.
pub const LABEL_LEN_MAX: usize = 128;

/// Checks a key to make against the running programme: a partner's key names a partner
/// the programme declares (in a plan's `partner_rights`), other roles name none; a label
/// is 1 to 128 characters; an expiry lies ahead.
pub(crate) fn check_new_key(
    new: &NewKey,
    programme: Option<&tessera_domain::Programme>,
    now: jiff::Timestamp,
) -> Result<()> {
    use tessera_domain::FieldError;
    let invalid =
        |field: &str, why: String| Err(EngineError::Field(FieldError::invalid(field, why)));
    match (new.role, &new.partner) {
        (Role::Partner, None) => {
            return invalid("partner", "a partner's key names its partner".into())
        }
        (Role::Partner, Some(name)) => {
            let declared = programme.is_some_and(|p| {
                p.plans
                    .iter()
                    .flat_map(|plan| &plan.partner_rights)
                    .any(|right| right.partner == *name)
            });
            if !declared {
                return Err(EngineError::UnknownPartner(name.clone()));
            }
        }
        (_, Some(_)) => return invalid("partner", "only a partner's key names a partner".into()),
        (_, None) => {}
    }
    if let Some(label) = &new.label {
        if label.trim().is_empty()
            || label.chars().count() > LABEL_LEN_MAX
            || label.chars().any(char::is_control)
        {
            return invalid(
                "label",
                format!("a label is 1 to {LABEL_LEN_MAX} characters, none a control character"),
            );
        }
    }
    if new.expires_at.is_some_and(|e| e <= now) {
        return invalid("expires_at", "a key's expiry lies ahead".into());
    }
    Ok(())
}

/// A new random key: the key itself, its hash and its prefix.
fn random_key() -> Result<(String, String, String)> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| {
        tessera_store::StoreError::Database(format!("no randomness from the operating system: {e}"))
    })?;
    let key = format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 6).collect();
    Ok((key_sha256(&key), prefix, key))
}

/// Stores a new key inside `tx`; returns the key itself (shown once) and its row.
pub(crate) async fn insert_key(
    tx: &mut Tx,
    new: &NewKey,
    now: jiff::Timestamp,
) -> Result<(String, ApiKeyRow)> {
    let (hash, prefix, key) = random_key()?;
    let row = tx
        .api_key_insert(&NewApiKey {
            key_sha256: &hash,
            prefix: &prefix,
            role: new.role.as_str(),
            partner: new.partner.as_deref(),
            label: new.label.as_deref(),
            expires_at_us: new.expires_at.map(to_us),
            now_us: to_us(now),
        })
        .await?;
    Ok((key, row))
}

/// Makes a key for `role` (no partner, label or expiry: tests, benchmarks and the first
/// admin key), stores its hash, and returns the key itself.
pub async fn create_key(store: &Store, role: Role, now: jiff::Timestamp) -> Result<String> {
    let new = NewKey {
        role,
        partner: None,
        label: None,
        expires_at: None,
    };
    let mut tx = store.begin().await?;
    let (key, _) = insert_key(&mut tx, &new, now).await?;
    tx.commit().await?;
    Ok(key)
}
