//! What a running script publishes so that SCRIPT KILL, from any shard's
//! connection, can stop it: one `RunState` per shard VM, registered once.
//!
//! The VM's instruction hook (vm.rs) reads `kill` every few thousand
//! instructions and ends the script with an error. A script that has
//! written cannot be killed (its writes cannot be undone), as in Redis.
//! A connection on the very thread that runs the script cannot be served
//! until the script ends: Lua 5.1's hooks cannot yield (mlua supports a
//! yielding hook only from Lua 5.3 on), so the thread cannot switch to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

#[derive(Default)]
pub struct RunState {
    pub active: AtomicBool,
    pub wrote: AtomicBool,
    pub kill: AtomicBool,
}

static RUNNING: LazyLock<Mutex<Vec<Arc<RunState>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// Registers a shard VM's state (once, when the VM is built).
pub fn register() -> Arc<RunState> {
    let s = Arc::new(RunState::default());
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(s.clone());
    s
}

pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
pub const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";

/// SCRIPT KILL: Ok when a running script was asked to stop.
pub fn kill_running() -> Result<(), &'static str> {
    let all = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let mut found = false;
    for s in all.iter().filter(|s| s.active.load(Ordering::Acquire)) {
        if s.wrote.load(Ordering::Acquire) {
            return Err(UNKILLABLE);
        }
        s.kill.store(true, Ordering::Release);
        found = true;
    }
    if found {
        Ok(())
    } else {
        Err(NOTBUSY)
    }
}
