//! `dotmac-edge tokens`: bearer tokens for the REST API.

use clap::Subcommand;

use super::admin::open_store;
use crate::config::Config;

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a token. It is printed once, alone on the last line; only its hash is kept.
    Create {
        #[arg(long)]
        name: String,
        /// `read` (GET only) or `write` (everything).
        #[arg(long, default_value = "read")]
        scope: String,
    },
    List,
    /// Revoke a token; requests carrying it are refused at once.
    Remove {
        name: String,
    },
}

pub async fn tokens(cfg: &Config, c: TokenCmd) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    match c {
        TokenCmd::Create { name, scope } => {
            let (t, token) = crate::ops::tokens::create(&store, &name, &scope).await?;
            println!(
                "created token {} ({} scope); it is shown once, below:",
                t.name, t.scope
            );
            println!("{token}");
        }
        TokenCmd::List => {
            println!("{:<24} {:<6} CREATED", "NAME", "SCOPE");
            for t in store.token_list().await? {
                println!("{:<24} {:<6} {}", t.name, t.scope, t.created_at);
            }
        }
        TokenCmd::Remove { name } => {
            store.token_remove(&name).await?;
            println!("removed token {name}");
        }
    }
    Ok(())
}
