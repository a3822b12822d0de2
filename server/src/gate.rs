//! The slow path of request dispatch, taken only while something needs to
//! see each request on its own: a CLIENT PAUSE, or a connection with
//! CLIENT REPLY OFF/SKIP. Connections look at it once per batch
//! (`needed`); everything else dispatches as usual.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tessera_protocol::Args;
use tessera_shard::command::{lookup, lookup_sub, CommandSpec};

use crate::conn::Conn;

/// How often a held client looks whether the pause is over.
const PAUSE_POLL: Duration = Duration::from_millis(5);

/// Whether the node-wide state asks for the slow path (one load each).
#[inline]
pub fn needed(conn: &Conn) -> bool {
    let sh = &conn.rt.shared;
    sh.pause.set_now() || sh.monitors.load(Ordering::Relaxed) > 0
}

/// The command a request names, without replying anything (the normal
/// path replies the errors).
fn spec_of(args: &Args) -> Option<&'static CommandSpec> {
    let c = lookup(args.get(0))?;
    if !c.subcommands.is_empty() && args.len() >= 2 {
        return lookup_sub(c, args.get(1)).or(Some(c));
    }
    Some(c)
}

/// Dispatches one request on the slow path: held while a pause holds it,
/// its reply dropped under CLIENT REPLY OFF/SKIP.
pub async fn dispatch(conn: &mut Conn, args: Args<'_>, frozen: &Bytes) {
    loop {
        let now = tessera_shard::util::now_ms();
        let Some(spec) = spec_of(&args) else { break };
        let multi_writes = conn.co.multi.as_ref().is_some_and(|q| q.may_write());
        if !conn.rt.shared.pause.holds(spec, multi_writes, now) {
            break;
        }
        // What was answered before the pause reaches the client first.
        conn.flush_pending(frozen).await;
        if conn.write_out().is_err() || conn.meta.borrow().killed {
            conn.close_after_write = true;
            return;
        }
        let _ = conn.rt.net.timeout(PAUSE_POLL).await;
    }
    let monitored = conn.rt.shared.monitors.load(Ordering::Relaxed) > 0;
    let before = if monitored {
        crate::monitor::before_exec(conn, &args)
    } else {
        Vec::new()
    };
    let skip_this = std::mem::take(&mut conn.reply_skip_next);
    if !conn.reply_off && !skip_this {
        conn.dispatch_one(args, frozen).await;
    } else {
        conn.flush_pending(frozen).await;
        let at = conn.wbuf.len();
        conn.dispatch_one(args, frozen).await;
        conn.flush_pending(frozen).await;
        // CLIENT REPLY ON itself answers (it turned OFF off).
        if conn.reply_off || skip_this {
            conn.wbuf.truncate(at);
        }
    }
    if monitored {
        crate::monitor::feed(conn, &args, before);
    }
}
