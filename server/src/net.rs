//! The shard's network path on its own io_uring (the io-uring crate).
//!
//! Why not glommio's TcpStream: it does a plain recv/send syscall per
//! operation and, after every short read, arms a readiness poll in
//! glommio's ring; that poll completes from the CPU that delivered the
//! packet as task work announced with a reschedule IPI (glommio's rings are
//! not set up with COOP_TASKRUN). Measured on the 2-vCPU build VM at
//! `-c 50 -P 1`: 26 us of server CPU per request against redis-server's 14,
//! with the IPI path visible in the profile (README, Performance).
//!
//! Here each shard has a second ring set up with COOP_TASKRUN, TASKRUN_FLAG
//! and SINGLE_ISSUER: completions never interrupt the running shard, and
//! every connection's recv and send of a loop turn go to the kernel in one
//! io_uring_enter. A driver task (`drive`) submits and reaps; connection
//! tasks await `recv`/`send` futures. Buffers travel with the operation, so
//! a dropped future never leaves the kernel writing into freed memory; a
//! future dropped before its completion also cancels its operation, so a
//! connection that ends with a recv still posted does not keep its socket
//! open until the peer sends something.
//!
//! Parking: when there is nothing to do, the shard's driver (runtime.rs)
//! blocks in this ring. Other shards wake it through an eventfd whose read
//! is armed here: they write it only when the shard says it is parked
//! (`Wake::parked`), with SeqCst on both sides so that a message is either
//! seen before parking or wakes it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, Ordering};

use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;

const WAKE_TOKEN: u64 = u64::MAX;
/// The completion of a cancel or close request: nothing waits for it.
const UNWATCHED: u64 = u64::MAX - 1;
/// From the kernel's io_uring.h (the io-uring crate keeps its copy private).
const IORING_RECVSEND_POLL_FIRST: u16 = 1;

/// How other shards wake this one when it is parked in its ring.
pub struct Wake {
    pub parked: AtomicBool,
    pub efd: RawFd,
}

impl Wake {
    pub fn new() -> io::Result<Wake> {
        // SAFETY: plain eventfd creation.
        let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Wake {
            parked: AtomicBool::new(false),
            efd,
        })
    }

    /// Called after putting a message in this shard's channel.
    #[inline]
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our eventfd.
            unsafe { libc::write(self.efd, &one as *const u64 as *const libc::c_void, 8) };
        }
    }
}

enum Buf {
    None,
    Recv(BytesMut),
    Send(Vec<u8>),
    /// A timeout's duration, which the kernel reads until it completes
    /// (held, never read here).
    #[allow(dead_code)]
    Timeout(Box<types::Timespec>),
}

enum State {
    Waiting(Option<Waker>),
    Done(i32),
    /// The future was dropped; the buffer waits here for the completion.
    Orphaned,
}

struct Op {
    state: State,
    buf: Buf,
}

pub struct NetRing {
    // Dropped first: closing the ring cancels what is in flight before the
    // buffers below are freed.
    ring: RefCell<IoUring>,
    ops: RefCell<Slab<Op>>,
    wake_buf: Box<Cell<u64>>,
    wake_efd: RawFd,
}

