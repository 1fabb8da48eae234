//! Giving freed heap back to the system after a load.
//!
//! Loading 100,000 secrets frees most of what it allocates (the file's text, each table's
//! parse, ListSecrets pages), but glibc keeps freed pages between live chunks, and each
//! tokio worker thread's arena keeps its own: ~18 MiB of RSS that nothing uses again
//! until the next load (BENCHMARKS.md, section 3). `malloc_trim(0)` returns the free
//! pages of every arena (`madvise(MADV_DONTNEED)`), leaving the live chunks in place.
//! Cheap (a walk of the free lists, milliseconds at that size): it runs after the
//! configuration is loaded and after each pass of due-time reads (start, reload, the
//! hourly refresh).

/// Returns free heap pages to the system; whether any were returned. Other allocators
/// (musl's, a static build) keep their own policy: nothing to do.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_heap() -> bool {
    // SAFETY: malloc_trim takes a pad size and touches only the allocator's own free
    // lists under its locks; it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_heap() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_goes_back_to_the_system() {
        // Many small chunks freed with a live one after each: the holes are not at the top
        // of the heap, so only a trim returns them.
        let mut keep = Vec::new();
        let mut garbage = Vec::new();
        for _ in 0..20_000 {
            garbage.push(vec![1u8; 4000]);
            keep.push(vec![2u8; 16]);
        }
        drop(garbage);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        assert!(release_free_heap(), "glibc returned nothing");
        assert_eq!(keep.len(), 20_000);
    }
}
