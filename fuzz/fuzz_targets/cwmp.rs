//! Any bytes a CPE sends: the CWMP reader returns a message or a typed error, never a panic,
//! within its limits. A message that parses goes through a session as its first or next
//! message, so the state machine sees hostile input too.
#![no_main]

use edge_acs::codec::{parse, Limits};
use edge_acs::session::{Job, Origin, Session};
use edge_acs::codec::Rpc;
use libfuzzer_sys::fuzz_target;

const INFORM: &[u8] = include_bytes!("../../acs/tests/fixtures/huawei_hg8245_inform.xml");

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_items: 1_000,
        ..Limits::default()
    };
    let Ok(msg) = parse(data, &limits) else {
        return;
    };
    // As the first message of a session...
    if let Some((mut s, _)) = Session::start(msg.clone(), 4) {
        s.handle(None);
    }
    // ...and as the answer to an RPC in flight.
    let first = parse(INFORM, &limits).expect("the fixture parses");
    let (mut s, _) = Session::start(first, 4).expect("an Inform");
    s.push(Job {
        origin: Origin::Task(1),
        rpc: Rpc::GetParameterValues(vec!["Device.".into()]),
    });
    s.handle(None);
    s.handle(Some(msg));
    s.take_effects();
});
