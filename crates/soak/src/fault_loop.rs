//! The fault loop: every kind of sandbox fault, in a random order, until
//! the soak ends; then the lasting ones are switched off.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::sandbox::Hooks;
use crate::tally::Tally;

/// Every fault kind of the sandbox.
pub const KINDS: [&str; 5] = [
    "drop-connections",
    "blackhole",
    "idle-timeout",
    "watch-error",
    "compact",
];

/// A fault of `kind` with random parameters.
fn fault(kind: &str, rng: &mut SmallRng) -> Value {
    match kind {
        "blackhole" => json!({"kind": kind, "seconds": rng.random_range(1.0..6.0)}),
        // Longer than every keepalive interval: pings must keep sessions up.
        "idle-timeout" => json!({"kind": kind, "seconds": rng.random_range(4.0..10.0)}),
        "watch-error" => {
            let code = [500, 503, 429][rng.random_range(0..3)];
            json!({"kind": kind, "code": code, "count": rng.random_range(1..4)})
        }
        _ => json!({ "kind": kind }),
    }
}

/// Injects faults every few seconds until `stop`, then turns blackhole and
/// idle-timeout off. Failing to inject is reported, not fatal.
pub async fn run(hooks: Hooks, tally: Arc<Tally>, stop: CancellationToken, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut order = KINDS;
    'rounds: while !stop.is_cancelled() {
        order.shuffle(&mut rng);
        for kind in order {
            let pause = Duration::from_millis(rng.random_range(2000..6000));
            tokio::select! {
                () = stop.cancelled() => break 'rounds,
                () = tokio::time::sleep(pause) => {}
            }
            match hooks.fault(&fault(kind, &mut rng)).await {
                Ok(()) => tally.fault(kind),
                Err(err) => eprintln!("soak: injecting {kind}: {err:#}"),
            }
        }
    }
    for off in [
        json!({"kind": "blackhole", "seconds": 0}),
        json!({"kind": "idle-timeout", "seconds": 0}),
    ] {
        if let Err(err) = hooks.fault(&off).await {
            eprintln!("soak: switching {off} off: {err:#}");
        }
    }
}
