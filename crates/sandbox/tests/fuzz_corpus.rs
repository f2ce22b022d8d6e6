//! Replays every committed corpus file of the sandbox fuzz target through the
//! same function the fuzz target calls (the real router, in process), so
//! stable CI keeps the fuzzer's findings fixed.

use std::path::Path;

use podlink_sandbox::fuzzing::TARGETS;

#[test]
fn every_corpus_file_is_answered_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()));
        let mut files = 0;
        for entry in entries {
            let path = entry.expect("readable directory").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            target(&data);
            files += 1;
        }
        assert!(files > 0, "corpus {name} is empty");
    }
}
