//! The figures of one soak run, the invariants they must meet, and their
//! printed table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::fault_loop::KINDS;
use crate::tally::Count;

/// RSS may grow by this fraction of the start figure…
const RSS_GROWTH: f64 = 0.25;
/// …plus this much (allocator caches, connection buffers), in KiB.
const RSS_SLACK_KIB: u64 = 16 * 1024;

/// Everything a soak run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The seed of every random choice.
    pub seed: u64,
    /// How long the workloads ran, in seconds.
    pub duration_secs: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Every counter by name.
    pub counts: BTreeMap<&'static str, u64>,
    /// Exec sessions plus forwarded connections.
    pub sessions: u64,
    /// Bytes checked against their checksum (exec and port-forward).
    pub bytes_verified: u64,
    /// Clearly reported transport failures, by kind.
    pub transport_errors: BTreeMap<String, u64>,
    /// Remote processes left that no pod's main process explains.
    pub processes_leaked: usize,
    /// Those processes, described.
    pub leaked: Vec<String>,
    /// Informers whose store was compared with a fresh list.
    pub informers_checked: usize,
    /// Informers whose store did not converge to the fresh list.
    pub informer_mismatches: Vec<String>,
    /// Panics in this process.
    pub panics: u64,
    /// Resident memory after warm-up, KiB.
    pub rss_start_kib: u64,
    /// Resident memory when the workloads stopped, KiB.
    pub rss_end_kib: u64,
    /// Highest resident memory sampled, KiB.
    pub rss_peak_kib: u64,
    /// Descriptions of invariant violations (bounded sample).
    pub violations: Vec<String>,
}

impl Report {
    /// Every invariant the run broke; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures: Vec<String> = Count::ALL
            .iter()
            .filter(|c| c.is_violation())
            .filter_map(|c| {
                let n = self.counts.get(c.name()).copied().unwrap_or(0);
                (n > 0).then(|| format!("{} = {n}", c.name()))
            })
            .collect();
        if self.processes_leaked > 0 {
            failures.push(format!("{} remote processes leaked", self.processes_leaked));
        }
        failures.extend(self.informer_mismatches.iter().cloned());
        if self.panics > 0 {
            failures.push(format!("{} panics", self.panics));
        }
        let allowed =
            self.rss_start_kib + (self.rss_start_kib as f64 * RSS_GROWTH) as u64 + RSS_SLACK_KIB;
        if self.rss_end_kib > allowed {
            failures.push(format!(
                "memory grew: RSS {} KiB at start, {} KiB at end (allowed {allowed})",
                self.rss_start_kib, self.rss_end_kib
            ));
        }
        for kind in KINDS {
            if self.faults.get(kind).copied().unwrap_or(0) == 0 {
                failures.push(format!("fault {kind} was never injected"));
            }
        }
        for count in [Count::ExecCompleted, Count::ForwardCompleted] {
            if self.counts.get(count.name()).copied().unwrap_or(0) == 0 {
                failures.push(format!("{} = 0: the workload never ran", count.name()));
            }
        }
        failures
    }

    /// The figures as a plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<32} {value}");
        };
        row("seed", self.seed.to_string());
        row("duration", format!("{} s", self.duration_secs));
        let total: u64 = self.faults.values().sum();
        row("faults injected", total.to_string());
        for (kind, n) in &self.faults {
            row(&format!("  {kind}"), n.to_string());
        }
        row("sessions", self.sessions.to_string());
        row("bytes verified", self.bytes_verified.to_string());
        for (name, n) in &self.counts {
            row(name, n.to_string());
        }
        let errors: u64 = self.transport_errors.values().sum();
        row("transport errors", errors.to_string());
        for (kind, n) in &self.transport_errors {
            row(&format!("  {kind}"), n.to_string());
        }
        row("processes leaked", self.processes_leaked.to_string());
        row(
            "informers equal to a fresh list",
            format!(
                "{} of {}",
                self.informers_checked
                    .saturating_sub(self.informer_mismatches.len()),
                self.informers_checked
            ),
        );
        row("panics", self.panics.to_string());
        row(
            "RSS start / end / peak",
            format!(
                "{} / {} / {} KiB",
                self.rss_start_kib, self.rss_end_kib, self.rss_peak_kib
            ),
        );
        for violation in &self.violations {
            let _ = writeln!(out, "  violation: {violation}");
        }
        for leak in &self.leaked {
            let _ = writeln!(out, "  leaked: {leak}");
        }
        out
    }
}
