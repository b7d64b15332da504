//! Per-connection byte budgets between the core thread and a connection's tasks.
//!
//! - **Outgoing** ([`OutQueue`]): frames the core sends to a peer are encoded on the core thread
//!   and queued for the connection's writer task. The queue counts its bytes. Past
//!   [`OUT_PAUSE_BYTES`] the connection's reader stops reading the peer (a peer that does not
//!   read our replies gets no more requests served); past [`OUT_BUDGET_BYTES`] a send fails and
//!   the core closes the connection. The writer reports what it wrote back to the core
//!   ([`crate::core::CoreMsg::Drained`]) so the protocol can pace its replies. It has two
//!   lanes: frames carrying a prioritised urgent message ([`OutQueue::send_urgent`],
//!   `dn_proto::Protocol::is_priority_frame`) are written before any ordinary frame still
//!   queued; each lane keeps its order, and both count against the same byte budget.
//! - **Incoming** ([`InCredit`]): a connection's reader takes credit for every frame it hands to
//!   the core and the credit returns when the core has handled the frame. With no credit left the
//!   reader waits, QUIC flow control stops the peer, and the core's queue holds at most
//!   [`IN_BUDGET_BYTES`] per connection.
//!
//! Both budgets are per connection, and the driver caps the number of connections, so what
//! peers can make this node hold in queues is bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Bytes queued for one peer above which its connection is closed. A frame is at most 64 KiB
/// and the protocol paces its replies to 1 MiB in flight, so an honest peer that reads its
/// stream never comes near; 16 MiB leaves room for bursts of fresh messages and topology.
pub const OUT_BUDGET_BYTES: usize = 16 * 1024 * 1024;
/// Bytes queued for one peer above which we stop reading that peer until the queue drains
/// below it: it gets no new requests served while it does not read what it asked for.
pub const OUT_PAUSE_BYTES: usize = 4 * 1024 * 1024;
/// The writer reports written bytes to the core at least every this many bytes (and whenever
/// its queue runs empty), so the core's channel is not flooded with one report per frame.
pub const DRAIN_REPORT_BYTES: usize = 64 * 1024;
/// Bytes of one connection's frames waiting in the core's queue, at most. A frame is at most
/// 64 KiB (`MAX_FRAME_BYTES`), so one always fits.
pub const IN_BUDGET_BYTES: usize = 1024 * 1024;

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection's writer is gone (the connection closed).
    #[error("connection closed")]
    Closed,
    /// The peer has [`OUT_BUDGET_BYTES`] queued already: it is not reading.
    #[error("the peer is not reading: {queued} bytes queued, budget {budget}")]
    OverBudget {
        /// Bytes queued.
        queued: usize,
        /// The budget.
        budget: usize,
    },
}

struct Shared {
    queued: AtomicUsize,
    /// Signalled when `queued` falls below [`OUT_PAUSE_BYTES`].
    drained: Notify,
}

/// The core's end of a connection's outgoing queue. Cheap to clone.
#[derive(Clone)]
pub struct OutQueue {
    tx: UnboundedSender<Vec<u8>>,
    urgent_tx: UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
    budget: usize,
}

/// The writer's end of the queue.
pub struct OutReceiver {
    rx: UnboundedReceiver<Vec<u8>>,
    urgent_rx: UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
}

/// What the reader waits on while the peer does not read.
#[derive(Clone)]
pub struct OutPause {
    shared: Arc<Shared>,
}

/// A queue with the default budget.
pub fn out_queue() -> (OutQueue, OutReceiver, OutPause) {
    out_queue_with_budget(OUT_BUDGET_BYTES)
}

/// A queue with an explicit budget (tests).
pub fn out_queue_with_budget(budget: usize) -> (OutQueue, OutReceiver, OutPause) {
    let (tx, rx) = unbounded_channel();
    let (urgent_tx, urgent_rx) = unbounded_channel();
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        drained: Notify::new(),
    });
    (
        OutQueue {
            tx,
            urgent_tx,
            shared: shared.clone(),
            budget,
        },
        OutReceiver {
            rx,
            urgent_rx,
            shared: shared.clone(),
        },
        OutPause { shared },
    )
}

