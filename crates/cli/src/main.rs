//! The `tessera` binary: wires configuration, clock and store, and runs a subcommand.
//!
//! Architecture invariant: no business rule lives here.

/// Quotes and intake allocate many small strings and JSON values per request; mimalloc
/// serves them faster than the system allocator (measured in docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;
use std::sync::Arc;
use tessera_domain::Programme;
use tessera_engine::{Clock, Engine, SystemClock};
use tessera_store::Store;

mod bench;
mod bench_history;
mod keys;
mod presets;

/// The demo programme, shipped inside the binary.
pub(crate) const DEMO_PROGRAMME: &str = include_str!("../../../programmes/demo.toml");
const DEFAULT_DATABASE: &str = "sqlite://tessera.db";

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: a membership engine for commerce"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Bring the database schema up to date.
    Migrate {
        #[arg(long, env = "TESSERA_DATABASE", default_value = DEFAULT_DATABASE)]
        database: String,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Work with programme files.
    Programme {
        #[command(subcommand)]
        command: ProgrammeCommand,
    },
    /// Verify the ledger's invariants on a whole database; exit code 1 on any violation.
    Check {
        #[arg(long, env = "TESSERA_DATABASE", default_value = DEFAULT_DATABASE)]
        database: String,
    },
    /// The programmes of the seeds' systems shipped in the binary: the list, one line
    /// each, or with NAME the preset's file (to start a programme of your own from).
    Presets { name: Option<String> },
    /// Measure Tessera on this machine (see docs/BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum ProgrammeCommand {
    /// Check programme files offline, each on its own; exit code 1 when any is refused.
    Check {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// What changes from OLD to NEW: every plan, tier, coupon template, benefit, segment,
    /// activity, reward and offer added, removed, changed or renamed. With `--database`,
    /// also how many members each change touches and whether `PUT /v1/programme` would
    /// refuse it (`programme_strands_value`); exit code 1 when it would.
    Diff {
        old: std::path::PathBuf,
        new: std::path::PathBuf,
        /// Count the members each change touches in this database (read only).
        #[arg(long)]
        database: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ClockArg {
    System,
    Manual,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// sqlite://PATH (created if missing) or postgres://USER@HOST/DB.
    #[arg(long, env = "TESSERA_DATABASE", default_value = DEFAULT_DATABASE)]
    database: String,
    #[arg(long, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// `manual` lets an admin move time forward with POST /v1/admin/clock.
    #[arg(long, value_enum, default_value = "system")]
    clock: ClockArg,
    /// Where a manual clock starts (RFC 3339); default: where it stopped, or now.
    #[arg(long, requires = "clock")]
    clock_start: Option<String>,
    /// Load this programme file on a database that has none. On one that runs another
    /// version, `serve` refuses to start unless `--replace-programme` is given.
    #[arg(long, conflicts_with_all = ["demo", "preset"])]
    programme: Option<std::path::PathBuf>,
    /// Load a preset shipped in the binary (`tessera presets` lists them), as
    /// `--programme` loads a file.
    #[arg(long, conflicts_with = "demo")]
    preset: Option<String>,
    /// With `--programme` or `--preset`: make it a new version even if the database runs
    /// another.
    #[arg(long)]
    replace_programme: bool,
    /// Load the demo programme shipped in the binary, on a database that has no programme
    /// (on one that has, its version keeps running).
    #[arg(long)]
    demo: bool,
    /// Where the first admin key goes when stdout is not a terminal (a key never goes to
    /// a log): a file made with mode 0600.
    #[arg(long, default_value = "tessera-admin.key")]
    admin_key_file: std::path::PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// How often, in seconds, time-driven work (pending points becoming available,
    /// expiry) runs on the system clock. A manual clock runs it whenever it is moved.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    jobs_every_seconds: u64,
    /// Requests a second each API key may make on average; over it, `429 rate_limited`
    /// with `Retry-After`. Unlimited when not given.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    key_rate: Option<u32>,
    /// Requests an API key may make at once before `--key-rate` paces it (default: the
    /// rate, a second's worth).
    #[arg(long, requires = "key_rate", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    key_burst: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { database } => check(&database).await,
        Command::Presets { name } => presets::run(name.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Bench { command } => {
            init_logs(false);
            bench::run(command).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Migrate { database } => {
            let store = open(&database).await?;
            store.migrate().await?;
            eprintln!("schema of {} is up to date", store.backend_name());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys { command } => keys::run(command).await.map(|()| ExitCode::SUCCESS),
        Command::Programme {
            command: ProgrammeCommand::Diff { old, new, database },
        } => programme_diff(&old, &new, database.as_deref()).await,
        Command::Programme {
            command: ProgrammeCommand::Check { files },
        } => {
            let mut refused = false;
            for file in &files {
                refused |= !check_programme_file(file)?;
            }
            Ok(if refused {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

/// `tessera check`: every invariant of the ledger, with a progress bar on a terminal.
/// Reads and parses a programme file, or prints its problems.
fn programme_file(path: &std::path::Path) -> anyhow::Result<Option<Programme>> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match Programme::parse(&source) {
        Ok(p) => Ok(Some(p)),
        Err(issues) => {
            for issue in issues {
                eprintln!("{}:{issue}", path.display());
            }
            Ok(None)
        }
    }
}

async fn programme_diff(
    old: &std::path::Path,
    new: &std::path::Path,
    database: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use tessera_domain::programme::change::{self, ItemChange};
    let (Some(before), Some(after)) = (programme_file(old)?, programme_file(new)?) else {
        return Ok(ExitCode::FAILURE);
    };
    let assessment = match database {
        Some(url) => {
            let store = Store::connect_existing(url)
                .await
                .with_context(|| format!("cannot open the database {url}"))?;
            let engine = Engine::start(store, Arc::new(SystemClock), None).await?;
            engine.assess_change(&before, &after).await?
        }
        None => change::assess(&before, &after, &change::Holders::default()),
    };
    if assessment.changes.is_empty() {
        println!("no change");
    }
    for (c, members) in assessment.changes.iter().zip(&assessment.members) {
        let what = match &c.change {
            ItemChange::Renamed { from } => format!("renamed from {from}"),
            ItemChange::Set { from, to } => format!("{from} -> {to}"),
            other => other.as_str().to_owned(),
        };
        let touched = if database.is_some() {
            format!("  ({members} member(s))")
        } else {
            String::new()
        };
        println!("{:<10} {:<24} {what}{touched}", c.section.as_str(), c.id);
    }
    if database.is_some() {
        println!(
            "members whose measure reaches another tier under the new rules: {}",
            assessment.members_changing_tier
        );
    }
    if database.is_none() {
        println!("(members not counted: pass --database to count who holds what changes)");
        return Ok(ExitCode::SUCCESS);
    }
    if assessment.stranded.is_empty() {
        println!("accepted: PUT /v1/programme would save this change");
        return Ok(ExitCode::SUCCESS);
    }
    println!("refused (programme_strands_value):");
    for s in &assessment.stranded {
        println!("  {}", s.reason);
    }
    Ok(ExitCode::FAILURE)
}

async fn check(database: &str) -> anyhow::Result<ExitCode> {
    // A database that does not exist is refused, never created (an empty one balances).
    let store = Store::connect_existing(database)
        .await
        .with_context(|| format!("cannot open the database {database}"))?;
    let engine = Engine::start(store, Arc::new(SystemClock), None).await?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("checking members {bar:40} {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = engine
        .check_ledger(|done, total| {
            bar.set_length(u64::try_from(total).unwrap_or(0));
            bar.set_position(u64::try_from(done).unwrap_or(0));
        })
        .await?;
    bar.finish_and_clear();
    println!("members checked: {}", report.members_checked);
    for (account, total) in &report.accounts {
        println!("  {account:<18} {total:>16}");
    }
    println!(
        "points outstanding on members' accounts: {}",
        report.outstanding
    );
    println!(
        "shop liability from the postings:        {}",
        report.liability
    );
    println!(
        "stored value held (minor units):         {}",
        report.stored_value
    );
    if report.is_balanced() {
        println!("ledger balanced: every invariant holds");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} violation(s):", report.violations.len());
        for v in &report.violations {
            match v.member_id {
                Some(m) => println!("  member #{m}: {}", v.what),
                None => println!("  ledger: {}", v.what),
            }
        }
        Ok(ExitCode::from(1))
    }
}

async fn open(database: &str) -> anyhow::Result<Store> {
    Store::connect(database)
        .await
        .with_context(|| format!("cannot open the database {}", redacted(database)))
}

/// A database URL as it may be logged: its password replaced by `***`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_json);
    let store = open(&args.database).await?;
    store.migrate().await?;
    let clock: Arc<dyn Clock> = match args.clock {
        ClockArg::System => {
            if args.clock_start.is_some() {
                bail!("--clock-start needs --clock manual");
            }
            Arc::new(SystemClock)
        }
        ClockArg::Manual => {
            let start = args
                .clock_start
                .as_deref()
                .map(|s| {
                    s.parse::<jiff::Timestamp>()
                        .with_context(|| format!("--clock-start `{s}` is not RFC 3339"))
                })
                .transpose()?;
            Arc::new(Engine::manual_clock(&store, start).await?)
        }
    };
    let engine = Engine::start(store, clock, None).await?;
    load_programme_at_start(&engine, &args).await?;
    if engine.programme().is_err() {
        tracing::warn!(
            "no programme is loaded: PUT /v1/programme, or start with --programme FILE or --demo"
        );
    }
    let runs_demo = engine
        .programme()
        .is_ok_and(|p| p.sha256 == tessera_engine::sha256_hex(DEMO_PROGRAMME.as_bytes()));
    if args.demo && runs_demo {
        seed_demo_codes(&engine).await?;
    }
    if engine.needs_admin_key().await? {
        hand_over_admin_key(&engine, &args.admin_key_file).await?;
    }
    let engine = Arc::new(engine);
    // Work that fell due while the server was down (or was cut short by a crash) runs now,
    // once; then, on the system clock, on a fixed period.
    if let Err(e) = engine.tick().await {
        tracing::error!(error = %e, "time-driven work failed at start");
    }
    if args.clock == ClockArg::System {
        let engine = engine.clone();
        let every = std::time::Duration::from_secs(args.jobs_every_seconds);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(e) = engine.tick().await {
                    tracing::error!(error = %e, "time-driven work failed; it will run again");
                }
            }
        });
    }
    // Every process on one database runs the newest version within a refresh period.
    {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tessera_engine::PROGRAMME_REFRESH);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(e) = engine.refresh_programme().await {
                    tracing::warn!(error = %e, "looking for a newer programme version failed");
                }
            }
        });
    }
    let key_rate = args.key_rate.map(|per_second| tessera_api::KeyRate {
        per_second,
        burst: args.key_burst.unwrap_or(per_second),
    });
    let app = tessera_api::app_with(engine.clone(), tessera_api::AppOptions { key_rate });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, database = engine.store().backend_name(), "Tessera is listening");
    println!(
        "Tessera is listening on http://{address} (database: {})",
        engine.store().backend_name()
    );
    tessera_api::serve(listener, app, shutdown()).await?;
    engine.store().close().await;
    Ok(())
}

