//! DEBUG subcommands besides POPULATE and SHARD (keyspace.rs), and the
//! `enable-debug-command` gate, as in Redis 7.0.

use tessera_protocol::{Args, Reply};
use tessera_shard::util::eq_ic;

use crate::conn::Conn;

const NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

const PROTOCOL_TYPES: &str = "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false";

/// Whether `enable-debug-command` lets this connection run DEBUG; replies
/// Redis's error when not.
pub fn allowed(conn: &mut Conn) -> bool {
    let setting = conn
        .rt
        .shared
        .config
        .lock()
        .ok()
        .and_then(|c| c.get("enable-debug-command").map(str::to_string))
        .unwrap_or_default();
    let ok = match setting.as_str() {
        "yes" => true,
        "local" => {
            let a = conn.meta.borrow().addr.clone();
            a.starts_with("127.") || a.starts_with("[::1]") || a.starts_with("::1")
        }
        _ => false,
    };
    if !ok {
        Reply::new(&mut conn.wbuf, conn.proto).error(NOT_ALLOWED);
    }
    ok
}

/// Runs the subcommands this file has; false when `args` is another one.
pub async fn run(conn: &mut Conn, args: &Args<'_>) -> bool {
    let sub = args.get(1);
    let n = args.len();
    if eq_ic(sub, b"SLEEP") && n == 3 {
        sleep(conn, args.get(2)).await;
    } else if eq_ic(sub, b"PROTOCOL") && n == 3 {
        protocol(conn, args.get(2));
    } else if eq_ic(sub, b"ERROR") && n == 3 {
        let msg = args.get(2).to_vec();
        Reply::new(&mut conn.wbuf, conn.proto).error_bytes(&msg);
    } else if ((eq_ic(sub, b"SET-ACTIVE-EXPIRE") || eq_ic(sub, b"QUICKLIST-PACKED-THRESHOLD"))
        && n == 3)
        || (eq_ic(sub, b"CHANGE-REPL-ID") && n == 2)
    {
        // Accepted for the test suites that send them; Tessera's active
        // expiry and quicklists have no such switches.
        Reply::new(&mut conn.wbuf, conn.proto).ok();
    } else if eq_ic(sub, b"STRINGMATCH-LEN") && n == 2 {
        // Redis's stress test of its own glob matcher with a pathological
        // pattern: Tessera's matcher is bounded, so it is run the same way.
        let mut pattern = b"a*".repeat(50);
        pattern.push(b'b');
        let text = vec![b'a'; 100];
        let _ = tessera_shard::glob::glob_match(&pattern, &text, false);
        Reply::new(&mut conn.wbuf, conn.proto).ok();
    } else {
        return false;
    }
    true
}

/// DEBUG SLEEP seconds: the connection waits (other clients are served:
/// only the shard's other work goes on, as no lock is held).
async fn sleep(conn: &mut Conn, arg: &[u8]) {
    let secs = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(0.0);
    if secs > 0.0 {
        let d = std::time::Duration::from_secs_f64(secs.min(86400.0 * 365.0));
        let _ = conn.rt.net.timeout(d).await;
    }
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// DEBUG PROTOCOL type: one reply of each RESP3 type, as Redis sends it
/// (RESP2 gets each one's RESP2 form).
fn protocol(conn: &mut Conn, name: &[u8]) {
    let resp3 = conn.proto == tessera_protocol::Proto::Resp3;
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    match name.to_ascii_lowercase().as_slice() {
        b"string" => r.bulk(b"Hello World"),
        b"integer" => r.int(12345),
        // Redis's sample double (not meant as pi).
        #[allow(clippy::approx_constant)]
        b"double" => r.double(3.141),
        b"bignum" => {
            if resp3 {
                r.raw(b"(1234567999999999999999999999999999999\r\n")
            } else {
                r.bulk(b"1234567999999999999999999999999999999")
            }
        }
        b"null" => r.null(),
        b"array" => {
            r.array(3);
            for j in 0..3 {
                r.int(j);
            }
        }
        b"set" => {
            r.set(3);
            for j in 0..3 {
                r.int(j);
            }
        }
        b"map" => {
            r.map(3);
            for j in 0..3 {
                r.int(j);
                r.bool(j == 1);
            }
        }
        b"attrib" => {
            if resp3 {
                r.raw(b"|1\r\n");
                r.bulk(b"key-popularity");
                r.array(2);
                r.bulk(b"key:123");
                r.int(90);
            }
            r.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !resp3 {
                return r.error("ERR RESP2 is not supported by this command");
            }
            r.push(2);
            r.bulk(b"server-cpu-usage");
            r.int(42);
            // Redis follows the push with the command's own reply.
            r.bulk(b"Some real reply following the push reply");
        }
        b"true" => r.bool(true),
        b"false" => r.bool(false),
        b"verbatim" => r.verbatim("txt", b"This is a verbatim\nstring"),
        _ => r.error(PROTOCOL_TYPES),
    }
}
