//! The C allocator's settings for bulk streaming.
//!
//! glibc gives memory back to the kernel as soon as more than 128 KiB is
//! free at the top of a heap, and maps larger blocks on their own. A session
//! moving hundreds of MB/s in 256 KiB messages and 16 KiB TLS records frees
//! and takes back such memory thousands of times a second, and every time
//! the kernel maps it anew, faults it in and clears it: ~200,000 page faults
//! and ~40% of the client's CPU per GiB of exec stdin. Keeping up to 64 MiB
//! of freed memory for reuse, and mapping only blocks of 4 MiB and more on
//! their own, removes them (3,600 faults per GiB); a short-lived command
//! line process gives it all back when it exits.
//!
//! With `terminal`, the binary's only `unsafe`: `mallopt` has no safe API.
#![allow(unsafe_code)]

/// Sets the allocator's thresholds; call before any other thread starts.
pub(crate) fn tune_for_streaming() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters, and no other
    // thread exists yet to allocate concurrently.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 64 << 20;
