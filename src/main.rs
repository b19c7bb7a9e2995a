//! dotmac-edge: the per-tenant network-edge data plane of an ISP.

mod api;
mod cmd;
mod config;
mod http;
mod ops;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dotmac-edge",
    version,
    about = "RADIUS, TR-069 ACS and IPAM for one ISP tenant"
)]
struct Cli {
    /// Configuration file (TOML). Every key can also be set as EDGE_<SECTION>_<KEY>.
    #[arg(long, global = true, env = "EDGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Seed a demo NAS (127.0.0.1, secret testing123), plan and subscriber (demo/demo)
        /// into an empty database.
        #[arg(long)]
        demo: bool,
        /// What this process runs: any of radius, acs, api, comma-separated (default all).
        /// An API-only process lets the control plane's traffic live apart from the data
        /// plane's.
        #[arg(long, default_value = "radius,acs,api", value_parser = cmd::serve::Roles::parse)]
        roles: cmd::serve::Roles,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Validate a configuration file and exit.
    CheckConfig { file: PathBuf },
    /// Manage RADIUS clients (NAS/BNG routers).
    #[command(subcommand)]
    Nas(cmd::admin::NasCmd),
    /// Manage service plans.
    #[command(subcommand)]
    Plans(cmd::admin::PlanCmd),
    /// Manage subscribers.
    #[command(subcommand)]
    Subscribers(cmd::admin::SubscriberCmd),
    /// Address pools: add, list, remove, reserve, release, usage, next available.
    #[command(subcommand)]
    Pools(cmd::pools::PoolCmd),
    /// List leases: of a pool, an address, a subscriber or a session, in a state.
    Leases(cmd::pools::LeaseQuery),
    /// Bearer tokens for the REST API: create, list, remove.
    #[command(subcommand)]
    Tokens(cmd::tokens::TokenCmd),
    /// Accounting sessions: list, prune, disconnect, change authorization (CoA).
    #[command(subcommand)]
    Sessions(cmd::sessions::SessionCmd),
    /// TR-069 devices (CPEs): list, show, tag, credentials, kick (connection request).
    #[command(subcommand)]
    Devices(cmd::acs::DeviceCmd),
    /// Tasks queued for devices: add, list, show, remove.
    #[command(subcommand)]
    Tasks(cmd::acs::TaskCmd),
    /// Presets: desired values for every device matching a filter.
    #[command(subcommand)]
    Presets(cmd::acs::PresetCmd),
    /// Files served to CPEs for Download (firmware, configuration).
    #[command(subcommand)]
    Files(cmd::acs::FileCmd),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::CheckConfig { file } = &cli.command {
        config::Config::load(Some(file), std::env::vars())?;
        println!("{}: ok", file.display());
        return Ok(());
    }
    let cfg = config::Config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Serve { demo, roles } => cmd::serve::run(cfg, demo, roles).await,
        Command::Migrate => {
            let store = edge_shared::store::Store::connect(&cfg.database.url).await?;
            store.migrate().await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::CheckConfig { .. } => Ok(()),
        Command::Nas(c) => cmd::admin::nas(&cfg, c).await,
        Command::Plans(c) => cmd::admin::plans(&cfg, c).await,
        Command::Subscribers(c) => cmd::admin::subscribers(&cfg, c).await,
        Command::Tokens(c) => cmd::tokens::tokens(&cfg, c).await,
        Command::Sessions(c) => cmd::sessions::sessions(&cfg, c).await,
        Command::Pools(c) => cmd::pools::pools(&cfg, c).await,
        Command::Leases(q) => cmd::pools::leases(&cfg, q).await,
        Command::Devices(c) => cmd::acs::devices(&cfg, c).await,
        Command::Tasks(c) => cmd::acs::tasks(&cfg, c).await,
        Command::Presets(c) => cmd::acs::presets(&cfg, c).await,
        Command::Files(c) => cmd::acs::files(&cfg, c).await,
    }
}