impl OutQueue {
    /// Queues encoded bytes; fails when the peer's queue is over budget or the writer is gone.
    pub fn send(&self, bytes: Vec<u8>) -> Result<(), SendError> {
        self.send_on(bytes, false)
    }

    /// Like [`OutQueue::send`], on the urgent lane: written before the ordinary frames queued.
    pub fn send_urgent(&self, bytes: Vec<u8>) -> Result<(), SendError> {
        self.send_on(bytes, true)
    }

    fn send_on(&self, bytes: Vec<u8>, urgent: bool) -> Result<(), SendError> {
        let n = bytes.len();
        let queued = self.shared.queued.load(Ordering::Acquire);
        if queued.saturating_add(n) > self.budget {
            return Err(SendError::OverBudget {
                queued,
                budget: self.budget,
            });
        }
        self.shared.queued.fetch_add(n, Ordering::AcqRel);
        let lane = if urgent { &self.urgent_tx } else { &self.tx };
        lane.send(bytes).map_err(|_| {
            self.shared.queued.fetch_sub(n, Ordering::AcqRel);
            SendError::Closed
        })
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }
}

impl OutReceiver {
    /// The next queued frame, urgent lane first, or `None` once the core dropped its end.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        if let Ok(b) = self.urgent_rx.try_recv() {
            return Some(b);
        }
        tokio::select! {
            biased;
            Some(b) = self.urgent_rx.recv() => Some(b),
            b = self.rx.recv() => b,
        }
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty() && self.urgent_rx.is_empty()
    }

    /// A queued frame if one is ready now, urgent lane first.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.urgent_rx
            .try_recv()
            .or_else(|_| self.rx.try_recv())
            .ok()
    }

    /// Records that `n` bytes were written; wakes a paused reader once under the pause mark.
    pub fn written(&self, n: usize) {
        let before = self.shared.queued.fetch_sub(n, Ordering::AcqRel);
        if before.saturating_sub(n) < OUT_PAUSE_BYTES {
            self.shared.drained.notify_waiters();
        }
    }
}

impl Drop for OutReceiver {
    fn drop(&mut self) {
        // The writer is gone: nothing will drain any more. Wake a paused reader so it can end.
        self.shared.queued.store(0, Ordering::Release);
        self.shared.drained.notify_waiters();
    }
}

impl OutPause {
    /// Waits while more than [`OUT_PAUSE_BYTES`] are queued for the peer.
    pub async fn wait_until_drained(&self) {
        loop {
            let notified = self.shared.drained.notified();
            if self.shared.queued.load(Ordering::Acquire) < OUT_PAUSE_BYTES {
                return;
            }
            notified.await;
        }
    }

    /// Whether the reader would pause now.
    pub fn paused(&self) -> bool {
        self.shared.queued.load(Ordering::Acquire) >= OUT_PAUSE_BYTES
    }
}

/// Credit for one connection's frames in the core's queue.
#[derive(Clone)]
pub struct InCredit {
    sem: Arc<Semaphore>,
}

/// Credit taken for one frame; returned to the connection when dropped (after the core handled
/// the frame).
#[derive(Debug)]
pub struct InPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl InPermit {
    /// A permit that holds no credit (frames that do not come from a connection, tests).
    pub fn none() -> Self {
        InPermit { _permit: None }
    }
}

impl Default for InCredit {
    fn default() -> Self {
        InCredit {
            sem: Arc::new(Semaphore::new(IN_BUDGET_BYTES)),
        }
    }
}

