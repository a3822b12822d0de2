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
//! tasks await stream reads and `send` futures. A send's buffer travels
//! with the operation, so a dropped future never leaves the kernel reading
//! freed memory.
//!
//! Receiving: each connection has one multishot recv (a `Stream`) that
//! stays armed on its socket and receives into the shard's provided-buffer
//! ring (bufring.rs); the reaper copies each completion's bytes into the
//! stream's inbox and gives the buffer back at once. The inbox is bounded:
//! past `PAUSE_AT` bytes the multishot is cancelled (TCP flow control takes
//! over again, as with a plain recv) and re-armed once the connection has
//! taken what was received.
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

use crate::bufring::BufRing;

const WAKE_TOKEN: u64 = u64::MAX;
/// The completion of a cancel or close request: nothing waits for it.
const UNWATCHED: u64 = u64::MAX - 1;
/// Marks a stream's user data (its key in `streams`).
const STREAM_TAG: u64 = 1 << 62;
/// Provided buffers: one loop turn's receives, copied out in that turn.
const RECV_BUFS: u16 = 256;
const RECV_BUF_SIZE: usize = 16 * 1024;
/// A stream's inbox size past which its multishot recv is stopped until the
/// connection catches up (the query buffer limit is checked on top).
const PAUSE_AT: usize = 256 * 1024;

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
    Send(Vec<u8>),
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

/// One connection's receiving side.
struct Stream {
    fd: RawFd,
    /// Received and not yet taken by the connection.
    inbox: BytesMut,
    waker: Option<Waker>,
    /// A multishot recv is in flight.
    armed: bool,
    /// Its cancel has been asked for (pause or close).
    cancelling: bool,
    /// End of stream (0) or an error (-errno), once the inbox is taken.
    end: Option<i32>,
    /// The connection is gone; the entry waits for the last completion.
    closed: bool,
}

pub struct NetRing {
    // Dropped first: closing the ring cancels what is in flight before the
    // buffers below are freed.
    ring: RefCell<IoUring>,
    bufs: RefCell<BufRing>,
    ops: RefCell<Slab<Op>>,
    streams: RefCell<Slab<Stream>>,
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
        let bufs = BufRing::new(&ring, RECV_BUFS, RECV_BUF_SIZE, 0)
            .map_err(|e| io::Error::new(e.kind(), format!("provided buffer ring: {e}")))?;
        let nr = Rc::new(NetRing {
            ring: RefCell::new(ring),
            bufs: RefCell::new(bufs),
            ops: RefCell::new(Slab::with_capacity(256)),
            streams: RefCell::new(Slab::with_capacity(256)),
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

    /// Starts receiving on `fd`; read with `stream_read`, end with
    /// `stream_close` (before closing the socket).
    pub fn stream_open(&self, fd: RawFd) -> usize {
        let key = self.streams.borrow_mut().insert(Stream {
            fd,
            inbox: BytesMut::new(),
            waker: None,
            armed: false,
            cancelling: false,
            end: None,
            closed: false,
        });
        self.arm_stream(key);
        key
    }

    fn arm_stream(&self, key: usize) {
        let fd = {
            let mut streams = self.streams.borrow_mut();
            let st = &mut streams[key];
            st.armed = true;
            st.cancelling = false;
            st.fd
        };
        let sqe = opcode::RecvMulti::new(types::Fd(fd), self.bufs.borrow().group)
            .build()
            .user_data(STREAM_TAG | key as u64);
        self.push(sqe);
    }

    fn cancel_stream(&self, key: usize) {
        let sqe = opcode::AsyncCancel::new(STREAM_TAG | key as u64)
            .build()
            .user_data(UNWATCHED);
        self.push(sqe);
    }

    /// Waits until bytes were received on the stream and appends them to
    /// `buf`. Ok(0): the peer closed.
    pub fn stream_read<'a>(
        self: &'a Rc<Self>,
        key: usize,
        buf: &'a mut BytesMut,
    ) -> StreamRead<'a> {
        StreamRead {
            ring: self,
            key,
            buf,
        }
    }

