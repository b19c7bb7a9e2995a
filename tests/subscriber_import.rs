//! CSV import: 100,000 rows as one all-or-nothing upsert, on both backends.

mod common;

use std::io::Write;
use std::time::Instant;

use common::{cli, cli_output, Backend, TestDb};

fn write_csv(rows: usize, bad_line: Option<usize>) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut w = std::io::BufWriter::new(f.as_file_mut());
    writeln!(
        w,
        "username,password,plan,status,static_ipv4,calling_station_id"
    )
    .unwrap();
    for i in 0..rows {
        // Line numbers count the header as line 1.
        let ip = if Some(i + 2) == bad_line {
            "10.0.0.999".to_string()
        } else {
            String::new()
        };
        writeln!(w, "user{i:06},pw{i},basic,active,{ip},").unwrap();
    }
    drop(w);
    f
}

fn import_100k_all_or_nothing(backend: Backend) {
    let db = TestDb::new(backend);
    cli(
        &db.url,
        &[
            "plans",
            "add",
            "--name",
            "basic",
            "--reply",
            "Mikrotik-Rate-Limit = \"10M/10M\"",
        ],
    );

    let bad = write_csv(100_000, Some(77_778));
    let out = cli_output(
        &db.url,
        &["subscribers", "import", bad.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 77778"), "{err}");
    assert!(
        cli(&db.url, &["subscribers", "list", "--limit", "5"])
            .lines()
            .count()
            == 1,
        "nothing written"
    );

    let good = write_csv(100_000, None);
    let t = Instant::now();
    let out = cli(
        &db.url,
        &["subscribers", "import", good.path().to_str().unwrap()],
    );
    eprintln!(
        "{backend:?}: {} ({:?} including process start)",
        out.trim(),
        t.elapsed()
    );
    assert!(out.contains("imported 100000"), "{out}");
    let listed = cli(&db.url, &["subscribers", "list", "--after", "user099997"]);
    assert!(
        listed.contains("user099998") && listed.contains("user099999"),
        "{listed}"
    );

    // An upsert: importing again changes rows in place, plan references are checked.
    let again = write_csv(10, None);
    assert!(cli(
        &db.url,
        &["subscribers", "import", again.path().to_str().unwrap()]
    )
    .contains("imported 10"));
    let mut unknown_plan = tempfile::NamedTempFile::new().unwrap();
    writeln!(unknown_plan, "username,password,plan\nx,y,platinum").unwrap();
    let out = cli_output(
        &db.url,
        &[
            "subscribers",
            "import",
            unknown_plan.path().to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: unknown plan `platinum`"));
}
both_backends!(
    import_100k_all_or_nothing,
    super::import_100k_all_or_nothing
);
