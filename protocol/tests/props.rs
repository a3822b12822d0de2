//! Property tests for the request parser and the RESP value codec.

use proptest::prelude::*;
use tessera_protocol::parse::{Limits, Parsed, ProtocolError, RequestParser};
use tessera_protocol::{encode_request, ArgSpan, Value};

/// What a parser produced from a stream.
#[derive(Debug, PartialEq)]
enum Ev {
    Req(Vec<Vec<u8>>),
    Skip,
}

/// How a stream ended: waiting for more bytes, or an error.
#[derive(Debug, PartialEq)]
enum Stop {
    Incomplete,
    Error(ProtocolError),
}

fn check_step(r: &Parsed, start: usize, len: usize) {
    match *r {
        Parsed::Request { end } | Parsed::Skip { end } => {
            assert!(end > start, "no progress: start {start} end {end}");
            assert!(end <= len, "end {end} past the buffer ({len})");
        }
        Parsed::Incomplete { need } => {
            assert!(need == 0 || need > len, "need {need} with {len} bytes");
        }
    }
}

fn spans_ok(args: &[ArgSpan], len: usize) {
    for s in args {
        assert!(s.range().end <= len, "span {s:?} past the buffer ({len})");
    }
}

/// Parses `input` given all at once.
fn all_at_once(input: &[u8], lim: &Limits, auth: bool) -> (Vec<Ev>, Stop) {
    let mut buf = input.to_vec();
    let mut p = RequestParser::new();
    let mut args = Vec::new();
    let mut evs = Vec::new();
    let mut start = 0;
    loop {
        let r = match p.parse(&mut buf, start, lim, auth, &mut args) {
            Ok(r) => r,
            Err(e) => return (evs, Stop::Error(e)),
        };
        check_step(&r, start, buf.len());
        match r {
            Parsed::Request { end } => {
                spans_ok(&args, buf.len());
                assert!(!args.is_empty());
                evs.push(Ev::Req(
                    args.iter().map(|s| buf[s.range()].to_vec()).collect(),
                ));
                start = end;
            }
            Parsed::Skip { end } => {
                evs.push(Ev::Skip);
                start = end;
            }
            Parsed::Incomplete { .. } => return (evs, Stop::Incomplete),
        }
    }
}

/// Parses `input` arriving in chunks of the given sizes (cycled), the way
/// a connection does: append, parse what is there, sometimes drop the
/// consumed front of the buffer (then `shift_back`).
fn chunked(
    input: &[u8],
    sizes: &[usize],
    compact: &[bool],
    lim: &Limits,
    auth: bool,
) -> (Vec<Ev>, Stop) {
    let mut buf = Vec::new();
    let mut p = RequestParser::new();
    let mut args = Vec::new();
    let mut evs = Vec::new();
    let mut start = 0;
    let mut fed = 0;
    let mut i = 0;
    while fed < input.len() {
        let n = sizes[i % sizes.len()].max(1).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        loop {
            let r = match p.parse(&mut buf, start, lim, auth, &mut args) {
                Ok(r) => r,
                Err(e) => return (evs, Stop::Error(e)),
            };
            check_step(&r, start, buf.len());
            match r {
                Parsed::Request { end } => {
                    spans_ok(&args, buf.len());
                    evs.push(Ev::Req(
                        args.iter().map(|s| buf[s.range()].to_vec()).collect(),
                    ));
                    start = end;
                }
                Parsed::Skip { end } => {
                    evs.push(Ev::Skip);
                    start = end;
                }
                Parsed::Incomplete { .. } => break,
            }
        }
        if compact[i % compact.len()] && start > 0 {
            buf.drain(..start);
            p.shift_back(start);
            start = 0;
        }
        i += 1;
    }
    (evs, Stop::Incomplete)
}

fn arg_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(prop::sample::select(b"ab \"'\\\r\n$*x0".to_vec()), 0..12),
    ]
}