/// The first admin key, shown once: on a terminal, printed; otherwise (stdout going to a
/// log or a pipe) written to a new file only its owner can read, and the file named. The
/// file is made before the key: a key is never saved that could not be handed over.
async fn hand_over_admin_key(engine: &Engine, file: &std::path::Path) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    if std::io::stdout().is_terminal() {
        if let Some(key) = engine.ensure_admin_key().await? {
            println!("Created the first admin API key (shown only once):\n\n    {key}\n");
        }
        return Ok(());
    }
    // A new file (never one that exists, nor a link planted in its place), owner-only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(file).with_context(|| {
        format!(
            "cannot make {} for the first admin key (it must not exist; --admin-key-file names another)",
            file.display()
        )
    })?;
    let key = match engine.ensure_admin_key().await {
        Ok(Some(key)) => key,
        Ok(None) => {
            drop(out);
            std::fs::remove_file(file)?;
            return Ok(());
        }
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(file);
            return Err(e.into());
        }
    };
    writeln!(out, "{key}")?;
    out.sync_all()?;
    println!(
        "Created the first admin API key in {} (mode 0600): read it, keep it safe, delete the file.",
        file.display()
    );
    Ok(())
}

/// Checks one programme file: prints `FILE: ok (...)`, or each problem as
/// `FILE:LINE:COLUMN: FIELD: REASON`; whether it passed.
fn check_programme_file(file: &std::path::Path) -> anyhow::Result<bool> {
    let source =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match Programme::parse(&source) {
        Ok(p) => {
            println!(
                "{}: ok ({}, {}, {} segments, {} custom activities, {}, {}, {}, {} plans, {} offers, {})",
                file.display(),
                p.currency.code(),
                p.timezone_name,
                p.segments.len(),
                p.activities.len(),
                if p.points.is_some() { "points" } else { "no points" },
                if p.score.is_some() { "score" } else { "no score" },
                p.tiers
                    .as_ref()
                    .map_or("no tiers".to_owned(), |t| format!("{} tiers", t.tiers.len())),
                p.plans.len(),
                p.offers.len(),
                if p.referral.is_some() { "referral" } else { "no referral" },
            );
            Ok(true)
        }
        Err(issues) => {
            for issue in &issues {
                println!(
                    "{}:{}:{}: {}: {}",
                    file.display(),
                    issue.line,
                    issue.column,
                    issue.field,
                    issue.reason
                );
            }
            Ok(false)
        }
    }
}

