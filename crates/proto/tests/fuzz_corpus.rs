//! Replays every committed fuzz corpus file through the same functions the
//! fuzz targets call, so stable CI keeps the fuzzers' findings fixed.

use podlink_proto::fuzzing::{replay_corpus, TARGETS};

#[test]
fn every_corpus_file_decodes_without_panicking() {
    assert!(replay_corpus(TARGETS) >= TARGETS.len());
}
