//! `podlink cp SRC DST [-c CONTAINER]`: one side `[NS/]POD:PATH`, verified
//! by a checksum on both sides, with a progress bar when stderr is a
//! terminal.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use podlink_client::cp::{CancellationToken, CopyError, CopyRequest, Progress};
use podlink_client::doctor::recognise;

use crate::args::{CpArgs, GlobalArgs};
use crate::cluster::Cluster;
use crate::exit::Exit;
use crate::signals::StopSignals;

/// Copy, then say what was copied and verified (on stderr, keeping stdout
/// clean for scripts).
pub async fn run(global: &GlobalArgs, args: CpArgs) -> anyhow::Result<Exit> {
    // Bad paths fail before any cluster is contacted.
    let mut request = CopyRequest::parse(&args.src, &args.dst)?;
    if let Some(container) = args.container {
        request = request.with_container(container);
    }
    let bar = std::io::stderr().is_terminal().then(Bar::new);
    if let Some(bar) = &bar {
        request = request.with_progress(bar.clone());
    }
    let to_pod = request.is_to_pod();
    let mut signals = StopSignals::install().context("installing signal handlers")?;
    let cluster = Cluster::connect(global).await?;
    let server = cluster.client.config().cluster_url.to_string();
    // A stop signal cancels the copy, which then stops its remote side and
    // removes local leftovers before returning.
    let cancel = CancellationToken::new();
    let (outcome, stopped) = {
        let copy = cluster.client.copy(request.with_cancel(cancel.clone()));
        tokio::pin!(copy);
        tokio::select! {
            outcome = &mut copy => (outcome, None),
            signal = signals.recv() => {
                cancel.cancel();
                (copy.await, Some(signal))
            }
        }
    };
    cluster.close().await;
    if let Some(bar) = bar {
        bar.0.finish_and_clear();
    }
    if let Some(signal) = stopped {
        eprintln!(
            "podlink: cp stopped; {}",
            if to_pod {
                "the destination in the pod is unchanged"
            } else {
                "nothing was written locally"
            }
        );
        return Ok(Exit::Signalled(signal));
    }
    let report = outcome.map_err(|err| understandable(err, &server))?;
    for skipped in &report.skipped {
        eprintln!("podlink: warning: {skipped}");
    }
    eprintln!("podlink: {report}");
    Ok(Exit::SUCCESS)
}

/// The copy error as one line; a cluster error podlink recognises
/// (unreachable, certificates, credentials, permission) also names the
/// likely cause and the fix.
fn understandable(err: CopyError, server: &str) -> anyhow::Error {
    match &err {
        CopyError::Client(inner) => match recognise(inner, server) {
            Some(explained) => anyhow::anyhow!("{explained}"),
            None => err.into(),
        },
        _ => err.into(),
    }
}

/// An indicatif bar: bytes, rate and time left once the total is known; a
/// spinner with bytes and rate before.
#[derive(Clone)]
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Arc<Self> {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {binary_bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Arc::new(Self(bar))
    }
}

impl Progress for Bar {
    fn set_total(&self, bytes: u64) {
        self.0.set_length(bytes);
        self.0.set_style(
            ProgressStyle::with_template(
                "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