/// `--programme FILE` and `--demo` at start. Never silently replaces a stored version:
/// a file is loaded on a database with no programme; the same text as the running version
/// changes nothing; another text is refused unless `--replace-programme` asks for it; the
/// demo on a database that runs a programme leaves it running. Prints what it did.
async fn load_programme_at_start(engine: &Engine, args: &ServeArgs) -> anyhow::Result<()> {
    let (source, name) = match (&args.programme, &args.preset, args.demo) {
        (Some(path), _, _) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        (None, Some(preset), _) => {
            let p = presets::find(preset).ok_or_else(|| presets::unknown(preset))?;
            (p.source.to_owned(), format!("the preset {preset}"))
        }
        (None, None, true) => (DEMO_PROGRAMME.to_owned(), "the demo programme".to_owned()),
        (None, None, false) => {
            if args.replace_programme {
                bail!("--replace-programme goes with --programme or --preset");
            }
            return Ok(());
        }
    };
    if let Ok(running) = engine.programme() {
        let same = running.sha256 == tessera_engine::sha256_hex(source.as_bytes());
        if same {
            println!("Programme: version {} is {name} already.", running.version);
            return Ok(());
        }
        if args.demo {
            println!(
                "Programme: the database runs version {} (saved {}); {name} is not loaded over it.",
                running.version, running.created_at
            );
            return Ok(());
        }
        if !args.replace_programme {
            bail!(
                "the database runs programme version {} (saved {}), which is not {name}: start \
                 with --replace-programme to make {name} version {}, or without --programme or --preset to \
                 keep version {}",
                running.version,
                running.created_at,
                running.version + 1,
                running.version
            );
        }
    }
    let replaced = engine.programme().ok().map(|p| p.version);
    let running = match engine.put_programme(&source).await {
        Err(tessera_engine::EngineError::ProgrammeInvalid(issues)) => {
            for issue in &issues {
                report(&format!("programme: {issue}"));
            }
            bail!("the programme file was refused");
        }
        other => other?.0,
    };
    match replaced {
        Some(old) => println!(
            "Programme: {name} replaced version {old} as version {}.",
            running.version
        ),
        None => println!("Programme: {name} loaded as version {}.", running.version),
    }
    Ok(())
}

