//! Property: whatever verbs a client and a server machine are driven with,
//! each accepts every byte the other produces (the script runner panics on
//! a rejection). The same runner is the `spdy_pair` fuzz target.

use podlink_proto::fuzzing::spdy_pair;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_verb_scripts_never_produce_invalid_frames(script in proptest::collection::vec(any::<u8>(), 0..300)) {
        spdy_pair(&script);
    }
}
