//! Accounting sessions as the data plane sees them: the columns of a session row, how two
//! reports of one session merge, and the events the RADIUS listener hands to the writer.
//!
//! A session row is a fixed set of columns (see [`COLUMNS`]), each with a merge rule. The
//! rules form a join: merging is associative and commutative, so the row a session ends up
//! with does not depend on the order, or the number of times, its packets arrive. The same
//! rules are written once in Rust (to fold a batch) and once in SQL (to fold the batch into
//! the table), both generated from [`COLUMNS`].

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds: the clock every session time is written in.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Terminate cause written by the stale-session reaper: not a RADIUS value, so that reports
/// can tell a reaped session from one the NAS closed.
pub const STALE_CAUSE: &str = "Stale-Session";
/// Terminate cause for sessions closed by Accounting-On or Accounting-Off.
pub const NAS_REBOOT_CAUSE: &str = "NAS-Reboot";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
}

/// How a newer report of a column meets what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Set when the row is created and never changed.
    Key,
    /// The latest report that has a value.
    Latest,
    /// The first value seen stays.
    First,
    Min,
    Max,
    /// Stop time: the first stop stays, except that a real Stop replaces a reaper's close.
    Stop,
    /// Terminate cause: follows the stop time.
    Cause,
    /// Start time: what a Start reported, else the earliest any other packet implies.
    Start,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub rule: Rule,
}

const fn col(name: &'static str, kind: Kind, rule: Rule) -> Column {
    Column { name, kind, rule }
}

/// Column positions in [`COLUMNS`] and in [`SessionRecord::values`].
pub mod c {
    pub const ACCT_SESSION_ID: usize = 0;
    pub const ACCT_UNIQUE_ID: usize = 1;
    pub const USERNAME: usize = 2;
    pub const REALM: usize = 3;
    pub const NAS_ID: usize = 4;
    pub const NAS_IP_ADDRESS: usize = 5;
    pub const NAS_IDENTIFIER: usize = 6;
    pub const NAS_PORT: usize = 7;
    pub const NAS_PORT_ID: usize = 8;
    pub const NAS_PORT_TYPE: usize = 9;
    pub const START: usize = 10;
    pub const UPDATE: usize = 11;
    pub const STOP: usize = 12;
    pub const INTERVAL: usize = 13;
    pub const SESSION_TIME: usize = 14;
    pub const AUTHENTIC: usize = 15;
    pub const CONNECT_INFO_START: usize = 16;
    pub const CONNECT_INFO_STOP: usize = 17;
    pub const INPUT_OCTETS: usize = 18;
    pub const OUTPUT_OCTETS: usize = 19;
    pub const INPUT_PACKETS: usize = 20;
    pub const OUTPUT_PACKETS: usize = 21;
    pub const CALLED_STATION_ID: usize = 22;
    pub const CALLING_STATION_ID: usize = 23;
    pub const TERMINATE_CAUSE: usize = 24;
    pub const SERVICE_TYPE: usize = 25;
    pub const FRAMED_PROTOCOL: usize = 26;
    pub const FRAMED_IP_ADDRESS: usize = 27;
    pub const FRAMED_IPV6_ADDRESS: usize = 28;
    pub const FRAMED_IPV6_PREFIX: usize = 29;
    pub const FRAMED_INTERFACE_ID: usize = 30;
    pub const DELEGATED_IPV6_PREFIX: usize = 31;
    pub const CLASS: usize = 32;
    pub const LAST_SEEN: usize = 33;
    /// 1 when the start time came from a Start packet (and so is not derived).
    pub const START_REPORTED: usize = 34;
    pub const COUNT: usize = 35;
}

use Kind::{Int, Text};
use Rule::*;

