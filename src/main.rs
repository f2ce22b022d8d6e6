//! The `podlink` command line.
fn main() {}
