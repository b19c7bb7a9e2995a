//! `dotmac-edge sessions`: accounting sessions from the database.

use clap::Subcommand;
use edge_radius::coa::DynAuthKind;
use edge_radius::dict::Dictionary;
use edge_shared::accounting::unix_now;
use edge_shared::store::SessionQuery;

use crate::config::Config;
use crate::ops::dynauth;

#[derive(Subcommand)]
pub enum SessionCmd {
    /// List sessions, newest first, one JSON object per line (radacct's columns, our names;
    /// times in Unix seconds).
    List {
        #[arg(long)]
        username: Option<String>,
        /// Sessions that had this framed IPv4 address.
        #[arg(long)]
        address: Option<String>,
        /// Sessions of this NAS (its NAS-IP-Address).
        #[arg(long)]
        nas: Option<String>,
        /// Only sessions still open.
        #[arg(long)]
        open: bool,
        /// Sessions that started at or after this Unix time.
        #[arg(long)]
        since: Option<i64>,
        /// Sessions that started before this Unix time.
        #[arg(long)]
        until: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Delete closed sessions that stopped more than DAYS days ago.
    Prune {
        #[arg(long)]
        older_than_days: u32,
    },
    /// Send a Disconnect-Request (RFC 5176) for one session, or for every open session of a
    /// subscriber, and print the NAS's answer (one JSON object per session).
    Disconnect {
        /// The session's unique id.
        #[arg(
            long,
            conflicts_with = "username",
            required_unless_present = "username"
        )]
        session: Option<String>,
        #[arg(long)]
        username: Option<String>,
    },
    /// Send a CoA-Request for one session with a plan's reply attributes or the attributes
    /// given, and print the NAS's answer.
    Coa {
        #[arg(long)]
        session: String,
        #[arg(long)]
        plan: Option<String>,
        /// `Attribute = value`. Repeat for more.
        #[arg(long = "attribute")]
        attribute: Vec<String>,
    },
}

pub async fn sessions(cfg: &Config, c: SessionCmd) -> anyhow::Result<()> {
    let store = super::admin::open_store(cfg).await?;
    match c {
        SessionCmd::List {
            username,
            address,
            nas,
            open,
            since,
            until,
            limit,
        } => {
            let q = SessionQuery {
                username,
                framed_ip_address: address,
                nas_ip_address: nas,
                open_only: open,
                since,
                until,
                limit,
                ..SessionQuery::default()
            };
            for r in store.sessions_list(&q).await? {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        SessionCmd::Disconnect { session, username } => {
            let retry = dynauth::retry(cfg.api.coa_timeout_ms, cfg.api.coa_tries);
            let results = match (session, username) {
                (Some(id), _) => {
                    vec![dynauth::one(&store, &id, DynAuthKind::Disconnect, &[], retry).await?]
                }
                (None, Some(u)) => {
                    dynauth::all_of(&store, &u, DynAuthKind::Disconnect, retry).await?
                }
                (None, None) => anyhow::bail!("give --session or --username"),
            };
            if results.is_empty() {
                println!("no open session");
            }
            for r in results {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        SessionCmd::Coa {
            session,
            plan,
            attribute,
        } => {
            let dict = Dictionary::load_with(&cfg.radius.dictionary_dirs)?;
            let pairs = dynauth::coa_pairs(&store, &dict, plan.as_deref(), &attribute).await?;
            let retry = dynauth::retry(cfg.api.coa_timeout_ms, cfg.api.coa_tries);
            let r = dynauth::one(&store, &session, DynAuthKind::Coa, &pairs, retry).await?;
            println!("{}", serde_json::to_string(&r)?);
        }
        SessionCmd::Prune { older_than_days } => {
            let before = unix_now() - i64::from(older_than_days) * 86_400;
            let n = store.sessions_prune(before).await?;
            println!("pruned {n} sessions that stopped before {before}");
        }
    }
    Ok(())
}
