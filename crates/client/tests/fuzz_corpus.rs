//! Replays every committed corpus file of the client fuzz targets through the
//! same functions the fuzz targets call (a scripted server on loopback), so
//! stable CI keeps the fuzzers' findings fixed; and checks that the seed
//! scripts really reach the sessions they were written for, so the fuzzers
//! start from inside the protocols rather than at the upgrade.

use std::path::{Path, PathBuf};

use podlink_client::exec::ExitStatus;
use podlink_client::fuzzing::{play, Outcome, TARGETS};
use podlink_proto::fuzzing::replay_corpus;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name)
}

#[test]
fn every_corpus_file_runs_without_panicking() {
    assert!(replay_corpus(TARGETS) >= TARGETS.len());
}

fn seed(name: &str) -> Outcome {
    let data = std::fs::read(corpus("client_server_input").join(name))
        .unwrap_or_else(|e| panic!("seed {name}: {e}"));
    play(&data).expect("a non-empty seed")
}

/// The exit status of the seeds whose command ends with `exit 3`.
const EXIT_3: ExitStatus = ExitStatus::Exited { code: 3 };

/// Exec seeds that must end in a clean session: seed, stdout, stderr, status.
type ExecSeed<'a> = (&'a str, &'a [u8], &'a [u8], ExitStatus);

fn assert_exec_seeds(seeds: &[ExecSeed<'_>]) {
    for (name, stdout, stderr, status) in seeds {
        match seed(name) {
            Outcome::Exec(Ok(output)) => {
                assert_eq!(&output.stdout, stdout, "{name}: stdout");
                assert_eq!(&output.stderr, stderr, "{name}: stderr");
                assert_eq!(&output.status, status, "{name}: status");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn websocket_seeds_reach_the_session() {
    assert_exec_seeds(&[
        ("ws-v5-echo", b"hi\n", b"", ExitStatus::Success),
        ("ws-v5-exit3-stderr", b"out\n", b"err\n", EXIT_3),
        (
            "ws-v4-split-writes",
            b"part one part two\n",
            b"",
            ExitStatus::Success,
        ),
    ]);
    assert!(matches!(
        seed("ws-refused-403"),
        Outcome::Exec(Err(podlink_client::Error::Upgrade { code: 403, .. }))
    ));
    assert!(matches!(
        seed("ws-not-offered-base64"),
        Outcome::Exec(Err(podlink_client::Error::Negotiate { .. }))
    ));
}

#[test]
fn spdy_seeds_reach_the_session() {
    assert_exec_seeds(&[
        ("spdy-v4-echo", b"hi\n", b"", ExitStatus::Success),
        ("spdy-v4-exit3", b"out\n", b"err\n", EXIT_3),
        ("auto-fallback-spdy", b"hi\n", b"", ExitStatus::Success),
    ]);
}

#[test]
fn watch_seeds_reach_the_store() {
    let names = |name: &str| match seed(name) {
        Outcome::Watch(names) => names,
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(names("watch-streaming-initial-events"), ["a", "b"]);
    // Two list pages (a, b; c), then d added and b deleted before the 410
    // that sends the reflector back to a list the script no longer answers.
    assert_eq!(names("watch-paged-list-then-events"), ["a", "c", "d"]);
}
