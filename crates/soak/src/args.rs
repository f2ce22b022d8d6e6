//! The command line: how long to soak, the seed, where to write figures.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// `podlink-soak`: exec, port-forward and informers at once against a
/// `podlink sandbox` process while a fault loop breaks its connections.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// How long to run the workloads (`90s`, `2m`, `30m`, `1h`, or seconds).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seed of every random choice (default: from the clock, printed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The podlink binary that serves the sandbox (default: beside this
    /// program, built first when run under cargo).
    #[arg(long, value_name = "PATH")]
    pub podlink: Option<PathBuf>,
    /// Concurrent exec sessions.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub exec_workers: usize,
    /// Concurrent forwarded connections per port-forward protocol.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub forward_workers: usize,
}

/// Parses `90s`, `2m`, `30m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 2m or 1h"))?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        other => return Err(format!("unknown unit {other:?} (use s, m or h)")),
    };
    if seconds == 0 {
        return Err("the duration must be at least one second".into());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
    }
}