/// The `sessions` table's columns (besides `id`), in the order of [`c`].
pub const COLUMNS: [Column; c::COUNT] = [
    col("acct_session_id", Text, Key),
    col("acct_unique_id", Text, Key),
    col("username", Text, Key),
    col("realm", Text, Latest),
    col("nas_id", Int, Latest),
    col("nas_ip_address", Text, Key),
    col("nas_identifier", Text, Latest),
    col("nas_port", Int, Latest),
    col("nas_port_id", Text, Latest),
    col("nas_port_type", Text, Latest),
    col("acct_start_time", Int, Rule::Start),
    col("acct_update_time", Int, Max),
    col("acct_stop_time", Int, Stop),
    col("acct_interval", Int, Latest),
    col("acct_session_time", Int, Max),
    col("acct_authentic", Text, Latest),
    col("connect_info_start", Text, First),
    col("connect_info_stop", Text, Latest),
    col("acct_input_octets", Int, Max),
    col("acct_output_octets", Int, Max),
    col("acct_input_packets", Int, Max),
    col("acct_output_packets", Int, Max),
    col("called_station_id", Text, Latest),
    col("calling_station_id", Text, Latest),
    col("acct_terminate_cause", Text, Cause),
    col("service_type", Text, Latest),
    col("framed_protocol", Text, Latest),
    col("framed_ip_address", Text, Latest),
    col("framed_ipv6_address", Text, Latest),
    col("framed_ipv6_prefix", Text, Latest),
    col("framed_interface_id", Text, Latest),
    col("delegated_ipv6_prefix", Text, Latest),
    col("class", Text, Latest),
    col("last_seen", Int, Max),
    col("start_reported", Int, Max),
];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Value {
    #[default]
    Null,
    Text(String),
    Int(i64),
}

impl Value {
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// One session's columns, as one packet reports them or as several reports merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub values: [Value; c::COUNT],
}

impl Default for SessionRecord {
    fn default() -> Self {
        SessionRecord {
            values: std::array::from_fn(|_| Value::Null),
        }
    }
}

/// A session as a JSON object keyed by column name (the CLI's and the API's shape); our
/// bookkeeping column `start_reported` is left out.
impl serde::Serialize for SessionRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_fields(s, Fields::SHOWN)
    }
}

impl SessionRecord {
    /// The session's `fields` only, keyed by column name in [`COLUMNS`] order.
    pub fn serialize_fields<S: serde::Serializer>(
        &self,
        s: S,
        fields: Fields,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(fields.positions().count()))?;
        for i in fields.positions() {
            let name = COLUMNS[i].name;
            match &self.values[i] {
                Value::Null => m.serialize_entry(name, &())?,
                Value::Text(t) => m.serialize_entry(name, t)?,
                Value::Int(n) => m.serialize_entry(name, n)?,
            }
        }
        m.end()
    }
}

