//! Messages between shards, and the tickets a connection waits on.
//!
//! Two meshes of lock-free rings (rings.rs: one ring between every pair of
//! shards) carry them: one for requests, one for responses. Keeping
//! responses on their own rings means a shard that is blocked sending a
//! request can never stop another shard from delivering the response it is
//! waiting for: the response rings are drained by tasks that never block.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use slab::Slab;
use tessera_protocol::{ArgSpan, Proto};

use crate::runtime::ShardRuntime;

/// Work sent to run on a shard's thread with its state (control-path
/// commands: INFO, SCAN, CLIENT LIST, the cross-shard key moves...).
pub type CallFn = Box<dyn FnOnce(&ShardRuntime) -> Box<dyn Any + Send> + Send>;

/// One forwarded command of a batch: its arguments are
/// `spans[first..first + argc]` into the batch's shared buffer.
#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub first: u32,
    pub argc: u32,
    /// The command's id in the command table (a subcommand's own id).
    pub cmd: u16,
    pub db: u16,
    pub proto: Proto,
    /// False for the parts of a split command: the coordinator counts the
    /// call once in INFO commandstats.
    pub count: bool,
    /// The coordinator holds this item's locks (it runs inside an atomic
    /// command or an EXEC): it runs without looking at the lock table.
    pub locked: bool,
    /// Its reads are tracked for the batch's `tracker` (CLIENT TRACKING).
    pub track: bool,
}

/// All commands of one read batch bound for one shard.
pub struct ForwardBatch {
    pub ticket: u32,
    /// A shared view of the connection's read buffer: no copy of arguments.
    pub buf: Bytes,
    pub spans: Vec<ArgSpan>,
    pub items: Vec<Item>,
    /// The coordinating client's room left under its output limit (0: no
    /// limit): the shard stops once its replies pass it, and the client
    /// is closed.
    pub budget: usize,
    /// CLIENT TRACKING: where the client's invalidations go, and its id
    /// when it asked for NOLOOP (None for nearly every connection).
    pub tracker: Option<(tessera_shard::tracking::Tracker, Option<u64>)>,
    /// The coordinating client's id (whom a SLOWLOG entry names).
    pub client: u64,
}

/// Work run on a shard with no answer (unwatching, releasing).
pub type DoFn = Box<dyn FnOnce(&ShardRuntime) + Send>;

pub enum Request {
    Batch(ForwardBatch),
    Call {
        ticket: u32,
        f: CallFn,
    },
    /// Transaction `tx` asks for its locks on this shard; the answer (a
    /// Call answer holding `true`) comes when they are granted. `watch` is
    /// checked then, with the keys locked. With `try_only`, a request that
    /// cannot be granted at once is answered `false` instead of queued.
    Lock {
        ticket: u32,
        tx: crate::txn::TxId,
        set: crate::txn::LockSet,
        watch: Option<crate::txn::WatchCheck>,
        try_only: bool,
    },
    /// Transaction `tx` is done here: its locks go, or its queued request.
    Release {
        tx: crate::txn::TxId,
    },
    Do(DoFn),
}

/// Replies to a batch: item i's reply is `out[ends[i-1]..ends[i]]`.
pub struct BatchReply {
    pub out: Vec<u8>,
    pub ends: Vec<u32>,
    /// AOF records of a transaction's part (None nearly always).
    pub aof: Option<Box<tessera_shard::aof::Log>>,
}

impl BatchReply {
    /// Item i's reply; None past where the shard stopped at the budget.
    pub fn item(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.out[start..end])
    }
}

pub enum Response {
    Batch {
        ticket: u32,
        reply: BatchReply,
    },
    Call {
        ticket: u32,
        value: Box<dyn Any + Send>,
    },
}

pub enum Answer {
    Batch(BatchReply),
    Call(Box<dyn Any + Send>),
    /// The peer shard is gone (shutdown).
    Lost,
}

enum Slot {
    Waiting(Option<Waker>),
    Done(Answer),
}

/// Outstanding requests of one shard's connections, by ticket.
#[derive(Default)]
pub struct Tickets {
    slots: RefCell<Slab<Slot>>,
}

impl Tickets {
    pub fn open(&self) -> u32 {
        self.slots.borrow_mut().insert(Slot::Waiting(None)) as u32
    }

    /// Delivers an answer and wakes its waiter.
    pub fn complete(&self, ticket: u32, answer: Answer) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(ticket as usize) {
            if let Slot::Waiting(Some(w)) = std::mem::replace(slot, Slot::Done(answer)) {
                w.wake();
            }
        }
    }

    /// Waits for a ticket's answer.
    pub fn wait(self: &Rc<Self>, ticket: u32) -> TicketFuture {
        TicketFuture {
            tickets: self.clone(),
            ticket,
            done: false,
        }
    }

    /// Cancels a ticket whose request could not be sent.
    pub fn cancel(&self, ticket: u32) {
        let mut slots = self.slots.borrow_mut();
        if slots.contains(ticket as usize) {
            slots.remove(ticket as usize);
        }
    }
}

pub struct TicketFuture {
    tickets: Rc<Tickets>,
    ticket: u32,
    done: bool,
}

impl Future for TicketFuture {
    type Output = Answer;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let tickets = self.tickets.clone();
        let mut slots = tickets.slots.borrow_mut();
        let key = self.ticket as usize;
        match slots.get_mut(key) {
            Some(Slot::Done(_)) => {
                self.done = true;
                match slots.remove(key) {
                    Slot::Done(a) => Poll::Ready(a),
                    Slot::Waiting(_) => Poll::Ready(Answer::Lost),
                }
            }
            Some(Slot::Waiting(w)) => {
                *w = Some(cx.waker().clone());
                Poll::Pending
            }
            None => {
                self.done = true;
                Poll::Ready(Answer::Lost)
            }
        }
    }
}

impl Drop for TicketFuture {
    fn drop(&mut self) {
        // A connection that goes away mid-wait frees its ticket; a late
        // answer then finds no slot and is dropped.
        if self.done {
            return;
        }
        let mut slots = self.tickets.slots.borrow_mut();
        if slots.contains(self.ticket as usize) {
            slots.remove(self.ticket as usize);
        }
    }
}
