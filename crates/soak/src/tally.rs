//! What happened during the soak: counters shared by every workload, and
//! samples of whatever broke an invariant.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How many violation messages are kept (the count is always exact).
const MAX_SAMPLES: usize = 20;

/// A named counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Exec sessions started (or attempted).
    ExecSessions,
    /// Exec sessions that ran to a status and were checked.
    ExecCompleted,
    /// Bytes that went through exec sessions and matched their checksum.
    ExecBytesVerified,
    /// Exec sessions cancelled on purpose (cancel call or dropped handle).
    ExecCancels,
    /// Cancels the client reported as possibly leaving the process running.
    ExecCancelMayStillRun,
    /// Exec sessions whose status differed from the command's exit code.
    ExecWrongStatus,
    /// Exec sessions whose bytes did not match their checksum.
    ExecCorrupt,
    /// Exec sessions that neither ended nor failed within their deadline.
    ExecHung,
    /// Exec sessions that failed with an error that is not a transport one.
    ExecUnclear,
    /// Port-forwarded connections opened (or attempted).
    ForwardConnections,
    /// Port-forwarded connections that echoed everything back.
    ForwardCompleted,
    /// Bytes echoed through port-forwards and matched their checksum.
    ForwardBytesVerified,
    /// Port-forwarded connections whose echo did not match.
    ForwardCorrupt,
    /// Port-forwarded connections stuck past their deadline.
    ForwardHung,
    /// Port-forwarded connections that failed with an error no fault explains.
    ForwardUnclear,
    /// Port-forwarders started (the first time, and again after one gave up).
    ForwardStarts,
    /// Pod creates, label patches and deletes by the writer.
    WriterWrites,
    /// Writer requests that failed after their retries.
    WriterFailures,
    /// Informers that ended while the soak was running.
    InformerTerminations,
}

impl Count {
    /// Every counter, in report order.
    pub const ALL: [Count; 19] = [
        Count::ExecSessions,
        Count::ExecCompleted,
        Count::ExecBytesVerified,
        Count::ExecCancels,
        Count::ExecCancelMayStillRun,
        Count::ExecWrongStatus,
        Count::ExecCorrupt,
        Count::ExecHung,
        Count::ExecUnclear,
        Count::ForwardConnections,
        Count::ForwardCompleted,
        Count::ForwardBytesVerified,
        Count::ForwardCorrupt,
        Count::ForwardHung,
        Count::ForwardUnclear,
        Count::ForwardStarts,
        Count::WriterWrites,
        Count::WriterFailures,
        Count::InformerTerminations,
    ];

    /// The name used in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Count::ExecSessions => "exec_sessions",
            Count::ExecCompleted => "exec_completed",
            Count::ExecBytesVerified => "exec_bytes_verified",
            Count::ExecCancels => "exec_cancels",
            Count::ExecCancelMayStillRun => "exec_cancel_may_still_run",
            Count::ExecWrongStatus => "exec_wrong_status",
            Count::ExecCorrupt => "exec_corrupt",
            Count::ExecHung => "exec_hung",
            Count::ExecUnclear => "exec_unclear_errors",
            Count::ForwardConnections => "forward_connections",
            Count::ForwardCompleted => "forward_completed",
            Count::ForwardBytesVerified => "forward_bytes_verified",
            Count::ForwardCorrupt => "forward_corrupt",
            Count::ForwardHung => "forward_hung",
            Count::ForwardUnclear => "forward_unclear_errors",
            Count::ForwardStarts => "forward_starts",
            Count::WriterWrites => "writer_writes",
            Count::WriterFailures => "writer_failures",
            Count::InformerTerminations => "informer_terminations",
        }
    }

    /// Counters that must stay at zero.
    pub fn is_violation(self) -> bool {
        matches!(
            self,
            Count::ExecWrongStatus
                | Count::ExecCorrupt
                | Count::ExecHung
                | Count::ExecUnclear
                | Count::ForwardCorrupt
                | Count::ForwardHung
                | Count::ForwardUnclear
                | Count::InformerTerminations
        )
    }
}

/// The counters of one soak run.
#[derive(Debug, Default)]
pub struct Tally {
    counts: [AtomicU64; Count::ALL.len()],
    transport_errors: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<BTreeMap<String, u64>>,
    samples: Mutex<Vec<String>>,
}

impl Tally {
    /// Adds `n` to `count`.
    pub fn add(&self, count: Count, n: u64) {
        self.counts[count as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one to `count`.
    pub fn bump(&self, count: Count) {
        self.add(count, 1);
    }

    /// The value of `count`.
    pub fn get(&self, count: Count) -> u64 {
        self.counts[count as usize].load(Ordering::Relaxed)
    }

    /// Every counter by name.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        Count::ALL
            .iter()
            .map(|c| (c.name(), self.get(*c)))
            .collect()
    }

    /// Records an expected, clearly reported transport failure.
    pub fn transport_error(&self, kind: impl Into<String>) {
        *lock(&self.transport_errors).entry(kind.into()).or_default() += 1;
    }

    /// Transport failures by kind.
    pub fn transport_errors(&self) -> BTreeMap<String, u64> {
        lock(&self.transport_errors).clone()
    }

    /// Records one injected fault.
    pub fn fault(&self, kind: &str) {
        *lock(&self.faults).entry(kind.to_owned()).or_default() += 1;
    }

    /// Injected faults by kind.
    pub fn faults(&self) -> BTreeMap<String, u64> {
        lock(&self.faults).clone()
    }

    /// Counts an invariant violation and keeps (a bounded number of) its
    /// descriptions for the report.
    pub fn violation(&self, count: Count, what: String) {
        self.bump(count);
        let mut samples = lock(&self.samples);
        if samples.len() < MAX_SAMPLES {
            samples.push(format!("{}: {what}", count.name()));
        }
    }

    /// The kept violation descriptions.
    pub fn samples(&self) -> Vec<String> {
        lock(&self.samples).clone()
    }
}

/// Locks `mutex`, also after a panic elsewhere (the counters stay usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_indexed_by_their_order() {
        for (i, count) in Count::ALL.iter().enumerate() {
            assert_eq!(*count as usize, i, "{count:?}");
        }
        let tally = Tally::default();
        tally.add(Count::ExecBytesVerified, 5);
        tally.violation(Count::ExecCorrupt, "x".into());
        assert_eq!(tally.get(Count::ExecBytesVerified), 5);
        assert_eq!(tally.counts()["exec_corrupt"], 1);
        assert_eq!(tally.samples(), ["exec_corrupt: x"]);
    }
}
