//! The global allocator: mimalloc, called the way its C API is fastest.
//!
//! The core allocates a few hundred small strings and map nodes per record. `mimalloc::MiMalloc`
//! passes every allocation to mimalloc's *aligned* functions, whose alignment handling costs
//! about twenty instructions a call (callgrind). mimalloc's plain `mi_malloc` already returns
//! blocks aligned to 16 bytes for sizes from 9 bytes up (its size classes are multiples of 16
//! from 16 bytes) and to 8 bytes below that, so a layout whose alignment is at most 16 and no
//! larger than its size (the rule std's system allocator follows too, and what Rust asks for
//! almost always) is served by the plain functions; anything else goes to the aligned ones.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// mimalloc's guaranteed alignment for blocks of at least this size (`MI_MAX_ALIGN_SIZE`).
const MIN_ALIGN: usize = 16;

/// See the module documentation.
pub struct MiMalloc;

/// Whether a plain mimalloc block of `size` bytes is aligned enough for `align`.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every function returns memory from mimalloc aligned as the layout asks (the plain
// functions only where `plain` holds for the block's size, see above) or null on failure, and
// frees with `mi_free`, which takes blocks from any of them.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            mi::mi_malloc(layout.size()) as *mut u8
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            mi::mi_zalloc(layout.size()) as *mut u8
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The new block must satisfy the old alignment at the new size.
        if plain(layout.align(), new_size) {
            mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_gets_its_alignment_its_bytes_and_zeroes() {
        let a = MiMalloc;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=130).chain([255, 256, 1000, 4096, 70_000]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: valid layouts of non-zero size; each block is written within its
                // size and freed once, with the layout it has at that point.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size}/{align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    // Grow, then shrink: the bytes up to the smaller size survive each move.
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grow {size}/{align}");
                    assert!(
                        (0..size).all(|i| *grown.add(i) == i as u8),
                        "grow {size}/{align}"
                    );
                    let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                    let small = size.div_ceil(2);
                    let shrunk = a.realloc(grown, grown_layout, small);
                    assert_eq!(shrunk as usize % align, 0, "shrink {size}/{align}");
                    assert!(
                        (0..small).all(|i| *shrunk.add(i) == i as u8),
                        "shrink {size}/{align}"
                    );
                    a.dealloc(shrunk, Layout::from_size_align(small, align).unwrap());

                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "alloc_zeroed {size}/{align}");
                    assert!(
                        (0..size).all(|i| *z.add(i) == 0),
                        "alloc_zeroed {size}/{align}"
                    );
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
