//! CSV import of subscribers: validated entirely before anything is written.

use std::path::Path;

use anyhow::{bail, Context};
use edge_shared::types::{SubscriberRecord, SubscriberStatus};

/// Reads every row, or fails naming the first bad line (1-based, the header is line 1).
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<(usize, SubscriberRecord)>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = rdr.headers().context("missing header row")?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let known = [
        "username",
        "password",
        "plan",
        "status",
        "static_ipv4",
        "calling_station_id",
    ];
    if let Some(h) = headers
        .iter()
        .find(|h| !known.iter().any(|k| k.eq_ignore_ascii_case(h)))
    {
        bail!("line 1: unknown column `{h}` (known: {})", known.join(", "));
    }
    let (Some(user_col), Some(pass_col)) = (col("username"), col("password")) else {
        bail!("line 1: the header must name `username` and `password`");
    };
    let (plan_col, status_col, ip_col, csi_col) = (
        col("plan"),
        col("status"),
        col("static_ipv4"),
        col("calling_station_id"),
    );
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, row) in rdr.records().enumerate() {
        let line = i + 2;
        let row = row.with_context(|| format!("line {line}: unreadable row"))?;
        let get = |c: Option<usize>| c.and_then(|c| row.get(c)).filter(|v| !v.is_empty());
        let username =
            get(Some(user_col)).with_context(|| format!("line {line}: empty username"))?;
        let password =
            get(Some(pass_col)).with_context(|| format!("line {line}: empty password"))?;
        if !seen.insert(username.to_string()) {
            bail!("line {line}: username `{username}` appears twice");
        }
        let status = match get(status_col) {
            Some(s) => SubscriberStatus::parse(s)
                .with_context(|| format!("line {line}: status `{s}` is not active or suspended"))?,
            None => SubscriberStatus::Active,
        };
        let static_ipv4 = match get(ip_col) {
            Some(a) => Some(a.parse().with_context(|| {
                format!("line {line}: static_ipv4 `{a}` is not an IPv4 address")
            })?),
            None => None,
        };
        out.push((
            line,
            SubscriberRecord {
                username: username.to_string(),
                password: password.to_string(),
                plan: get(plan_col).map(str::to_string),
                status,
                static_ipv4,
                calling_station_id: get(csi_col).map(str::to_string),
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn reads_rows_and_blames_lines() {
        let f = write("username,password,plan,status\nalice,pw,gold,active\nbob,pw2,,suspended\n");
        let rows = read_csv(f.path()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0, 3);
        assert_eq!(rows[1].1.status, SubscriberStatus::Suspended);
        assert_eq!(rows[1].1.plan, None);

        let f = write("username,password,static_ipv4\nalice,pw,10.0.0.1\nbob,pw,10.0.0.300\n");
        let e = read_csv(f.path()).unwrap_err().to_string();
        assert!(e.starts_with("line 3:"), "{e}");
        let f = write("username,plan\nalice,gold\n");
        assert!(read_csv(f.path()).is_err());
        let f = write("username,password,colour\nalice,pw,red\n");
        assert!(read_csv(f.path()).is_err());
        let f = write("username,password\nalice,pw\nalice,pw\n");
        assert!(read_csv(f.path())
            .unwrap_err()
            .to_string()
            .contains("line 3"));
    }
}