/// One inline argument and how to write it so `sdssplitargs` gives it back.
fn inline_arg() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    prop_oneof![
        // Plain: no whitespace, no quotes.
        proptest::collection::vec(prop::sample::select(b"abcXYZ019:-_{}$*\\".to_vec()), 1..10)
            .prop_filter("not starting with *", |v| v[0] != b'*')
            .prop_map(|v| (v.clone(), v)),
        // Double-quoted with escapes for anything.
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(|v| {
            let mut w = b"\"".to_vec();
            for &c in &v {
                match c {
                    b'"' => w.extend_from_slice(b"\\\""),
                    b'\\' => w.extend_from_slice(b"\\\\"),
                    b'\n' => w.extend_from_slice(b"\\n"),
                    b'\r' => w.extend_from_slice(b"\\r"),
                    0x20..=0x7e => w.push(c),
                    _ => w.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
                }
            }
            w.push(b'"');
            (v, w)
        }),
        // Single-quoted (only \' is an escape there, so a value may not end
        // in a backslash: it would escape the closing quote).
        proptest::collection::vec(prop::sample::select(b"ab '\"\\\t".to_vec()), 0..10).prop_map(
            |mut v| {
                while v.last() == Some(&b'\\') {
                    v.pop();
                }
                let mut w = b"'".to_vec();
                for &c in &v {
                    if c == b'\'' {
                        w.extend_from_slice(b"\\'");
                    } else {
                        w.push(c);
                    }
                }
                w.push(b'\'');
                (v, w)
            }
        ),
    ]
}

/// A request in some form, and what it should parse to.
fn request() -> impl Strategy<Value = (Vec<u8>, Option<Vec<Vec<u8>>>)> {
    prop_oneof![
        4 => proptest::collection::vec(arg_bytes(), 1..6).prop_map(|args| {
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            let mut out = Vec::new();
            encode_request(&refs, &mut out);
            (out, Some(args))
        }),
        3 => (proptest::collection::vec(inline_arg(), 1..5), prop::bool::ANY, prop::sample::select(vec![" ", "  ", "\t", " \t "]))
            .prop_map(|(parts, crlf, sep)| {
                let mut line = Vec::new();
                let mut args = Vec::new();
                for (i, (arg, written)) in parts.into_iter().enumerate() {
                    if i > 0 {
                        line.extend_from_slice(sep.as_bytes());
                    }
                    line.extend_from_slice(&written);
                    args.push(arg);
                }
                line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                (line, Some(args))
            }),
        1 => prop::sample::select(vec![&b"\r\n"[..], b"\n", b"  \t\r\n", b"*0\r\n", b"*-1\r\n"])
            .prop_map(|s| (s.to_vec(), None)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let line = || {
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|v| {
            v.into_iter()
                .filter(|&c| c != b'\r' && c != b'\n')
                .collect::<Vec<u8>>()
        })
    };
    let leaf = prop_oneof![
        line().prop_map(Value::Simple),
        line().prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        proptest::collection::vec(any::<u8>(), 0..30).prop_map(Value::Bulk),
        Just(Value::NullBulk),
        Just(Value::NullArray),
        Just(Value::Null),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |d| !d.is_nan())
            .prop_map(Value::Double),
        any::<bool>().prop_map(Value::Boolean),
        (
            prop::array::uniform3(b'a'..=b'z'),
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(format, text)| Value::Verbatim { format, text }),
        "-?[1-9][0-9]{0,40}".prop_map(|s| Value::BigNumber(s.into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::BulkError),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Push),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            (
                proptest::collection::vec((inner.clone(), inner.clone()), 0..3),
                inner
            )
                .prop_map(|(attrs, v)| Value::Attribute {
                    attrs,
                    value: Box::new(v)
                }),
        ]
    })
}

