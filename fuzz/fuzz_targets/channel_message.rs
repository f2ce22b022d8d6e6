//! Fuzz target: podlink_proto::fuzzing::channel_message (also replayed by crates/proto/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlink_proto::fuzzing::channel_message(data));
