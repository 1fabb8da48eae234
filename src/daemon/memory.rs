//! Giving freed heap back to the system after a load.
//!
//! Loading 100,000 secrets frees most of what it allocates (the file's text, each table's
//! parse, ListSecrets pages), but glibc keeps freed pages between live chunks, and each
//! tokio worker thread's arena keeps its own: ~18 MiB of RSS that nothing uses again
//! until the next load (BENCHMARKS.md, section 3). `malloc_trim(0)` returns the free
//! pages of every arena (`madvise(MADV_DONTNEED)`), leaving the live chunks in place.
//! Cheap (a walk of the free lists, milliseconds at that size), so it runs once a minute
//! while a load is under way and once after it ends.

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

/// When to trim: after start and after each reload, until the due times are all known.
#[derive(Debug)]
pub struct AfterLoad {
    due: bool,
    /// No tick since the load: the pending gauge may still show the previous load's 0.
    fresh: bool,
}

impl Default for AfterLoad {
    fn default() -> Self {
        Self {
            due: true,
            fresh: true,
        }
    }
}

impl AfterLoad {
    /// A configuration was loaded (start or reload): its garbage is coming.
    pub fn loaded(&mut self) {
        self.due = true;
        self.fresh = true;
    }

    /// On the periodic tick: trims while a load is recent, the last time once no due time
    /// is pending (a secret that stays unreadable keeps it trimming once a tick, no more).
    pub fn tick(&mut self, due_times_pending: i64) {
        if self.due {
            release_free_heap();
            self.due = self.fresh || due_times_pending > 0;
            self.fresh = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_until_the_due_times_are_known_then_again_after_a_reload() {
        let mut t = AfterLoad::default();
        t.tick(0);
        assert!(t.due, "the first tick's gauge may predate the load");
        t.tick(5);
        assert!(t.due, "still loading: trim again next tick");
        t.tick(0);
        assert!(!t.due, "all known: the last trim is done");
        t.tick(0);
        assert!(!t.due);
        t.loaded();
        t.tick(0);
        assert!(t.due, "after a reload too");
        t.tick(0);
        assert!(!t.due);
    }

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