/// Bytes that look a lot like RESP, to reach deep parser states.
fn resp_ish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    &b"*"[..],
                    b"$",
                    b"\r\n",
                    b"\r",
                    b"\n",
                    b"1",
                    b"2",
                    b"3",
                    b"0",
                    b"-1",
                    b"-",
                    b"\"",
                    b"'",
                    b"\\",
                    b"\\x4",
                    b" ",
                    b"PING",
                    b"%",
                    b"~",
                    b">",
                    b"|",
                    b"_",
                    b",",
                    b"#t",
                    b"(",
                    b"=",
                    b"!",
                    b":",
                    b"+",
                    b"99999",
                    b"65536",
                    b"\x00",
                ])
                .prop_map(|s| s.to_vec()),
                proptest::collection::vec(any::<u8>(), 1..3),
            ],
            0..80
        )
        .prop_map(|v| v.concat()),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::default()),
        (1usize..40, 0usize..40).prop_map(|(i, b)| Limits {
            inline_max: i,
            proto_max_bulk_len: b
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES can raise this for a longer run.
        cases: ProptestConfig::default().cases.max(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn value_round_trips(v in value()) {
        let mut out = Vec::new();
        v.encode(&mut out);
        let d = Value::decode(&out);
        prop_assert_eq!(d, Ok(Some((v.clone(), out.len()))));
        // Every strict prefix is incomplete, and trailing bytes are left.
        for cut in [0, out.len() / 2, out.len() - 1] {
            prop_assert_eq!(Value::decode(&out[..cut]), Ok(None));
        }
        out.extend_from_slice(b"+next\r\n");
        let used = Value::decode(&out).unwrap().unwrap().1;
        prop_assert_eq!(used, out.len() - 7);
    }

    #[test]
    fn decode_never_panics(b in resp_ish()) {
        if let Ok(Some((v, used))) = Value::decode(&b) {
            prop_assert!(used <= b.len());
            // What decodes re-encodes to something that decodes the same
            // (NaN aside).
            if !format!("{v:?}").contains("NaN") {
                let again = v.to_bytes();
                prop_assert_eq!(Value::decode(&again), Ok(Some((v, again.len()))));
            }
        }
    }

    #[test]
    fn encode_request_then_parse(args in proptest::collection::vec(arg_bytes(), 1..12), auth in any::<bool>()) {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let mut buf = b"junk".to_vec();
        encode_request(&refs, &mut buf);
        let mut spans = Vec::new();
        let r = RequestParser::new().parse(&mut buf, 4, &Limits::default(), auth, &mut spans);
        if !auth && args.len() > 10 {
            prop_assert_eq!(r, Err(ProtocolError::UnauthenticatedMultibulkLength));
        } else {
            prop_assert_eq!(r, Ok(Parsed::Request { end: buf.len() }));
            let got: Vec<Vec<u8>> = spans.iter().map(|s| buf[s.range()].to_vec()).collect();
            prop_assert_eq!(got, args);
        }
    }

    #[test]
    fn parser_never_panics_and_always_progresses(
        b in resp_ish(),
        lim in limits(),
        auth in any::<bool>(),
    ) {
        // Checks inside: end within the buffer and past start, spans in
        // bounds, need beyond what is there.
        all_at_once(&b, &lim, auth);
    }

    #[test]
    fn chunking_does_not_change_the_outcome_of_arbitrary_bytes(
        b in resp_ish(),
        lim in limits(),
        auth in any::<bool>(),
        sizes in proptest::collection::vec(1usize..9, 1..8),
        compact in proptest::collection::vec(any::<bool>(), 1..4),
    ) {
        prop_assert_eq!(chunked(&b, &sizes, &compact, &lim, auth), all_at_once(&b, &lim, auth));
    }

    #[test]
    fn pipelines_parse_the_same_in_any_chunks(
        reqs in proptest::collection::vec(request(), 1..12),
        sizes in proptest::collection::vec(1usize..64, 1..8),
        compact in proptest::collection::vec(any::<bool>(), 1..4),
    ) {
        let stream: Vec<u8> = reqs.iter().flat_map(|(b, _)| b.clone()).collect();
        let expected: Vec<Ev> = reqs
            .iter()
            .map(|(_, a)| match a {
                Some(args) => Ev::Req(args.clone()),
                None => Ev::Skip,
            })
            .collect();
        let lim = Limits::default();
        let whole = all_at_once(&stream, &lim, true);
        prop_assert_eq!(&whole, &(expected, Stop::Incomplete));
        prop_assert_eq!(chunked(&stream, &sizes, &compact, &lim, true), whole);
    }
}

#[test]
fn nan_round_trips_as_nan() {
    let out = Value::Double(f64::NAN).to_bytes();
    assert_eq!(out, b",nan\r\n");
    match Value::decode(&out) {
        Ok(Some((Value::Double(d), 6))) => assert!(d.is_nan()),
        other => panic!("{other:?}"),
    }
}