impl InCredit {
    /// Waits until `bytes` of credit are free and takes them (`None` if the semaphore closed).
    pub async fn take(&self, bytes: usize) -> Option<InPermit> {
        let n = u32::try_from(bytes.clamp(1, IN_BUDGET_BYTES)).ok()?;
        let permit = self.sem.clone().acquire_many_owned(n).await.ok()?;
        Some(InPermit {
            _permit: Some(permit),
        })
    }

    /// Credit free now (tests, status).
    pub fn available(&self) -> usize {
        self.sem.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_refuses_a_frame_that_does_not_fit_and_draining_frees_it() {
        let (q, mut rx, pause) = out_queue_with_budget(100);
        q.send(vec![0; 60]).unwrap();
        assert_eq!(q.queued(), 60);
        assert_eq!(
            q.send(vec![0; 41]),
            Err(SendError::OverBudget {
                queued: 60,
                budget: 100
            })
        );
        q.send(vec![0; 40]).unwrap();
        assert_eq!(q.queued(), 100);
        let f = rx.recv().await.unwrap();
        rx.written(f.len());
        assert_eq!(q.queued(), 40);
        q.send(vec![0; 60]).unwrap();
        assert!(!pause.paused(), "100 bytes are far under the pause mark");
    }

    #[tokio::test]
    async fn urgent_frames_jump_ahead_of_queued_ordinary_ones() {
        let (q, mut rx, _pause) = out_queue_with_budget(1_000);
        q.send(vec![1; 10]).unwrap();
        q.send(vec![2; 10]).unwrap();
        q.send_urgent(vec![9; 5]).unwrap();
        q.send_urgent(vec![8; 5]).unwrap();
        assert_eq!(q.queued(), 30, "one byte count for both lanes");
        let mut order = vec![];
        while !rx.is_empty() {
            let f = rx.recv().await.unwrap();
            rx.written(f.len());
            order.push(f[0]);
        }
        assert_eq!(order, [9, 8, 1, 2], "urgent first, each lane in order");
        assert_eq!(q.queued(), 0);
        // The budget covers the urgent lane too.
        assert!(matches!(
            q.send_urgent(vec![0; 1_001]),
            Err(SendError::OverBudget { .. })
        ));
        // A writer waiting on an empty queue wakes for an urgent frame.
        let w = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        q.send_urgent(vec![7]).unwrap();
        assert_eq!(w.await.unwrap(), Some(vec![7]));
    }

    #[tokio::test]
    async fn a_reader_pauses_over_the_mark_and_resumes_when_the_writer_drains() {
        let (q, mut rx, pause) = out_queue();
        for _ in 0..(OUT_PAUSE_BYTES / 65_536 + 1) {
            q.send(vec![0; 65_536]).unwrap();
        }
        assert!(pause.paused());
        let waiter = tokio::spawn({
            let pause = pause.clone();
            async move { pause.wait_until_drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        while let Some(f) = rx.try_recv() {
            rx.written(f.len());
        }
        waiter.await.unwrap();
        assert_eq!(q.queued(), 0);
    }

    #[tokio::test]
    async fn a_closed_writer_fails_sends_and_releases_the_reader() {
        let (q, rx, pause) = out_queue();
        for _ in 0..(OUT_PAUSE_BYTES / 65_536 + 1) {
            q.send(vec![0; 65_536]).unwrap();
        }
        drop(rx);
        pause.wait_until_drained().await;
        assert_eq!(q.send(vec![1]), Err(SendError::Closed));
    }

    #[tokio::test]
    async fn inbound_credit_is_returned_when_the_permit_drops() {
        let c = InCredit::default();
        let a = c.take(IN_BUDGET_BYTES - 10).await.unwrap();
        assert_eq!(c.available(), 10);
        let blocked = tokio::spawn({
            let c = c.clone();
            async move { c.take(64).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished(), "no credit: the reader waits");
        drop(a);
        blocked.await.unwrap().unwrap();
        assert_eq!(c.available(), IN_BUDGET_BYTES);
    }
}