/// A column's value borrowed from wherever it is (a database row, a record).
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Null,
    Text(&'a str),
    Int(i64),
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    fn from(v: &'a Value) -> ValueRef<'a> {
        match v {
            Value::Null => ValueRef::Null,
            Value::Text(t) => ValueRef::Text(t),
            Value::Int(i) => ValueRef::Int(*i),
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Value {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Text(t) => Value::Text(t.to_string()),
            ValueRef::Int(i) => Value::Int(i),
        }
    }
}

/// `"name":` for each column, in [`COLUMNS`] order; `None` for the column JSON leaves out.
static JSON_KEYS: std::sync::LazyLock<[Option<String>; c::COUNT]> =
    std::sync::LazyLock::new(|| {
        std::array::from_fn(|i| {
            (i != c::START_REPORTED).then(|| format!("\"{}\":", COLUMNS[i].name))
        })
    });

/// A set of session columns, one bit each in [`COLUMNS`] order: which of a session's values
/// a listing returns (the API's `fields=`, like NetBox's `fields` and GenieACS's
/// `projection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields(u64);

const _: () = assert!(c::COUNT < 64);

impl Fields {
    /// Every column a session's JSON shows: all but the bookkeeping `start_reported`.
    pub const SHOWN: Fields = Fields(((1 << c::COUNT) - 1) & !(1 << c::START_REPORTED));
    /// Every column of the table.
    pub const ALL: Fields = Fields((1 << c::COUNT) - 1);

    pub const fn has(self, i: usize) -> bool {
        self.0 >> i & 1 == 1
    }

    pub const fn with(self, i: usize) -> Fields {
        Fields(self.0 | 1 << i)
    }

    /// The columns' positions, in [`COLUMNS`] order.
    pub fn positions(self) -> impl Iterator<Item = usize> {
        (0..c::COUNT).filter(move |&i| self.has(i))
    }

    /// `name,name,…` of shown columns, in any order, repeats allowed. An empty list, or a
    /// name that is not a shown column, is refused with a message saying which.
    pub fn parse(list: &str) -> Result<Fields, String> {
        let mut f = Fields(0);
        for name in list.split(',').map(str::trim) {
            match COLUMNS.iter().position(|col| col.name == name) {
                Some(i) if Fields::SHOWN.has(i) => f = f.with(i),
                _ if name.is_empty() => return Err("an empty field name".into()),
                _ => return Err(format!("no session field is called {name:?}")),
            }
        }
        Ok(f)
    }
}

impl Default for Fields {
    fn default() -> Self {
        Fields::SHOWN
    }
}

/// Appends one session as the same JSON object `SessionRecord` serializes to, from its
/// values in [`COLUMNS`] order, without building the record: the API's session lists render
/// rows straight from the database with it (keys written once, text copied as is unless it
/// needs escaping). Only the `fields` that are shown are written.
pub fn push_session_json<'a>(
    out: &mut Vec<u8>,
    values: impl IntoIterator<Item = ValueRef<'a>>,
    fields: Fields,
) {
    out.push(b'{');
    let mut first = true;
    for (i, (key, v)) in JSON_KEYS.iter().zip(values).enumerate() {
        let Some(key) = key else { continue };
        if !fields.has(i) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(key.as_bytes());
        match v {
            ValueRef::Null => out.extend_from_slice(b"null"),
            ValueRef::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            ValueRef::Text(t) if t.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') => {
                out.push(b'"');
                out.extend_from_slice(t.as_bytes());
                out.push(b'"');
            }
            ValueRef::Text(t) => {
                // Writing to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, t);
            }
        }
    }
    out.push(b'}');
}

impl SessionRecord {
    pub fn text(&self, i: usize) -> Option<&str> {
        self.values[i].text()
    }

    pub fn int(&self, i: usize) -> Option<i64> {
        self.values[i].int()
    }

    pub fn set_text(&mut self, i: usize, v: impl Into<String>) {
        debug_assert_eq!(COLUMNS[i].kind, Kind::Text);
        self.values[i] = Value::Text(v.into());
    }

    pub fn set_int(&mut self, i: usize, v: i64) {
        debug_assert_eq!(COLUMNS[i].kind, Kind::Int);
        self.values[i] = Value::Int(v);
    }

    pub fn unique_id(&self) -> &str {
        self.text(c::ACCT_UNIQUE_ID).unwrap_or_default()
    }

    pub fn is_open(&self) -> bool {
        self.values[c::STOP].is_null()
    }