impl NetRing {
    pub fn new(entries: u32, wake_efd: RawFd) -> io::Result<Rc<NetRing>> {
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries)?;
        let nr = Rc::new(NetRing {
            ring: RefCell::new(ring),
            ops: RefCell::new(Slab::with_capacity(256)),
            wake_buf: Box::new(Cell::new(0)),
            wake_efd,
        });
        nr.arm_wake();
        Ok(nr)
    }

    fn arm_wake(&self) {
        let sqe = opcode::Read::new(
            types::Fd(self.wake_efd),
            self.wake_buf.as_ptr() as *mut u8,
            8,
        )
        .build()
        .user_data(WAKE_TOKEN);
        self.push(sqe);
    }

    /// Queues an SQE, flushing the queue to the kernel first if it is full.
    fn push(&self, sqe: squeue::Entry) {
        let mut ring = self.ring.borrow_mut();
        loop {
            // SAFETY: every buffer an SQE points to is owned by its `Op`
            // (or by `self` for the wake read) until its completion.
            if unsafe { ring.submission().push(&sqe) }.is_ok() {
                return;
            }
            let _ = ring.submit();
        }
    }

    /// Receives into the spare capacity of `buf` (reserve before calling).
    /// `poll_first`: the socket was just drained (the peer is waiting for
    /// our reply), so skip the recv attempt that would find nothing and
    /// arm the readiness poll straight away.
    pub fn recv(self: &Rc<Self>, fd: RawFd, mut buf: BytesMut, poll_first: bool) -> OpFuture {
        let len = buf.capacity() - buf.len();
        let ptr = unsafe { buf.as_mut_ptr().add(buf.len()) };
        let key = self.ops.borrow_mut().insert(Op {
            state: State::Waiting(None),
            buf: Buf::None,
        });
        let sqe = opcode::Recv::new(types::Fd(fd), ptr, len as u32)
            .ioprio(if poll_first {
                IORING_RECVSEND_POLL_FIRST
            } else {
                0
            })
            .build()
            .user_data(key as u64);
        self.ops.borrow_mut()[key].buf = Buf::Recv(buf);
        self.push(sqe);
        OpFuture {
            ring: self.clone(),
            key: Some(key),
        }
    }

    /// Sends `buf[from..]`.
    pub fn send(self: &Rc<Self>, fd: RawFd, buf: Vec<u8>, from: usize) -> OpFuture {
        let ptr = buf[from..].as_ptr();
        let len = buf.len() - from;
        let key = self.ops.borrow_mut().insert(Op {
            state: State::Waiting(None),
            buf: Buf::Send(buf),
        });
        let sqe = opcode::Send::new(types::Fd(fd), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(key as u64);
        self.push(sqe);
        OpFuture {
            ring: self.clone(),
            key: Some(key),
        }
    }

    /// Closes a socket through the ring, after the operations on it queued
    /// before: an SQE still in the queue names the fd by number, which a
    /// plain close could let a new connection take first.
    pub fn close(&self, fd: RawFd) {
        let sqe = opcode::Close::new(types::Fd(fd))
            .build()
            .user_data(UNWATCHED);
        self.push(sqe);
    }

    /// Asks the kernel to cancel operation `key` (its completion still
    /// comes, and frees it).
    fn cancel(&self, key: usize) {
        let sqe = opcode::AsyncCancel::new(key as u64)
            .build()
            .user_data(UNWATCHED);
        self.push(sqe);
    }

    /// Completes after `after` (a blocked client's timeout): in the ring,
    /// so it costs nothing while it waits and wakes the shard on time.
    pub fn timeout(self: &Rc<Self>, after: Duration) -> OpFuture {
        let ts = Box::new(types::Timespec::from(after));
        let ptr: *const types::Timespec = &*ts;
        let key = self.ops.borrow_mut().insert(Op {
            state: State::Waiting(None),
            buf: Buf::Timeout(ts),
        });
        let sqe = opcode::Timeout::new(ptr).build().user_data(key as u64);
        self.push(sqe);
        OpFuture {
            ring: self.clone(),
            key: Some(key),
        }
    }

    /// Completes when the peer of socket `fd` closes or resets it (a
    /// blocked client that goes away), not when it sends data.
    pub fn peer_closed(self: &Rc<Self>, fd: RawFd) -> OpFuture {
        let key = self.ops.borrow_mut().insert(Op {
            state: State::Waiting(None),
            buf: Buf::None,
        });
        let mask = (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) as u32;
        let sqe = opcode::PollAdd::new(types::Fd(fd), mask)
            .build()
            .user_data(key as u64);
        self.push(sqe);
        OpFuture {
            ring: self.clone(),
            key: Some(key),
        }
    }

    /// Accepts a connection on a listening socket.
    pub fn accept(self: &Rc<Self>, lfd: RawFd) -> OpFuture {
        let key = self.ops.borrow_mut().insert(Op {
            state: State::Waiting(None),
            buf: Buf::None,
        });
        let sqe = opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(key as u64);
        self.push(sqe);
        OpFuture {
            ring: self.clone(),
            key: Some(key),
        }
    }

    /// One turn: hands queued SQEs to the kernel (and lets it run pending
    /// completions) when needed, then reaps. With `wait`, blocks until a
    /// completion or the timeout. Returns the number of completions reaped.
    pub fn turn(&self, wait: Option<Duration>) -> usize {
        {
            let mut ring = self.ring.borrow_mut();
            let pending_sq = !ring.submission().is_empty();
            let taskrun = ring.submission().taskrun();
            if let Some(wait) = wait {
                let ts = types::Timespec::from(wait);
                let args = types::SubmitArgs::new().timespec(&ts);
                let _ = ring.submitter().submit_with_args(1, &args);
            } else if pending_sq || taskrun {
                // Entering the kernel also runs deferred completion work.
                let _ = ring.submitter().submit_and_wait(0);
            }
        }
        let mut done = 0;
        let mut rearm = false;
        loop {
            let cqe = {
                let mut ring = self.ring.borrow_mut();
                let mut cq = ring.completion();
                cq.sync();
                cq.next()
            };
            let Some(cqe) = cqe else { break };
            done += 1;
            let key = cqe.user_data();
            if key == WAKE_TOKEN {
                rearm = true;
                continue;
            }
            if key == UNWATCHED {
                continue;
            }
            let mut ops = self.ops.borrow_mut();
            let Some(op) = ops.get_mut(key as usize) else {
                continue;
            };
            match std::mem::replace(&mut op.state, State::Done(cqe.result())) {
                State::Waiting(Some(w)) => w.wake(),
                State::Waiting(None) => {}
                State::Orphaned | State::Done(_) => {
                    ops.remove(key as usize);
                }
            }
        }
        if rearm {
            self.arm_wake();
        }
        done
    }

    pub fn has_work(&self) -> bool {
        let mut ring = self.ring.borrow_mut();
        let sq = !ring.submission().is_empty() || ring.submission().taskrun();
        let mut cq = ring.completion();
        cq.sync();
        sq || !cq.is_empty()
    }
}

