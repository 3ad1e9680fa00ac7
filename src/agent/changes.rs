//! A signal that some pod's status may have changed, for the API sync to react at once
//! instead of polling: pod workers [`bump`] it whenever they write their status snapshot,
//! the sync loop [`subscribe`]s. Process-wide (several agents in one test process only see
//! spurious wake-ups, which cost a comparison).

use std::sync::LazyLock;

use tokio::sync::watch;

static CHANGES: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Notes that a pod's status may have changed.
pub fn bump() {
    CHANGES.send_modify(|n| *n = n.wrapping_add(1));
}

/// A receiver that wakes after each [`bump`].
pub fn subscribe() -> watch::Receiver<u64> {
    CHANGES.subscribe()
}
