//! Feeds arbitrary bytes through `RequestParser`, all at once and in
//! arbitrary splits (with buffer compaction and `shift_back`), checking
//! that both give the same requests and the same outcome, that every step
//! stays inside the buffer and makes progress; then through the `Value`
//! decoder, checking that what decodes re-encodes to the same value.
//!
//! Input layout: byte 0 picks the limits and authentication, bytes 1..=4
//! seed the split sizes, the rest is the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_protocol::parse::{Limits, Parsed, ProtocolError, RequestParser};
use tessera_protocol::Value;

#[derive(Debug, PartialEq)]
enum Ev {
    Req(Vec<Vec<u8>>),
    Skip,
}

#[derive(Debug, PartialEq)]
enum Stop {
    Incomplete,
    Error(ProtocolError),
}

/// Parses `buf` from `start` until it needs more bytes or fails; returns
/// the new start.
fn drain(
    p: &mut RequestParser,
    buf: &mut [u8],
    mut start: usize,
    lim: &Limits,
    auth: bool,
    evs: &mut Vec<Ev>,
) -> Result<usize, ProtocolError> {
    let mut args = Vec::new();
    loop {
        match p.parse(buf, start, lim, auth, &mut args)? {
            Parsed::Request { end } => {
                assert!(end > start && end <= buf.len());
                assert!(!args.is_empty());
                for s in &args {
                    assert!(s.range().end <= buf.len());
                }
                evs.push(Ev::Req(
                    args.iter().map(|s| buf[s.range()].to_vec()).collect(),
                ));
                start = end;
            }
            Parsed::Skip { end } => {
                assert!(end > start && end <= buf.len());
                evs.push(Ev::Skip);
                start = end;
            }
            Parsed::Incomplete { need } => {
                assert!(need == 0 || need > buf.len());
                return Ok(start);
            }
        }
    }
}

fn all_at_once(data: &[u8], lim: &Limits, auth: bool) -> (Vec<Ev>, Stop) {
    let mut buf = data.to_vec();
    let mut evs = Vec::new();
    let mut p = RequestParser::new();
    match drain(&mut p, &mut buf, 0, lim, auth, &mut evs) {
        Ok(_) => (evs, Stop::Incomplete),
        Err(e) => (evs, Stop::Error(e)),
    }
}

fn chunked(data: &[u8], lim: &Limits, auth: bool, mut seed: u32) -> (Vec<Ev>, Stop) {
    let mut buf = Vec::new();
    let mut evs = Vec::new();
    let mut p = RequestParser::new();
    let mut start = 0;
    let mut fed = 0;
    while fed < data.len() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (1 + (seed >> 16) as usize % 17).min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        start = match drain(&mut p, &mut buf, start, lim, auth, &mut evs) {
            Ok(s) => s,
            Err(e) => return (evs, Stop::Error(e)),
        };
        if seed & 0x100 != 0 && start > 0 {
            buf.drain(..start);
            p.shift_back(start);
            start = 0;
        }
    }
    (evs, Stop::Incomplete)
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 5 {
        return;
    }
    let mode = input[0];
    let seed = u32::from_le_bytes([input[1], input[2], input[3], input[4]]);
    let data = &input[5..];
    let lim = if mode & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            inline_max: 1 + (mode as usize >> 2) % 64,
            proto_max_bulk_len: (mode as usize >> 3) * 4,
        }
    };
    let auth = mode & 2 == 0;

    let whole = all_at_once(data, &lim, auth);
    let split = chunked(data, &lim, auth, seed);
    assert_eq!(whole, split);

    if let Ok(Some((v, used))) = Value::decode(data) {
        assert!(used <= data.len());
        let again = v.to_bytes();
        let nan = format!("{v:?}").contains("NaN");
        match Value::decode(&again) {
            Ok(Some((w, n))) => {
                assert_eq!(n, again.len());
                if !nan {
                    assert_eq!(v, w);
                }
            }
            other => panic!("re-encoded value did not decode: {other:?}"),
        }
    }
});
