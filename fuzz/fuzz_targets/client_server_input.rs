//! Fuzz target: podlink_client::fuzzing::server_input, the client's handling of
//! arbitrary server bytes (also replayed by crates/client/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlink_client::fuzzing::server_input(data));
