//! The accounting sink the RADIUS server and the reaper submit to when addresses are
//! managed: each event's effect on leases is worked out first, and the lease changes are
//! stored in the same journal row as the event, before its answer.

use std::sync::Arc;

use edge_shared::accounting::{AccountingSink, AcctEvent, Done};
use edge_shared::sessions::ActiveSessions;

use crate::Ipam;

pub struct LeaseTracking {
    pub inner: Arc<dyn AccountingSink>,
    pub ipam: Arc<Ipam>,
    pub active: Arc<ActiveSessions>,
}

impl AccountingSink for LeaseTracking {
    fn submit_with(
        &self,
        event: AcctEvent,
        mut more: Vec<AcctEvent>,
        done: Done,
    ) -> Result<(), Done> {
        more.extend(self.ipam.on_event(&event, &self.active));
        self.inner.submit_with(event, more, done)
    }
}