    /// Folds a newer report of the same session into this one, by each column's rule.
    pub fn merge(&mut self, newer: SessionRecord) {
        let reaped = self.text(c::TERMINATE_CAUSE) == Some(STALE_CAUSE);
        let old_reported = self.int(c::START_REPORTED) == Some(1);
        let new_reported = newer.int(c::START_REPORTED) == Some(1);
        let stop_replaced = !newer.values[c::STOP].is_null() && (self.is_open() || reaped);
        for (i, new) in newer.values.into_iter().enumerate() {
            let old = &mut self.values[i];
            match COLUMNS[i].rule {
                Key | First => {
                    if old.is_null() {
                        *old = new;
                    }
                }
                Latest => {
                    if !new.is_null() {
                        *old = new;
                    }
                }
                Min | Max => {
                    let pick_new = match (old.int(), new.int()) {
                        (None, Some(_)) => true,
                        (Some(o), Some(n)) => {
                            if COLUMNS[i].rule == Min {
                                n < o
                            } else {
                                n > o
                            }
                        }
                        _ => false,
                    };
                    if pick_new {
                        *old = new;
                    }
                }
                Stop | Cause => {
                    if stop_replaced {
                        *old = new;
                    }
                }
                Rule::Start => {
                    let take = if old_reported || new_reported {
                        !old_reported
                    } else {
                        match (old.int(), new.int()) {
                            (None, Some(_)) => true,
                            (Some(o), Some(n)) => n < o,
                            _ => false,
                        }
                    };
                    if take {
                        *old = new;
                    }
                }
            }
        }
    }
}

/// What an Accounting-Request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcctStatus {
    Start,
    Interim,
    Stop,
    /// Accounting-On and Accounting-Off: the NAS has (re)started or is stopping; every open
    /// session it had is over.
    NasOn,
    NasOff,
}

impl AcctStatus {
    /// From Acct-Status-Type (RFC 2866 section 5.1).
    pub fn from_code(v: u32) -> Option<AcctStatus> {
        match v {
            1 => Some(AcctStatus::Start),
            2 => Some(AcctStatus::Stop),
            3 => Some(AcctStatus::Interim),
            7 => Some(AcctStatus::NasOn),
            8 => Some(AcctStatus::NasOff),
            _ => None,
        }
    }
}

/// A decoded, verified Accounting-Request, or the reaper's verdict on a silent session.
#[derive(Debug, Clone)]
pub enum AcctEvent {
    /// Start, Interim-Update or Stop, as the session columns it reports.
    Session(Box<SessionRecord>),
    /// Accounting-On/Off: close what `nas_ip_address` had open that started before `at`.
    NasRestart { nas_ip_address: String, at: i64 },
    /// Close a session nothing has been heard of since `last_seen`, at its last update.
    Reap { unique_id: String, last_seen: i64 },
    /// An address lease changed (allocated, bound, extended, released).
    Lease(Box<crate::leases::LeaseChange>),
}

/// Something that takes accounting events and calls `done(true)` once the event is durable,
/// `done(false)` when it could not be stored. `submit` refuses (returns the callback unused
/// as `Err`) when its queue is full.
pub trait AccountingSink: Send + Sync {
    /// `event` and `more` are stored together (in one journal row), in order.
    fn submit_with(&self, event: AcctEvent, more: Vec<AcctEvent>, done: Done) -> Result<(), Done>;

    fn submit(&self, event: AcctEvent, done: Done) -> Result<(), Done> {
        self.submit_with(event, Vec::new(), done)
    }
}

pub type Done = Box<dyn FnOnce(bool) + Send>;

