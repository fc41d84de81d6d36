//! Counting the heap: the bytes the server has allocated and not freed,
//! which INFO reports as `used_memory`.
//!
//! Redis asks its allocator (jemalloc) for that number. Rust's default
//! allocator, the system's malloc, keeps no such count, so the server
//! installs this wrapper as its global allocator: every allocation goes to
//! `System` as before, and its size is counted; every free takes it off.
//!
//! The count must cost the hot path next to nothing, and an atomic add on
//! a counter that every thread shares does not: measured, one for each
//! allocation and each free took a tenth off pipelined GETs
//! (docs/performance.md). So each thread keeps its own tally in a plain
//! thread-local integer, and adds it to the shared counter only when it
//! has grown past [`SETTLE_AT`] either way, or when the thread settles up
//! on purpose ([`settle`]): a connection does before it sleeps and when it
//! ends, so an idle server's count is exact, and a busy one's is off by at
//! most [`SETTLE_AT`] per running thread.
//!
//! The count is what the program asked for, not what malloc keeps for it
//! (its headers, rounding and free lists); the resident size, from the
//! kernel, is INFO's `used_memory_rss`. As with Redis, the gap between the
//! two is the allocator's overhead and fragmentation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// The system allocator, counting the bytes it hands out.
pub struct Counting;

/// Bytes allocated minus bytes freed, as the threads have settled them. A
/// block freed by another thread than the one that allocated it makes one
/// tally go up and another down: the sum is right.
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

/// How far a thread's own tally may grow, either way, before it is added
/// to [`ALLOCATED`].
const SETTLE_AT: isize = 64 * 1024;

thread_local! {
    /// This thread's bytes allocated minus freed, not yet in [`ALLOCATED`].
    /// A plain `Cell` with a constant start and no destructor: safe to use
    /// from inside the allocator, even while the thread ends.
    static TALLY: Cell<isize> = const { Cell::new(0) };
}

/// Adds `delta` bytes to this thread's tally, settling it if it grew large.
fn count(delta: isize) {
    let counted = TALLY.try_with(|tally| {
        let sum = tally.get() + delta;
        if sum.abs() >= SETTLE_AT {
            ALLOCATED.fetch_add(sum, Relaxed);
            tally.set(0);
        } else {
            tally.set(sum);
        }
    });
    // The thread's locals are gone (it is ending): count directly.
    if counted.is_err() {
        ALLOCATED.fetch_add(delta, Relaxed);
    }
}

/// Adds this thread's tally to the shared count. A thread calls it before
/// it sleeps and before it ends, so that what it holds is not left out.
pub fn settle() {
    let _ = TALLY.try_with(|tally| ALLOCATED.fetch_add(tally.replace(0), Relaxed));
}

/// Bytes the program has allocated and not freed (this thread's tally
/// settled first; other running threads' are off by at most `SETTLE_AT`).
pub fn allocated() -> usize {
    settle();
    ALLOCATED.load(Relaxed).max(0) as usize
}

// SAFETY: every method hands the call to `System` unchanged, which upholds
// `GlobalAlloc`'s contract; the counting around it touches no memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`, as the
        // caller guarantees, and so from `System`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's to check.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        // On failure the old block stays allocated: nothing changes.
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}
