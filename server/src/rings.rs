//! The rings between shards: one bounded lock-free queue for each ordered
//! pair of shards, in each of two meshes (requests, responses; see
//! mesh.rs for why two). Each ring has exactly one producer (the sending
//! shard's thread) and one consumer (the receiving shard's thread).
//!
//! A receive that finds a ring empty costs a load and leaves nothing
//! behind. (glommio's channel mesh, used before, registered a waker on
//! every empty poll, kept until its own reactor ran; the shard's driver
//! polls every turn and bypasses that reactor, so the wakers piled up:
//! about 2.6 KB of memory per forwarded request, never given back.)

use crossbeam_queue::ArrayQueue;

pub struct Mesh<T> {
    n: usize,
    /// `rings[from * n + to]`; the diagonal is unused (one slot).
    rings: Vec<ArrayQueue<T>>,
}

impl<T> Mesh<T> {
    pub fn new(n: usize, capacity: usize) -> Mesh<T> {
        Mesh {
            n,
            rings: (0..n * n)
                .map(|i| ArrayQueue::new(if i / n == i % n { 1 } else { capacity }))
                .collect(),
        }
    }

    /// Queues `msg` from shard `from` to shard `to`; Err(msg) when the ring
    /// is full (the caller keeps it in its outbox and tries again).
    #[inline]
    pub fn try_send(&self, from: usize, to: usize, msg: T) -> Result<(), T> {
        self.rings[from * self.n + to].push(msg)
    }

    /// Takes the next message from shard `from` to shard `to`, if any.
    #[inline]
    pub fn try_recv(&self, from: usize, to: usize) -> Option<T> {
        self.rings[from * self.n + to].pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_order_per_pair_and_a_full_ring_refuses() {
        let m: Mesh<u32> = Mesh::new(3, 2);
        assert!(m.try_send(0, 1, 1).is_ok());
        assert!(m.try_send(0, 1, 2).is_ok());
        assert_eq!(m.try_send(0, 1, 3), Err(3));
        assert!(m.try_send(2, 1, 9).is_ok());
        assert_eq!(m.try_recv(0, 1), Some(1));
        assert_eq!(m.try_recv(0, 1), Some(2));
        assert_eq!(m.try_recv(0, 1), None);
        assert_eq!(m.try_recv(2, 1), Some(9));
        assert_eq!(m.try_recv(1, 0), None);
    }
}
