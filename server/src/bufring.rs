//! A ring of provided buffers (IORING_REGISTER_PBUF_RING) for the shard's
//! multishot receives.
//!
//! Why: a plain recv per request costs a submission and, when the socket is
//! empty, a readiness poll armed and torn down again in the kernel
//! (`io_arm_apoll` in the profiles). A multishot recv stays armed on the
//! socket and, each time data arrives, receives it into a buffer the kernel
//! takes from this ring. The data is copied out and the buffer given back
//! in the same loop turn (net.rs), so the ring only has to cover one turn's
//! completions, not every connection.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

pub struct BufRing {
    /// The ring the kernel reads (page-aligned, `entries` slots).
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    /// The buffers themselves, `entries * buf_size` bytes.
    bufs: Box<[u8]>,
    buf_size: usize,
    mask: u16,
    /// Our copy of the tail; published to the kernel after each give-back.
    tail: u16,
    pub group: u16,
}

impl BufRing {
    /// Registers `entries` (a power of two) buffers of `buf_size` bytes as
    /// buffer group `group` of `uring`.
    pub fn new(uring: &IoUring, entries: u16, buf_size: usize, group: u16) -> io::Result<BufRing> {
        assert!(entries.is_power_of_two());
        let ring_bytes = entries as usize * std::mem::size_of::<BufRingEntry>();
        // SAFETY: a fresh anonymous private mapping, checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut br = BufRing {
            ring: ptr as *mut BufRingEntry,
            ring_bytes,
            bufs: vec![0u8; entries as usize * buf_size].into_boxed_slice(),
            buf_size,
            mask: entries - 1,
            tail: 0,
            group,
        };
        // SAFETY: the mapping and the buffers live as long as `br`, which the
        // owner drops only after the ring (net.rs keeps that order).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(ptr as u64, entries, group, 0)?;
        }
        for bid in 0..entries {
            br.give_back(bid);
        }
        Ok(br)
    }

    /// The first `len` bytes the kernel wrote into buffer `bid`.
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * self.buf_size;
        &self.bufs[start..start + len.min(self.buf_size)]
    }

    /// Hands buffer `bid` back to the kernel.
    pub fn give_back(&mut self, bid: u16) {
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: idx < entries; the slot past the tail belongs to us.
        let e = unsafe { &mut *self.ring.add(idx) };
        e.set_addr(self.bufs[bid as usize * self.buf_size..].as_ptr() as u64);
        e.set_len(self.buf_size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field lives in the first entry of our mapping;
        // the kernel reads it with acquire semantics.
        let tail = unsafe { &*(BufRingEntry::tail(self.ring) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer registered (the ring is gone).
        unsafe { libc::munmap(self.ring as *mut libc::c_void, self.ring_bytes) };
    }
}
