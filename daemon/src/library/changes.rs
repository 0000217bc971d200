//! The library's announcements of what changed, for whoever mirrors it (the vector index).
//!
//! The queue is bounded: a burst of file events (ten thousand files copied in) must not grow
//! memory without limit, and a scan must not wait on the mirror either (a Qdrant server
//! that is down would stall analysis). So an announcement that finds the queue full is
//! dropped and the overflow is remembered; the mirror, told so, compares the whole library
//! with the index instead, which loses nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Changes held at most before they are summarised as "everything may have changed".
pub const CHANGE_QUEUE: usize = 4096;

/// What a scan changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibraryChange {
    /// The track was added, re-analysed, moved, or its analysis failed or was dropped.
    Changed(i64),
    /// The track left the library.
    Removed(i64),
}

/// A queue of at most `capacity` changes.
pub fn change_queue(capacity: usize) -> (ChangeSender, ChangeReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let overflowed = Arc::new(AtomicBool::new(false));
    (ChangeSender { tx, overflowed: overflowed.clone() }, ChangeReceiver { rx, overflowed })
}

#[derive(Debug, Clone)]
pub struct ChangeSender {
    tx: mpsc::Sender<LibraryChange>,
    overflowed: Arc<AtomicBool>,
}

impl ChangeSender {
    /// Never waits: a full queue records an overflow instead; nobody listening is fine.
    pub fn announce(&self, change: LibraryChange) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(change) {
            self.overflowed.store(true, Ordering::SeqCst);
        }
    }
}

#[derive(Debug)]
pub struct ChangeReceiver {
    rx: mpsc::Receiver<LibraryChange>,
    overflowed: Arc<AtomicBool>,
}

impl ChangeReceiver {
    pub async fn recv(&mut self) -> Option<LibraryChange> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<LibraryChange> {
        self.rx.try_recv().ok()
    }

    /// Whether changes were dropped since the last call: the mirror must then resync whole.
    pub fn take_overflow(&self) -> bool {
        self.overflowed.swap(false, Ordering::SeqCst)
    }

    /// Changes waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_ten_thousand_changes_is_held_in_a_bounded_queue_and_marked_as_overflowed() {
        let (tx, mut rx) = change_queue(64);
        for id in 0..10_000 {
            tx.announce(LibraryChange::Changed(id));
        }
        assert_eq!(rx.len(), 64, "the queue holds its capacity and no more");
        assert!(rx.take_overflow(), "the dropped changes are remembered");
        assert!(!rx.take_overflow(), "once");
        assert_eq!(rx.try_recv(), Some(LibraryChange::Changed(0)), "the oldest are kept, in order");
    }

    #[test]
    fn changes_within_capacity_are_not_an_overflow() {
        let (tx, mut rx) = change_queue(4);
        for id in 0..4 {
            tx.announce(LibraryChange::Removed(id));
        }
        assert!(!rx.take_overflow());
        assert_eq!((0..4).filter_map(|_| rx.try_recv()).count(), 4);
        drop(rx);
        tx.announce(LibraryChange::Changed(9)); // nobody listening: no panic, no error
    }
}
