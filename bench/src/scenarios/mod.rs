//! The scenarios of issue #10, each producing one or more tables.

mod exec;
mod idle;
mod portforward;
mod watch;

use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::args::Scenario;
use crate::report::{Sample, Series, Table};
use crate::runner::Ctx;

/// Runs one scenario for every client it has.
pub async fn run(ctx: &Ctx, scenario: Scenario) -> Result<Vec<Table>> {
    Ok(match scenario {
        Scenario::ExecStdout => vec![exec::stdout(ctx).await?],
        Scenario::ExecStdin => vec![exec::stdin(ctx).await],
        Scenario::ExecLatency => vec![exec::latency(ctx).await],
        Scenario::PfBulk => vec![portforward::bulk(ctx).await?],
        Scenario::PfRequests => vec![portforward::requests(ctx).await?],
        Scenario::Watch => watch::run(ctx).await?,
        Scenario::Idle => vec![idle::run(ctx).await?],
    })
}

/// Turns interleaved results into one series per client.
fn series<C: std::fmt::Display>(clients: &[C], results: Vec<Vec<Result<Sample>>>) -> Vec<Series> {
    clients
        .iter()
        .zip(results)
        .map(|(client, results)| {
            let (mut samples, mut errors) = (Vec::new(), Vec::new());
            for result in results {
                match result {
                    Ok(sample) => samples.push(sample),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            Series {
                client: client.to_string(),
                samples,
                errors,
            }
        })
        .collect()
}

/// Decimal megabytes per second.
fn mb_per_s(bytes: u64, wall: Duration) -> f64 {
    bytes as f64 / 1e6 / wall.as_secs_f64().max(1e-9)
}

/// Reads `pipe` to its end and returns how many bytes it carried.
async fn count_bytes(mut pipe: impl AsyncRead + Unpin) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match pipe.read(&mut buf).await? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

/// Human size for notes.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{b} B"),
    }
}
