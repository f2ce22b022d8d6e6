//! Replays every committed fuzz corpus file through the same functions the
//! fuzz targets call, so stable CI keeps the fuzzers' findings fixed.

use std::path::Path;

use podlink_proto::fuzzing::TARGETS;

#[test]
fn every_corpus_file_decodes_without_panicking() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut replayed = 0;
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
        replayed += files;
    }
    assert!(replayed >= TARGETS.len());
}
