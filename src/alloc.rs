//! Counting the heap: the bytes the server has allocated and not freed,
//! which INFO reports as `used_memory`.
//!
//! Redis asks its allocator (jemalloc) for that number. Rust's default
//! allocator, the system's malloc, keeps no such count, so the server
//! installs this wrapper as its global allocator: every allocation goes to
//! `System` as before, and adds its size to a counter; every free takes
//! it off. The price is one relaxed atomic add per allocation and per free
//! (docs/performance.md has the measurement). The counter is split in
//! shards, one cache line each, and a thread adds to its own shard: with
//! one shared counter, every allocation on one core would take the line
//! from the others. Reading the total adds the shards up, which only
//! INFO does.
//!
//! The count is what the program asked for, not what malloc keeps for it
//! (its headers, rounding and free lists); the resident size, from the
//! kernel, is INFO's `used_memory_rss`. As with Redis, the gap between the
//! two is the allocator's overhead and fragmentation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes it hands out.
pub struct Counting;

/// How many shards the count is split in: more than the cores a server
/// usually has, so that few threads share one.
const SHARDS: usize = 32;

/// One shard of the count, alone on its cache line.
#[repr(align(64))]
struct Shard(AtomicUsize);

/// Bytes allocated minus bytes freed, per shard. A block freed by another
/// thread than the one that allocated it is taken off another shard, so a
/// shard may go below zero: the arithmetic wraps, and the sum is right.
static ALLOCATED: [Shard; SHARDS] = [const { Shard(AtomicUsize::new(0)) }; SHARDS];

/// Hands out shards to threads in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, once it has allocated (no destructor: it is
    /// safe to read from inside the allocator, even as the thread ends).
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard.
fn shard() -> &'static AtomicUsize {
    let index = SHARD
        .try_with(|shard| {
            if shard.get() == usize::MAX {
                shard.set(NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS);
            }
            shard.get()
        })
        .unwrap_or(0);
    &ALLOCATED[index].0
}

/// Bytes the program has allocated and not freed.
pub fn allocated() -> usize {
    ALLOCATED
        .iter()
        .fold(0usize, |sum, shard| sum.wrapping_add(shard.0.load(Relaxed)))
}

// SAFETY: every method hands the call to `System` unchanged, which upholds
// `GlobalAlloc`'s contract; the counting around it touches no memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            shard().fetch_add(layout.size(), Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            shard().fetch_add(layout.size(), Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`, as the
        // caller guarantees, and so from `System`.
        unsafe { System.dealloc(ptr, layout) };
        shard().fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's to check.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        // On failure the old block stays allocated: nothing changes.
        if !new.is_null() {
            let shard = shard();
            shard.fetch_add(new_size, Relaxed);
            shard.fetch_sub(layout.size(), Relaxed);
        }
        new
    }
}
