//! The io_uring back end's ring: queue recv/send operations, then one
//! io_uring_enter submits them all and waits. With DEFER_TASKRUN the
//! kernel does completion work only inside that call, in one batch,
//! instead of interrupting the thread for each socket event.

use io_uring::{opcode, types, IoUring};
use std::os::fd::RawFd;

pub const OP_RECV: u64 = 0;
pub const OP_SEND: u64 = 1;
/// IORING_RECVSEND_POLL_FIRST (Linux 5.19; older kernels ignore it).
const POLL_FIRST: u16 = 1;

/// Whether this kernel and sandbox allow io_uring at all.
pub fn available() -> bool {
    IoUring::new(8).is_ok()
}

pub struct Ring {
    ring: IoUring,
    /// Completions of the last wait: (user data, result).
    pub done: Vec<(u64, i32)>,
}

impl Ring {
    pub fn new(entries: u32) -> Result<Ring, String> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries.next_power_of_two().max(64))
            .or_else(|_| IoUring::new(entries.next_power_of_two().max(64)))
            .map_err(|e| format!("io_uring: {e} (try --io epoll)"))?;
        Ok(Ring {
            ring,
            done: Vec::with_capacity(entries as usize),
        })
    }

    fn push(&mut self, sqe: io_uring::squeue::Entry) {
        loop {
            // SAFETY: the caller keeps the buffer alive and unmoved until
            // the operation's completion is reaped (see driver::Conn).
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return;
            }
            let _ = self.ring.submit();
        }
    }

    /// Queues a recv into `len` bytes at `buf`.
    pub fn recv(&mut self, fd: RawFd, buf: *mut u8, len: usize, user: u64) {
        // The socket was just drained, so skip the recv attempt that would
        // fail and arm the poll at once.
        let sqe = opcode::Recv::new(types::Fd(fd), buf, len as u32)
            .ioprio(POLL_FIRST)
            .build()
            .user_data(user << 1 | OP_RECV);
        self.push(sqe);
    }

    /// Queues a send of `len` bytes at `buf`.
    pub fn send(&mut self, fd: RawFd, buf: *const u8, len: usize, user: u64) {
        let sqe = opcode::Send::new(types::Fd(fd), buf, len as u32)
            .build()
            .user_data(user << 1 | OP_SEND);
        self.push(sqe);
    }

    /// Submits what is queued and waits for `want` completions or
    /// `timeout_ns`; the completions are in `done`.
    pub fn wait(&mut self, want: usize, timeout_ns: u64) -> Result<(), String> {
        let ts = types::Timespec::new()
            .sec(timeout_ns / 1_000_000_000)
            .nsec((timeout_ns % 1_000_000_000) as u32);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) => {}
            Err(e) => return Err(format!("io_uring_enter: {e}")),
        }
        self.done.clear();
        self.done
            .extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        Ok(())
    }
}
