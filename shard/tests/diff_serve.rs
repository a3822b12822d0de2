//! A throwaway single-shard RESP server over the command table, for running
//! the differential scripts (`scripts/difftest.py`) against the shard's
//! handlers before the real server exists. Ignored by default; run with
//!
//! ```text
//! DIFF_SERVE=127.0.0.1:7399 cargo test -p tessera-shard --test diff_serve -- --ignored
//! ```
//!
//! It serves one connection at a time and implements only what the scripts
//! need beyond the table (HELLO, SELECT, container subcommands); it is not
//! the server and makes no attempt at its connection semantics.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use tessera_protocol::args::OwnedArgs;
use tessera_protocol::{Proto, Reply};
use tessera_shard::command::{self, arity_error, Ctx, Route, ShardConfig, ShardState};

fn read_request(r: &mut impl BufRead) -> Option<OwnedArgs> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = OwnedArgs::default();
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0u8; len + 2];
        r.read_exact(&mut buf).ok()?;
        args.push(&buf[..len]);
    }
    Some(args)
}

fn now_ms() -> i64 {
    tessera_shard::util::now_ms()
}

#[test]
#[ignore]
fn diff_serve() {
    let Ok(addr) = std::env::var("DIFF_SERVE") else {
        return;
    };
    let listener = TcpListener::bind(&addr).unwrap();
    let mut shard = ShardState::new(0, ShardConfig::default(), (0..16384).collect());
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let mut rd = BufReader::new(stream.try_clone().unwrap());
        let mut wr = stream;
        let (mut db, mut proto) = (0usize, Proto::Resp2);
        while let Some(owned) = read_request(&mut rd) {
            let args = owned.args();
            let mut out = Vec::new();
            let mut reply = Reply::new(&mut out, proto);
            let name = args.get(0).to_ascii_uppercase();
            match (name.as_slice(), command::lookup(&name)) {
                (b"HELLO", _) => {
                    proto = if args.try_get(1) == Some(b"3") {
                        Proto::Resp3
                    } else {
                        Proto::Resp2
                    };
                    let mut reply = Reply::new(&mut out, proto);
                    reply.map(1);
                    reply.bulk(b"proto");
                    reply.int(if proto == Proto::Resp3 { 3 } else { 2 });
                }
                (b"SELECT", _) => match args
                    .try_get(1)
                    .and_then(|a| std::str::from_utf8(a).ok()?.parse::<usize>().ok())
                {
                    Some(n) if n < 16 => {
                        db = n;
                        reply.ok();
                    }
                    _ => reply.error("ERR DB index is out of range"),
                },
                (_, None) => reply.error_bytes(&command::unknown_command_error(&args)),
                (_, Some(mut spec)) => 'run: {
                    if !spec.arity_ok(args.len()) {
                        reply.error(&arity_error(spec.name));
                        break 'run;
                    }
                    if !spec.subcommands.is_empty() {
                        match command::lookup_sub(spec, args.get(1)) {
                            Some(s) => spec = s,
                            None => {
                                reply.error_bytes(&command::unknown_subcommand_error(
                                    spec.name,
                                    args.get(1),
                                ));
                                break 'run;
                            }
                        }
                        if !spec.arity_ok(args.len()) {
                            reply.error(&arity_error(spec.name));
                            break 'run;
                        }
                    }
                    match spec.route {
                        Route::Keyed(f, _) | Route::Local(f) | Route::Fanout(f, _) => {
                            let mut ctx = Ctx::new(&mut shard, db, now_ms());
                            f(&mut ctx, args, &mut reply);
                        }
                        Route::Conn => reply.error("ERR not served by diff_serve"),
                    }
                }
            }
            if wr.write_all(&out).is_err() {
                break;
            }
        }
    }
}
