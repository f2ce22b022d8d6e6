//! The conformance matrix's bookkeeping: which transports a kubectl
//! version can be switched to, one result per (capability, transport)
//! cell, and the table each version's test prints.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// How kubectl streams: the `KUBECTL_*_WEBSOCKETS` switches both set to
/// `true` or both to `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket (v5 exec, the port-forward tunnel).
    WebSocket,
    /// SPDY/3.1.
    Spdy,
}

impl Transport {
    /// Both transports, in table order.
    pub const ALL: [Transport; 2] = [Transport::WebSocket, Transport::Spdy];

    /// Value for both `KUBECTL_REMOTE_COMMAND_WEBSOCKETS` and
    /// `KUBECTL_PORT_FORWARD_WEBSOCKETS`.
    pub fn env_value(self) -> &'static str {
        match self {
            Transport::WebSocket => "true",
            Transport::Spdy => "false",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Spdy => "spdy",
        }
    }
}

/// What a capability streams over, which decides whether a version can be
/// switched to WebSocket for it (measured with `-v=9` on each binary:
/// the exec switch exists from 1.29, default on from 1.30; the
/// port-forward switch from 1.30, default on from 1.31).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Plain API requests: one cell, whatever the switches say.
    None,
    /// exec / attach (remotecommand).
    RemoteCommand,
    /// port-forward.
    PortForward,
}

impl Stream {
    /// Why `transport` cannot be tested for this stream on kubectl
    /// `1.minor`, or `None` when it can.
    pub fn unsupported(self, minor: u32, transport: Transport) -> Option<&'static str> {
        match (self, transport) {
            (Stream::RemoteCommand, Transport::WebSocket) if minor < 29 => {
                Some("no KUBECTL_REMOTE_COMMAND_WEBSOCKETS before 1.29 (SPDY only)")
            }
            (Stream::PortForward, Transport::WebSocket) if minor < 30 => {
                Some("no KUBECTL_PORT_FORWARD_WEBSOCKETS before 1.30 (SPDY only)")
            }
            _ => None,
        }
    }
}

/// One cell of the table.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Passed, in this many milliseconds.
    Pass(u128),
    /// Not testable on this version, with the reason.
    NotApplicable(&'static str),
    /// Failed, with the panic message.
    Fail(String),
}

/// One capability: its transport-independent cell, or one cell per
/// transport (websocket, spdy).
type Row = (&'static str, Option<Outcome>, [Option<Outcome>; 2]);

/// The cells of one kubectl version, in the order they ran.
#[derive(Debug)]
pub struct Table {
    version: String,
    rows: Vec<Row>,
}

impl Table {
    /// An empty table for kubectl `version` (e.g. `v1.29.14`).
    pub fn new(version: String) -> Self {
        Self {
            version,
            rows: Vec::new(),
        }
    }

    /// Runs `check` as one cell of row `capability` (column `transport`,
    /// or the single "any" column), recording a panic as a failure so the
    /// remaining cells still run.
    pub fn cell(
        &mut self,
        capability: &'static str,
        transport: Option<Transport>,
        check: impl FnOnce(),
    ) {
        let started = Instant::now();
        let outcome = match catch_unwind(AssertUnwindSafe(check)) {
            Ok(()) => Outcome::Pass(started.elapsed().as_millis()),
            Err(panic) => Outcome::Fail(panic_text(&panic)),
        };
        self.record(capability, transport, outcome);
    }

    /// Records a cell that does not apply to this version.
    pub fn not_applicable(
        &mut self,
        capability: &'static str,
        transport: Transport,
        why: &'static str,
    ) {
        self.record(capability, Some(transport), Outcome::NotApplicable(why));
    }

    fn record(&mut self, capability: &'static str, transport: Option<Transport>, outcome: Outcome) {
        let index = match self.rows.iter().position(|(name, ..)| *name == capability) {
            Some(index) => index,
            None => {
                self.rows.push((capability, None, [None, None]));
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[index];
        match transport {
            None => row.1 = Some(outcome),
            Some(Transport::WebSocket) => row.2[0] = Some(outcome),
            Some(Transport::Spdy) => row.2[1] = Some(outcome),
        }
    }

    fn outcomes(&self) -> impl Iterator<Item = &Outcome> {
        self.rows
            .iter()
            .flat_map(|(_, any, by)| any.iter().chain(by.iter().flatten()))
    }

    /// The printed table, a one-line summary, then every failure in full.
    pub fn render(&self) -> String {
        let short = |o: &Option<Outcome>| match o {
            None => "-".to_owned(),
            Some(Outcome::Pass(ms)) => format!("ok {:.1}s", *ms as f64 / 1000.0),
            Some(Outcome::NotApplicable(_)) => "n/a".to_owned(),
            Some(Outcome::Fail(_)) => "FAIL".to_owned(),
        };
        let mut out = format!(
            "kubectl {}\n{:<28} {:<10} {:<10} {:<10}\n",
            self.version,
            "capability",
            "any",
            Transport::WebSocket.column(),
            Transport::Spdy.column()
        );
        for (name, any, [ws, spdy]) in &self.rows {
            let _ = writeln!(
                out,
                "{name:<28} {:<10} {:<10} {:<10}",
                short(any),
                short(ws),
                short(spdy)
            );
        }
        let (mut pass, mut na, mut fail) = (0, 0, 0);
        for outcome in self.outcomes() {
            match outcome {
                Outcome::Pass(_) => pass += 1,
                Outcome::NotApplicable(_) => na += 1,
                Outcome::Fail(_) => fail += 1,
            }
        }
        let _ = writeln!(
            out,
            "summary kubectl {}: {pass} ok, {fail} failed, {na} n/a",
            self.version
        );
        let mut reasons: Vec<&str> = self
            .outcomes()
            .filter_map(|o| match o {
                Outcome::NotApplicable(why) => Some(*why),
                _ => None,
            })
            .collect();
        reasons.dedup();
        for why in reasons {
            let _ = writeln!(out, "n/a: {why}");
        }
        for (name, any, [ws, spdy]) in &self.rows {
            for (column, outcome) in [("any", any), ("websocket", ws), ("spdy", spdy)] {
                if let Some(Outcome::Fail(message)) = outcome {
                    let _ = writeln!(out, "--- FAIL {name} [{column}]\n{message}");
                }
            }
        }
        out
    }

    /// Whether no cell failed.
    pub fn all_passed(&self) -> bool {
        !self.outcomes().any(|o| matches!(o, Outcome::Fail(_)))
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic without a message".to_owned())
}