    /// Ends the stream: cancels its recv; the entry goes with the last
    /// completion.
    pub fn stream_close(&self, key: usize) {
        let mut streams = self.streams.borrow_mut();
        let st = &mut streams[key];
        st.closed = true;
        st.waker = None;
        st.inbox = BytesMut::new();
        if !st.armed {
            streams.remove(key);
        } else if !st.cancelling {
            st.cancelling = true;
            drop(streams);
            self.cancel_stream(key);
        }
    }

    /// A completion of stream `key`'s multishot recv.
    fn stream_completion(&self, key: usize, res: i32, flags: u32) {
        let mut streams = self.streams.borrow_mut();
        let Some(st) = streams.get_mut(key) else {
            return;
        };
        if let Some(bid) = io_uring::cqueue::buffer_select(flags) {
            let mut bufs = self.bufs.borrow_mut();
            if res > 0 && !st.closed {
                st.inbox.extend_from_slice(bufs.data(bid, res as usize));
            }
            bufs.give_back(bid);
        }
        let more = io_uring::cqueue::more(flags);
        if !more {
            st.armed = false;
        }
        match res {
            r if r > 0 => {}
            // Out of buffers or cancelled: not an end; re-armed on the next read.
            r if r == -libc::ENOBUFS || r == -libc::ECANCELED => {}
            r => {
                if !more && st.end.is_none() {
                    st.end = Some(r);
                }
            }
        }
        if st.closed {
            if !st.armed {
                streams.remove(key);
            }
            return;
        }
        let pause = st.armed && !st.cancelling && st.inbox.len() > PAUSE_AT;
        if pause {
            st.cancelling = true;
            log::debug!("stream {key}: inbox {} bytes, receiving paused", st.inbox.len());
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        drop(streams);
        if pause {
            self.cancel_stream(key);
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
            if key & STREAM_TAG != 0 {
                self.stream_completion((key & !STREAM_TAG) as usize, cqe.result(), cqe.flags());
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

/// `NetRing::stream_read`'s future.
pub struct StreamRead<'a> {
    ring: &'a Rc<NetRing>,
    key: usize,
    buf: &'a mut BytesMut,
}

impl Future for StreamRead<'_> {
    type Output = io::Result<usize>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let rearm = {
            let mut streams = this.ring.streams.borrow_mut();
            let st = &mut streams[this.key];
            let n = st.inbox.len();
            if n > 0 {
                if this.buf.is_empty() {
                    // The common case: the connection parsed everything,
                    // so the inbox becomes its buffer without a copy.
                    std::mem::swap(this.buf, &mut st.inbox);
                } else {
                    this.buf.extend_from_slice(&st.inbox);
                    st.inbox.clear();
                }
                if !st.armed && st.end.is_none() {
                    drop(streams);
                    this.ring.arm_stream(this.key);
                }
                return Poll::Ready(Ok(n));
            }
            match st.end {
                Some(0) => return Poll::Ready(Ok(0)),
                Some(e) => return Poll::Ready(Err(io::Error::from_raw_os_error(-e))),
                None => {}
            }
            st.waker = Some(cx.waker().clone());
            !st.armed
        };
        if rearm {
            this.ring.arm_stream(this.key);
        }
        Poll::Pending
    }
}

pub struct OpFuture {
    ring: Rc<NetRing>,
    key: Option<usize>,
}

/// A completed operation: the kernel's result and the buffer back.
pub struct Completed {
    pub result: io::Result<usize>,
    pub send: Option<Vec<u8>>,
}

impl Future for OpFuture {
    type Output = Completed;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Completed> {
        let Some(key) = self.key else {
            return Poll::Ready(Completed {
                result: Err(io::Error::other("polled after completion")),
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
                let send = match op.buf {
                    Buf::Send(b) => Some(b),
                    Buf::None => None,
                };
                Poll::Ready(Completed { result, send })
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
                }
            }
        }
    }
}
