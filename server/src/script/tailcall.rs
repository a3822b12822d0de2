//! Turns a compiled script's tail calls into ordinary calls, so that an
//! error raised by `return redis.call(...)` names the script's line as
//! Redis does.
//!
//! Redis's `redis.call` is a C function, and Lua 5.1 keeps the caller's
//! frame when it tail-calls a C function; ours is an async function, which
//! mlua wraps in a Lua function, and a tail call to a Lua function drops
//! the caller's frame (and its line). Lua 5.1 always follows `TAILCALL A B
//! 0` with `RETURN A 0`, so `CALL A B 0` (all results) then that RETURN
//! gives the same results. The one difference: unbounded tail recursion
//! now grows the stack and ends with Lua's "stack overflow" error.
//!
//! The patch works on the binary chunk (`lua_dump`), whose layout for
//! Lua 5.1 is: a 12-byte header, then each function: source, line
//! defined, last line, 4 bytes (upvalues, params, vararg, stack), code,
//! constants, nested functions, debug info.

const OP_CALL: u32 = 28;
const OP_TAILCALL: u32 = 29;

struct Reader<'a> {
    b: &'a mut [u8],
    pos: usize,
    int: usize,
    size_t: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<usize> {
        let at = self.pos;
        if at + n > self.b.len() {
            return None;
        }
        self.pos += n;
        Some(at)
    }

    fn uint(&mut self, size: usize) -> Option<u64> {
        let at = self.take(size)?;
        let mut v = 0u64;
        for (i, &byte) in self.b[at..at + size].iter().enumerate() {
            v |= (byte as u64) << (8 * i);
        }
        Some(v)
    }

    fn string(&mut self) -> Option<()> {
        let n = self.uint(self.size_t)? as usize;
        self.take(n).map(|_| ())
    }

    fn function(&mut self, depth: usize) -> Option<()> {
        if depth > 200 {
            return None;
        }
        self.string()?;
        self.uint(self.int)?;
        self.uint(self.int)?;
        self.take(4)?;
        let ncode = self.uint(self.int)? as usize;
        for _ in 0..ncode {
            let at = self.take(4)?;
            let ins = u32::from_le_bytes(self.b[at..at + 4].try_into().ok()?);
            if ins & 0x3f == OP_TAILCALL {
                let patched = (ins & !0x3f) | OP_CALL;
                self.b[at..at + 4].copy_from_slice(&patched.to_le_bytes());
            }
        }
        let nconst = self.uint(self.int)? as usize;
        for _ in 0..nconst {
            let t = self.uint(1)?;
            match t {
                0 => {}
                1 => {
                    self.take(1)?;
                }
                3 => {
                    self.take(8)?;
                }
                4 => self.string()?,
                _ => return None,
            }
        }
        let nproto = self.uint(self.int)? as usize;
        for _ in 0..nproto {
            self.function(depth + 1)?;
        }
        let nline = self.uint(self.int)? as usize;
        self.take(nline * self.int)?;
        let nloc = self.uint(self.int)? as usize;
        for _ in 0..nloc {
            self.string()?;
            self.uint(self.int)?;
            self.uint(self.int)?;
        }
        let nup = self.uint(self.int)? as usize;
        for _ in 0..nup {
            self.string()?;
        }
        Some(())
    }
}

/// Patches a Lua 5.1 binary chunk in place. False: not a chunk this
/// understands (little-endian, 4-byte instructions, 8-byte doubles); it
/// is then left as it was.
pub fn untail(chunk: &mut [u8]) -> bool {
    if chunk.len() < 12 || &chunk[..5] != b"\x1bLua\x51" || chunk[6] != 1 {
        return false;
    }
    if chunk[9] != 4 || chunk[10] != 8 || chunk[11] != 0 {
        return false;
    }
    let original = chunk.to_vec();
    let mut r = Reader {
        int: chunk[7] as usize,
        size_t: chunk[8] as usize,
        b: chunk,
        pos: 12,
    };
    if r.function(0).is_some() && r.pos == r.b.len() {
        true
    } else {
        chunk.copy_from_slice(&original);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::{chunk::ChunkMode, Lua};

    #[test]
    fn tail_calls_become_calls_with_the_same_results() {
        let lua = Lua::new();
        let f = lua
            .load("local function g(a, b) return a + b, a * b end\nreturn g(2, 3)")
            .into_function()
            .unwrap();
        let mut bin = f.dump(false);
        assert!(untail(&mut bin));
        let g = lua
            .load(&bin[..])
            .set_mode(ChunkMode::Binary)
            .into_function()
            .unwrap();
        let (s, p): (i64, i64) = g.call(()).unwrap();
        assert_eq!((s, p), (5, 6));
    }

    #[test]
    fn garbage_is_left_alone() {
        let mut junk = b"\x1bLua\x51\x00\x01\x04\x08\x04\x08\x00\xff".to_vec();
        let copy = junk.clone();
        assert!(!untail(&mut junk));
        assert_eq!(junk, copy);
    }
}