pub struct OpFuture {
    ring: Rc<NetRing>,
    key: Option<usize>,
}

/// A completed operation: the kernel's result and the buffer back.
pub struct Completed {
    pub result: io::Result<usize>,
    pub recv: Option<BytesMut>,
    pub send: Option<Vec<u8>>,
}

impl Completed {
    /// A send's byte count (sending nothing means the peer is gone) and
    /// its buffer back.
    pub fn into_sent(self) -> (io::Result<usize>, Vec<u8>) {
        let n = match self.result {
            Ok(0) => Err(io::Error::new(io::ErrorKind::WriteZero, "peer gone")),
            r => r,
        };
        (n, self.send.unwrap_or_default())
    }
}

impl Future for OpFuture {
    type Output = Completed;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completed> {
        let Some(key) = self.key else {
            return Poll::Ready(Completed {
                result: Err(io::Error::other("polled after completion")),
                recv: None,
                send: None,
            });
        };
        let mut ops = self.ring.ops.borrow_mut();
        let op = &mut ops[key];
        match op.state {
            State::Done(res) => {
                let op = ops.remove(key);
                drop(ops);
                self.key = None;
                let result = if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else {
                    Ok(res as usize)
                };
                let (mut recv, mut send) = (None, None);
                match op.buf {
                    Buf::Recv(mut b) => {
                        if let Ok(n) = result {
                            // SAFETY: the kernel wrote `n` bytes into the spare capacity.
                            unsafe { b.set_len(b.len() + n) };
                        }
                        recv = Some(b);
                    }
                    Buf::Send(b) => send = Some(b),
                    Buf::None | Buf::Timeout(_) => {}
                }
                Poll::Ready(Completed { result, recv, send })
            }
            State::Waiting(ref mut w) => {
                *w = Some(cx.waker().clone());
                Poll::Pending
            }
            State::Orphaned => Poll::Pending,
        }
    }
}

impl Drop for OpFuture {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut ops = self.ring.ops.borrow_mut();
            if let Some(op) = ops.get_mut(key) {
                if matches!(op.state, State::Done(_)) {
                    ops.remove(key);
                } else {
                    op.state = State::Orphaned;
                    drop(ops);
                    // The slot stays taken until the completion, so the
                    // cancel cannot hit a later operation.
                    self.ring.cancel(key);
                }
            }
        }
    }
}
