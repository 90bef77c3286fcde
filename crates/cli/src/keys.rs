//! `tessera keys`: make, list, revoke and rotate API keys on a database, with or without a
//! server running on it (a running server refuses a revoked key within 2 s).

use crate::{open, DEFAULT_DATABASE};
use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use std::sync::Arc;
use tessera_engine::keys::{KeyView, NewKey};
use tessera_engine::{Engine, Role, SystemClock};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it alone on stdout (it is shown only this once).
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// For a partner key: the partner (as the programme's partner rights name it) whose
        /// rights the key checks and redeems. Required with `--role partner`.
        #[arg(long)]
        partner: Option<String>,
        /// A note to tell keys apart (1 to 128 characters).
        #[arg(long)]
        label: Option<String>,
        /// After this instant (RFC 3339) the key is refused.
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long, env = "TESSERA_DATABASE", default_value = DEFAULT_DATABASE)]
        database: String,
    },
    /// List every key (never the keys themselves: their first characters).
    List {
        #[arg(long, env = "TESSERA_DATABASE", default_value = DEFAULT_DATABASE)]
        database: String,
    },
    /// Revoke a key by id: every server on the database refuses it within 2 s.
    Revoke {
        id: i64,
        #[arg(long, env = "TESSERA_DATABASE", default_value = DEFAULT_DATABASE)]
        database: String,
    },
    /// Replace a key by a new one with the same role, partner, label and expiry, and
    /// revoke the old one; print the new key alone on stdout.
    Rotate {
        id: i64,
        #[arg(long, env = "TESSERA_DATABASE", default_value = DEFAULT_DATABASE)]
        database: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Storefront,
    Partner,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Storefront => Role::Storefront,
            RoleArg::Partner => Role::Partner,
        }
    }
}

/// The engine of a database, with its running programme (a partner's key is checked
/// against it).
async fn engine_of(database: &str) -> anyhow::Result<Engine> {
    let store = open(database).await?;
    store.migrate().await?;
    Ok(Engine::start(store, Arc::new(SystemClock), None).await?)
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            role,
            partner,
            label,
            expires_at,
            database,
        } => {
            let expires_at = expires_at
                .map(|s| {
                    s.parse::<jiff::Timestamp>()
                        .with_context(|| format!("--expires-at `{s}` is not RFC 3339"))
                })
                .transpose()?;
            let engine = engine_of(&database).await?;
            let new = NewKey {
                role: role.into(),
                partner,
                label,
                expires_at,
            };
            let (key, _) = engine.create_key_with(&new).await?;
            println!("{key}");
        }
        KeysCommand::List { database } => {
            let engine = engine_of(&database).await?;
            println!(
                "{:>5}  {:<10}  {:<10}  {:<10}  {:<20}  {:<20}  {:<20}  {:<20}  label",
                "id", "prefix", "role", "partner", "created", "expires", "revoked", "last used"
            );
            let mut after = 0;
            loop {
                let (keys, next) = engine.keys_page(after, 200).await?;
                for k in &keys {
                    println!("{}", line(k));
                }
                match next {
                    Some(n) => after = n,
                    None => break,
                }
            }
        }
        KeysCommand::Revoke { id, database } => {
            let view = engine_of(&database).await?.revoke_key(id).await?;
            eprintln!("revoked key {id} ({})", view.prefix);
        }
        KeysCommand::Rotate { id, database } => {
            let (key, view) = engine_of(&database).await?.rotate_key(id).await?;
            eprintln!("key {id} is revoked; its replacement is key {}", view.id);
            println!("{key}");
        }
    }
    Ok(())
}

fn line(k: &KeyView) -> String {
    let at = |t: Option<jiff::Timestamp>| t.map_or("-".to_owned(), |t| t.to_string());
    format!(
        "{:>5}  {:<10}  {:<10}  {:<10}  {:<20}  {:<20}  {:<20}  {:<20}  {}",
        k.id,
        k.prefix,
        k.role.as_str(),
        k.partner.as_deref().unwrap_or("-"),
        at(Some(k.created_at)),
        at(k.expires_at),
        at(k.revoked_at),
        at(k.last_used_at),
        k.label.as_deref().unwrap_or("")
    )
}
