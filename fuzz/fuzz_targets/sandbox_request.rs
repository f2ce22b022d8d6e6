//! Fuzz target: podlink_sandbox::fuzzing::request, the sandbox's request
//! handling (also replayed by crates/sandbox/tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlink_sandbox::fuzzing::request(data));
