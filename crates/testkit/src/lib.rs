//! Test helpers shared by podlink's integration tests.
