//! Results of a run: samples per client, medians, ratios, target checks,
//! rendered as Markdown.

use std::fmt::Write as _;

use crate::stats::median;

/// One measurement of one client.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// The scenario's measure (MB/s, ms, req/s, s, events/s, KiB).
    pub value: f64,
    /// 99th percentile latency in ms, where the scenario has one.
    pub p99_ms: Option<f64>,
    /// Peak RSS of the client in KiB, where measured.
    pub peak_rss_kib: Option<u64>,
    /// CPU share of the server side (sandbox, or the raw-ceiling server)
    /// over the measured span, in cores.
    pub server_cpu: Option<f64>,
}

/// Every repeat of one client.
#[derive(Debug, Clone)]
pub struct Series {
    /// Client name.
    pub client: String,
    /// Successful repeats.
    pub samples: Vec<Sample>,
    /// Why failed repeats failed.
    pub errors: Vec<String>,
}

impl Series {
    fn median_of(&self, f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        median(&self.samples.iter().filter_map(f).collect::<Vec<_>>())
    }

    /// Median of the measure.
    pub fn value(&self) -> Option<f64> {
        self.median_of(|s| Some(s.value))
    }

    /// Median peak RSS.
    pub fn peak_rss_kib(&self) -> Option<f64> {
        self.median_of(|s| s.peak_rss_kib.map(|k| k as f64))
    }
}

/// A target from issue #10, checked against the medians.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// `client`'s measure ≥ `factor` × `of`'s.
    AtLeastTimes {
        client: &'static str,
        of: &'static str,
        factor: f64,
    },
    /// `client`'s measure ≤ `factor` × `of`'s.
    AtMostTimes {
        client: &'static str,
        of: &'static str,
        factor: f64,
    },
    /// `client`'s peak RSS ≤ `factor` × `of`'s.
    RssAtMostTimes {
        client: &'static str,
        of: &'static str,
        factor: f64,
    },
    /// `client`'s measure ≥ `bound`.
    AtLeast { client: &'static str, bound: f64 },
    /// `client`'s measure ≤ `bound`.
    AtMost { client: &'static str, bound: f64 },
}

/// One scenario's table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Scenario title.
    pub title: String,
    /// Unit of the measure.
    pub unit: &'static str,
    /// The client ratios are taken against.
    pub reference: &'static str,
    /// The target, as text.
    pub target: &'static str,
    /// Each client's samples.
    pub series: Vec<Series>,
    /// The targets, checked.
    pub checks: Vec<Check>,
    /// Free remarks (sizes, what was skipped and why).
    pub notes: Vec<String>,
}

impl Table {
    fn series(&self, client: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.client == client)
    }

    fn check_line(&self, check: &Check) -> String {
        let value = |c: &str| self.series(c).and_then(Series::value);
        let rss = |c: &str| self.series(c).and_then(Series::peak_rss_kib);
        let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        match *check {
            Check::AtLeastTimes { client, of, factor } => match ratio(value(client), value(of)) {
                Some(r) => format!(
                    "{client} ≥ {factor}× {of}: {r:.2}× — {}",
                    verdict(r >= factor)
                ),
                None => format!("{client} ≥ {factor}× {of}: no figure"),
            },
            Check::AtMostTimes { client, of, factor } => match ratio(value(client), value(of)) {
                Some(r) => format!(
                    "{client} ≤ {factor}× {of}: {r:.2}× — {}",
                    verdict(r <= factor)
                ),
                None => format!("{client} ≤ {factor}× {of}: no figure"),
            },
            Check::RssAtMostTimes { client, of, factor } => match ratio(rss(client), rss(of)) {
                Some(r) => format!(
                    "{client} peak RSS ≤ {factor}× {of}'s: {r:.2}× — {}",
                    verdict(r <= factor)
                ),
                None => format!("{client} peak RSS ≤ {factor}× {of}'s: no figure"),
            },
            Check::AtLeast { client, bound } => match value(client) {
                Some(v) => format!(
                    "{client} ≥ {bound} {}: {v:.1} — {}",
                    self.unit,
                    verdict(v >= bound)
                ),
                None => format!("{client} ≥ {bound} {}: no figure", self.unit),
            },
            Check::AtMost { client, bound } => match value(client) {
                Some(v) => format!(
                    "{client} ≤ {bound} {}: {v:.1} — {}",
                    self.unit,
                    verdict(v <= bound)
                ),
                None => format!("{client} ≤ {bound} {}: no figure", self.unit),
            },
        }
    }

    /// The table as Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.title);
        let _ = writeln!(out, "Target: {}\n", self.target);
        let _ = writeln!(
            out,
            "| client | median {} | vs {} | p99 ms | peak RSS MiB | server CPU (cores) | runs |",
            self.unit, self.reference
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        let reference = self.series(self.reference).and_then(Series::value);
        for series in &self.series {
            let value = series.value();
            let cell = |v: Option<f64>, digits: usize| {
                // Small figures (seconds, milliseconds) need more decimals.
                let digits = if v.is_some_and(|v| v.abs() < 10.0) {
                    digits.max(3)
                } else {
                    digits
                };
                v.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
            };
            let ratio = match (value, reference) {
                (Some(v), Some(r)) if r > 0.0 => format!("{:.2}×", v / r),
                _ => "–".to_owned(),
            };
            let runs = if series.errors.is_empty() {
                series.samples.len().to_string()
            } else {
                format!(
                    "{} ok, {} failed",
                    series.samples.len(),
                    series.errors.len()
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                series.client,
                cell(value, 1),
                ratio,
                cell(series.median_of(|s| s.p99_ms), 2),
                cell(series.peak_rss_kib().map(|k| k / 1024.0), 1),
                cell(series.median_of(|s| s.server_cpu), 2),
                runs,
            );
        }
        out.push('\n');
        for check in &self.checks {
            let _ = writeln!(out, "- {}", self.check_line(check));
        }
        for series in &self.series {
            for (i, error) in series.errors.iter().enumerate() {
                if i < 2 {
                    let _ = writeln!(out, "- {} failed: {}", series.client, one_line(error));
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        out
    }
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(client: &str, values: &[f64]) -> Series {
        Series {
            client: client.to_owned(),
            samples: values
                .iter()
                .map(|&value| Sample {
                    value,
                    ..Sample::default()
                })
                .collect(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn renders_medians_ratios_and_checks() {
        let table = Table {
            title: "t".into(),
            unit: "MB/s",
            reference: "kubectl",
            target: "≥ 3× kubectl",
            series: vec![
                series("podlink", &[300.0, 310.0, 290.0]),
                series("kubectl", &[100.0, 99.0, 101.0]),
            ],
            checks: vec![Check::AtLeastTimes {
                client: "podlink",
                of: "kubectl",
                factor: 3.0,
            }],
            notes: vec![],
        };
        let text = table.render();
        assert!(text.contains("| podlink | 300.0 | 3.00× |"), "{text}");
        assert!(text.contains("podlink ≥ 3× kubectl: 3.00× — met"), "{text}");
    }
}
