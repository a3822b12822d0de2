//! The global allocator: mimalloc, counted per thread.
//!
//! Each shard runs on its own thread, so a thread-local byte count is that
//! shard's `used_memory` with no shared counter on the data path. Memory
//! freed on another thread than the one that allocated it (a value handed
//! across shards) moves the figure between shards; the sum stays exact.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

pub struct CountingAlloc;

thread_local! {
    // const-initialised and without Drop: usable from inside the allocator.
    static ALLOCATED: Cell<isize> = const { Cell::new(0) };
}

static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[inline]
fn add(n: isize) {
    let _ = ALLOCATED.try_with(|c| c.set(c.get() + n));
}

unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = INNER.alloc(l);
        if !p.is_null() {
            add(l.size() as isize);
        }
        p
    }
    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        INNER.dealloc(p, l);
        add(-(l.size() as isize));
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = INNER.alloc_zeroed(l);
        if !p.is_null() {
            add(l.size() as isize);
        }
        p
    }
    #[inline]
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = INNER.realloc(p, l, new);
        if !q.is_null() {
            add(new as isize - l.size() as isize);
        }
        q
    }
}

extern "C" {
    // mimalloc's own API (always in the linked library).
    fn mi_collect(force: bool);
}

/// Lets mimalloc give the calling thread's free memory back to the system:
/// pages emptied since the last call are retired and memory whose purge
/// delay has passed is returned (decommitted). mimalloc only does this from
/// inside its own calls, so a shard that goes quiet after freeing most of
/// its data (FLUSHALL, a big value deleted, a large reply sent) would keep
/// it resident; the shard's periodic work calls this once a second.
pub fn give_back() {
    // SAFETY: no arguments to check; collects the calling thread's heap.
    unsafe { mi_collect(false) }
}

/// Bytes allocated (net) by the calling thread.
pub fn thread_allocated() -> isize {
    ALLOCATED.try_with(|c| c.get()).unwrap_or(0)
}

/// The process's resident set size in bytes, from /proc/self/statm.
pub fn rss_bytes() -> usize {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<usize>().ok())
        })
        .map(|p| p * page)
        .unwrap_or(0)
}