/// The demo's PLUS plan hands out an iQIYI code with every paid year: the demo fills that
/// pool with 100 codes (codes already there are skipped), so a purchase works at once.
async fn seed_demo_codes(engine: &Engine) -> anyhow::Result<()> {
    let codes: Vec<String> = (1..=100).map(|i| format!("DEMO-IQIYI-{i:04}")).collect();
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let (_, counts) = engine.upload_codes("iqiyi_vip", &refs).await?;
    tracing::info!(
        available = counts.total - counts.assigned,
        "demo code pool iqiyi_vip"
    );
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Whether logs are JSON lines (`--log-json`): then every line on stderr is JSON, the
/// last error included.
static LOG_JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn init_logs(json: bool) {
    use std::io::IsTerminal;
    let _ = LOG_JSON.set(json);
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        // Colour codes only for a person at a terminal, never in a file or a pipe.
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// An error for the operator: a JSON log line under `--log-json`, plain text otherwise.
fn report(message: &str) {
    if LOG_JSON.get().copied().unwrap_or(false) {
        tracing::error!(error = message, "tessera stopped");
    } else {
        eprintln!("error: {message}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_database_url_is_logged_without_its_password() {
        for (url, shown) in [
            (
                "postgres://tessera:s3cret@db:5432/t",
                "postgres://tessera:***@db:5432/t",
            ),
            (
                "postgres://postgres@127.0.0.1/t",
                "postgres://postgres@127.0.0.1/t",
            ),
            ("sqlite://tessera.db", "sqlite://tessera.db"),
        ] {
            assert_eq!(super::redacted(url), shown);
        }
    }
}
