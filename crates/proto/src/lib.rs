//! Sans-IO Kubernetes streaming protocols.
//!
//! IO contract: nothing in this crate performs IO, reads a clock, draws
//! randomness or spawns tasks. Bytes go in, typed events come out; time enters
//! only as `Instant` arguments.
