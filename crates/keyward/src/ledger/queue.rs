//! The hand-over from the serving threads to the ledger's writer: the finished requests under a
//! lock, taken together by the writer once per batch.
//!
//! A channel cost a serving thread more per request (its block allocations, its atomics, a wake
//! check) than the rest of the hand-over; here a row is pushed under a lock that another thread
//! seldom holds, and the writer is woken (a futex call) only when it is waiting for a first row,
//! once a batch rather than once a request.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::Finished;

/// Rows waiting for the writer beyond this are refused (and counted by the ledger): memory stays
/// bounded if the disk stalls.
pub(super) const MAX_QUEUED: usize = 65_536;

#[derive(Debug, Default)]
pub(super) struct Queue {
    pending: Mutex<Pending>,
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    rows: Vec<Finished>,
    /// Each answered once everything queued before it is written and read back.
    flushes: Vec<mpsc::Sender<()>>,
    /// The ledger is gone: the writer writes what is queued and ends.
    closed: bool,
    /// The writer waits on [`Queue::arrived`] (no one else does).
    writer_waiting: bool,
}

/// What the writer found when it woke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Woken {
    /// Rows only: worth waiting for others to gather.
    Rows,
    /// A flush or the close waits for what is queued: write it now.
    Urgent,
    /// Nothing before the wait ended.
    Idle,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a finished request; `false` (and the row dropped) when the queue is full or
    /// closed.
    pub(super) fn push(&self, row: Finished) -> bool {
        let mut pending = self.lock();
        if pending.closed || pending.rows.len() >= MAX_QUEUED {
            return false;
        }
        pending.rows.push(row);
        self.wake(pending);
        true
    }

    /// Asks to be told (on `done`) once everything queued so far is written; `false` when the
    /// writer is gone.
    pub(super) fn flush(&self, done: mpsc::Sender<()>) -> bool {
        let mut pending = self.lock();
        if pending.closed {
            return false;
        }
        pending.flushes.push(done);
        self.wake(pending);
        true
    }

    /// No more rows: the writer writes what is queued and ends.
    pub(super) fn close(&self) {
        let mut pending = self.lock();
        pending.closed = true;
        self.wake(pending);
    }

    fn wake(&self, mut pending: MutexGuard<'_, Pending>) {
        if std::mem::take(&mut pending.writer_waiting) {
            drop(pending);
            self.arrived.notify_one();
        }
    }

    /// The writer waits up to `wait` for something to do.
    pub(super) fn wait(&self, wait: Duration) -> Woken {
        let mut pending = self.lock();
        if pending.is_empty() {
            pending.writer_waiting = true;
            pending = self
                .arrived
                .wait_timeout_while(pending, wait, |p| p.is_empty())
                .map(|(pending, _)| pending)
                .unwrap_or_else(|p| p.into_inner().0);
            pending.writer_waiting = false;
        }
        if !pending.flushes.is_empty() || pending.closed {
            Woken::Urgent
        } else if pending.rows.is_empty() {
            Woken::Idle
        } else {
            Woken::Rows
        }
    }

    /// The writer takes up to `max` rows (into `rows`, which it passes empty) and the flushes
    /// they answer; whether the queue is closed and now empty.
    pub(super) fn take(
        &self,
        rows: &mut Vec<Finished>,
        max: usize,
        flushes: &mut Vec<mpsc::Sender<()>>,
    ) -> bool {
        let mut pending = self.lock();
        if pending.rows.len() <= max {
            // The buffers change places: neither side allocates once both have grown.
            std::mem::swap(rows, &mut pending.rows);
        } else {
            rows.extend(pending.rows.drain(..max));
        }
        // A flush waits for the rows before it: with rows left behind, it waits for the next.
        if pending.rows.is_empty() {
            flushes.append(&mut pending.flushes);
        }
        pending.closed && pending.rows.is_empty()
    }
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.flushes.is_empty() && !self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn row(status: u16) -> Finished {
        Finished {
            at: Utc::now(),
            key: None,
            client: "curl",
            dialect: "chat",
            status,
            asked: None,
            served: None,
            profile: None,
            hops: 0,
            refused: None,
            admission: None,
            first_byte: None,
            total: Duration::ZERO,
            tokens: Default::default(),
        }
    }

    /// Rows are taken in order, at most `max` at a time; a flush is answered with the take that
    /// empties what was queued before it; a closed queue refuses rows and ends once taken.
    #[test]
    fn rows_flushes_and_the_close() {
        let queue = Queue::default();
        assert_eq!(queue.wait(Duration::ZERO), Woken::Idle);
        for status in 0..5 {
            assert!(queue.push(row(status)));
        }
        assert_eq!(queue.wait(Duration::ZERO), Woken::Rows);
        let (done, _answered) = mpsc::channel();
        assert!(queue.flush(done));
        assert_eq!(queue.wait(Duration::ZERO), Woken::Urgent);
        let (mut rows, mut flushes) = (Vec::new(), Vec::new());
        assert!(!queue.take(&mut rows, 3, &mut flushes));
        assert_eq!(rows.iter().map(|r| r.status).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(flushes.is_empty(), "rows before the flush are still queued");
        rows.clear();
        assert!(!queue.take(&mut rows, 3, &mut flushes));
        assert_eq!(rows.iter().map(|r| r.status).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(flushes.len(), 1);

        assert!(queue.push(row(5)));
        queue.close();
        assert!(!queue.push(row(6)));
        assert!(!queue.flush(mpsc::channel().0));
        assert_eq!(queue.wait(Duration::from_secs(60)), Woken::Urgent);
        rows.clear();
        assert!(queue.take(&mut rows, 3, &mut flushes));
        assert_eq!(rows.len(), 1);
    }

    /// The writer waiting for a first row is woken by it; a full queue refuses more.
    #[test]
    fn a_waiting_writer_is_woken_and_a_full_queue_refuses() {
        let queue = std::sync::Arc::new(Queue::default());
        let writer = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.wait(Duration::from_secs(600)))
        };
        while !queue.lock().writer_waiting {
            std::thread::yield_now();
        }
        assert!(queue.push(row(200)));
        assert_eq!(writer.join().ok(), Some(Woken::Rows));
        for _ in 1..MAX_QUEUED {
            assert!(queue.push(row(200)));
        }
        assert!(!queue.push(row(200)));
    }
}
