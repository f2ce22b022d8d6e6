//! Replays every committed corpus file of the sandbox fuzz target through the
//! same function the fuzz target calls (the real router, in process), so
//! stable CI keeps the fuzzer's findings fixed.

use podlink_proto::fuzzing::replay_corpus;
use podlink_sandbox::fuzzing::TARGETS;

#[test]
fn every_corpus_file_is_answered_without_panicking() {
    assert!(replay_corpus(TARGETS) >= TARGETS.len());
}