/// An open session as the data plane keeps it in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    pub unique_id: String,
    pub session_id: String,
    pub username: String,
    pub nas_ip_address: String,
    pub framed_ip: Option<IpAddr>,
    pub framed_ipv6_prefix: Option<String>,
    pub delegated_ipv6_prefix: Option<String>,
    pub interval: Option<i64>,
    pub last_seen: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_json_is_what_the_record_serializes_to() {
        let mut r = SessionRecord::default();
        r.set_text(c::ACCT_UNIQUE_ID, "u1");
        r.set_text(c::USERNAME, "al\"ice\\ \u{1} \n é ✓");
        r.set_text(c::CLASS, "");
        r.values[c::NAS_PORT] = Value::Int(-7);
        r.values[c::INPUT_OCTETS] = Value::Int(i64::MAX);
        r.values[c::START_REPORTED] = Value::Int(1);
        let mut out = Vec::new();
        push_session_json(&mut out, r.values.iter().map(ValueRef::from), Fields::SHOWN);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&r).unwrap()
        );
    }

    #[test]
    fn fields_parse_names_and_refuse_the_rest() {
        let f = Fields::parse("username, acct_start_time,username").unwrap();
        assert_eq!(f.positions().collect::<Vec<_>>(), [c::USERNAME, c::START]);
        assert_eq!(Fields::default(), Fields::SHOWN);
        assert!(!Fields::SHOWN.has(c::START_REPORTED));
        assert_eq!(Fields::SHOWN.positions().count(), c::COUNT - 1);
        for bad in ["", "username,", "start_reported", "password", "Username"] {
            assert!(Fields::parse(bad).is_err(), "{bad:?}");
        }
        let mut r = SessionRecord::default();
        r.set_text(c::USERNAME, "alice");
        r.set_int(c::START, 7);
        r.set_text(c::CLASS, "gold");
        let mut out = Vec::new();
        push_session_json(&mut out, r.values.iter().map(ValueRef::from), f);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"username":"alice","acct_start_time":7}"#
        );
    }

    fn report(start: Option<i64>, update: i64, stop: Option<i64>, octets: i64) -> SessionRecord {
        let mut r = SessionRecord::default();
        r.set_text(c::ACCT_UNIQUE_ID, "u");
        r.set_text(c::USERNAME, "alice");
        if let Some(s) = start {
            r.set_int(c::START, s);
        }
        r.set_int(c::UPDATE, update);
        r.set_int(c::INPUT_OCTETS, octets);
        if let Some(s) = stop {
            r.set_int(c::STOP, s);
            r.set_text(c::TERMINATE_CAUSE, "User-Request");
        }
        r
    }

    #[test]
    fn merge_is_order_independent() {
        let reports = [
            report(Some(100), 100, None, 0),
            report(Some(90), 400, None, 500),
            report(Some(95), 700, Some(700), 900),
            report(Some(100), 100, None, 0),
        ];
        let fold = |order: &[usize]| {
            let mut acc = reports[order[0]].clone();
            for &i in &order[1..] {
                acc.merge(reports[i].clone());
            }
            acc
        };
        let a = fold(&[0, 1, 2, 3]);
        for order in [[2, 1, 0, 3], [3, 2, 0, 1], [1, 3, 2, 0]] {
            assert_eq!(fold(&order), a);
        }
        assert_eq!(a.int(c::START), Some(90));
        assert_eq!(a.int(c::UPDATE), Some(700));
        assert_eq!(a.int(c::STOP), Some(700));
        assert_eq!(a.int(c::INPUT_OCTETS), Some(900));
        assert_eq!(a.text(c::TERMINATE_CAUSE), Some("User-Request"));
    }

    #[test]
    fn a_start_packet_fixes_the_start_time() {
        let mut start = report(Some(1000), 1000, None, 0);
        start.set_int(c::START_REPORTED, 1);
        // An Interim whose session time implies a slightly earlier start.
        let interim = report(Some(998), 1300, None, 5);
        let mut a = start.clone();
        a.merge(interim.clone());
        let mut b = interim;
        b.merge(start);
        assert_eq!(a, b);
        assert_eq!(a.int(c::START), Some(1000));
    }

    #[test]
    fn late_start_does_not_reopen_and_real_stop_beats_reaper() {
        let mut r = report(Some(100), 200, Some(200), 10);
        r.merge(report(Some(100), 100, None, 0));
        assert!(!r.is_open());
        assert_eq!(r.int(c::INPUT_OCTETS), Some(10));

        let mut reaped = report(Some(100), 200, Some(200), 10);
        reaped.set_text(c::TERMINATE_CAUSE, STALE_CAUSE);
        reaped.merge(report(Some(100), 900, Some(900), 50));
        assert_eq!(reaped.int(c::STOP), Some(900));
        assert_eq!(reaped.text(c::TERMINATE_CAUSE), Some("User-Request"));
    }
}
