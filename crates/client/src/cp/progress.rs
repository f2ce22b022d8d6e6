//! Progress reporting: the copy tells an observer how many bytes moved.

/// Observes a copy's progress, in bytes of the archive. The command line
/// draws a bar with it; the library draws nothing.
pub trait Progress: Send + Sync {
    /// The expected total, once known (an estimate: the archive adds
    /// headers, and files may change while copied).
    fn set_total(&self, bytes: u64);
    /// `bytes` more moved.
    fn advance(&self, bytes: u64);
}
