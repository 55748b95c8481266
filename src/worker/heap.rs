//! The C library's heap, which librdkafka allocates from: kept instead of handed back to the
//! kernel after every batch.
//!
//! The core allocates through mimalloc (src/alloc.rs); librdkafka, being C, uses glibc's
//! `malloc`. Its producer builds each message set (up to `batch.size`, about a megabyte) and
//! its lz4 output in fresh buffers on the broker thread, and frees them once the request is
//! written. By default glibc returns the free top of a thread's heap to the kernel once it
//! passes the trim threshold (`madvise(MADV_DONTNEED)` on the per-thread heaps), so the next
//! batch touches zeroed pages again: in a `perf` profile of the worker end to end, 4.4% of its
//! CPU was page faults under `rd_buf_write` and lz4's copies, about 63,600 faults in 6 s
//! against 5,000 with the heap kept (benches/OPTIMISATIONS.md, twenty-second round).
//!
//! [`keep_freed_memory`] sets two thresholds: blocks below 32 MiB (`M_MMAP_THRESHOLD`, the most
//! glibc's own dynamic rule goes to) come from the heap rather than from a mapping of their
//! own, and a heap keeps up to 32 MiB free at its top (`M_TRIM_THRESHOLD`). What a heap keeps is
//! what librdkafka used at its busiest. Measured over 1.3M records (one run each, the same
//! hour): a trim threshold of 8 MiB still gave memory back often (0.20 faults a record, peak RSS
//! 282 MiB), 32 MiB 0.05 and 287 MiB, 64 MiB 0.04 and 289 MiB. An operator who tunes glibc with
//! `GLIBC_TUNABLES` (any `glibc.malloc.` setting) is left alone.

/// The largest block taken from the heap rather than mapped on its own.
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory a heap keeps at its top before handing it back.
pub const TRIM_THRESHOLD: usize = 32 << 20;

/// What [`keep_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapSetting {
    /// The thresholds are set.
    Kept,
    /// `GLIBC_TUNABLES` sets glibc's malloc: the operator's choice stands.
    Tunables,
    /// Not glibc: nothing to set.
    NotGlibc,
}

/// Whether to set the thresholds, given the `GLIBC_TUNABLES` environment variable.
pub fn decide(tunables: Option<&str>) -> HeapSetting {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return HeapSetting::NotGlibc;
    }
    match tunables {
        Some(t) if t.split(':').any(|item| item.starts_with("glibc.malloc.")) => {
            HeapSetting::Tunables
        }
        _ => HeapSetting::Kept,
    }
}

/// Set glibc's thresholds (see the module documentation) unless [`decide`] says not to.
/// Process-wide; calling it again changes nothing.
pub fn keep_freed_memory() -> HeapSetting {
    let setting = decide(std::env::var("GLIBC_TUNABLES").ok().as_deref());
    if setting == HeapSetting::Kept {
        set_thresholds();
    }
    setting
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() {
    // SAFETY: `mallopt` takes a parameter number and a value and changes glibc's settings
    // under its own lock; these two parameters accept any non-negative value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_tunables_stand() {
        if !cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(decide(None), HeapSetting::NotGlibc);
            return;
        }
        assert_eq!(decide(None), HeapSetting::Kept);
        assert_eq!(decide(Some("")), HeapSetting::Kept);
        assert_eq!(
            decide(Some("glibc.pthread.rseq=0")),
            HeapSetting::Kept,
            "another subsystem's tunable"
        );
        assert_eq!(
            decide(Some(
                "glibc.pthread.rseq=0:glibc.malloc.trim_threshold=1048576"
            )),
            HeapSetting::Tunables
        );
        assert_eq!(
            decide(Some("glibc.malloc.arena_max=2")),
            HeapSetting::Tunables
        );
    }

    /// A block as large as a few message sets, freed, stays in the heap: without the
    /// thresholds it would be a mapping of its own (above glibc's initial 128 KiB threshold),
    /// unmapped when freed, and the heap would hold none of it (about 350 KB free, measured).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_blocks_stay_in_the_heap() {
        set_thresholds();
        const SIZE: usize = 4 << 20;
        // SAFETY: a plain malloc of SIZE bytes, written and freed once; mallinfo2 reads
        // glibc's statistics.
        let free_after = unsafe {
            let p = libc::malloc(SIZE).cast::<u8>();
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 1, SIZE);
            // Kept opaque: the compiler may otherwise drop a block nothing reads.
            libc::free(std::hint::black_box(p).cast());
            libc::mallinfo2().fordblks
        };
        assert!(
            free_after >= SIZE,
            "the heap holds {free_after} free bytes after freeing {SIZE}"
        );
    }
}
