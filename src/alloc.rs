//! Counting the heap: the bytes the server has allocated and not freed,
//! which INFO reports as `used_memory`.
//!
//! Redis asks its allocator (jemalloc) for that number. Rust's default
//! allocator, the system's malloc, keeps no such count, so the server
//! installs this wrapper as its global allocator: every allocation goes to
//! `System` as before, and adds its size to one counter; every free takes
//! it off. The price is one relaxed atomic add per allocation and per free
//! (docs/performance.md has the measurement).
//!
//! The count is what the program asked for, not what malloc keeps for it
//! (its headers, rounding and free lists); the resident size, from the
//! kernel, is INFO's `used_memory_rss`. As with Redis, the gap between the
//! two is the allocator's overhead and fragmentation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes it hands out.
pub struct Counting;

/// Bytes allocated and not yet freed.
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// Bytes the program has allocated and not freed.
pub fn allocated() -> usize {
    ALLOCATED.load(Relaxed)
}

// SAFETY: every method hands the call to `System` unchanged, which upholds
// `GlobalAlloc`'s contract; the counting around it touches no memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            ALLOCATED.fetch_add(layout.size(), Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            ALLOCATED.fetch_add(layout.size(), Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`, as the
        // caller guarantees, and so from `System`.
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's to check.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // On failure the old block stays allocated: nothing changes.
            ALLOCATED.fetch_add(new_size, Relaxed);
            ALLOCATED.fetch_sub(layout.size(), Relaxed);
        }
        new
    }
}
