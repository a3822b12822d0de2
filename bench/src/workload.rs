//! What is sent: each test is a set of pre-encoded RESP commands
//! (templates) whose key digits are rewritten in place per request.

use crate::resp::encode_command;

/// Digits of a random field: `key:000000001234`, as redis-benchmark.
pub const DIGITS: usize = 12;

/// One pre-encoded command.
#[derive(Debug, Clone)]
pub struct Template {
    /// The encoded command with every random field set to zeros.
    pub bytes: Vec<u8>,
    /// Offsets of the random fields (DIGITS bytes each) in `bytes`.
    pub fields: Vec<usize>,
    /// The routing key (argument 1) as a range of `bytes`, if any.
    pub key: Option<(usize, usize)>,
}

impl Template {
    /// Builds a template from arguments that may hold `__rand_int__`,
    /// `__key__` (= `key:__rand_int__`) and `__data__` (= `data_size` bytes).
    pub fn new(args: &[&str], data_size: usize) -> Template {
        let data = vec![b'x'; data_size];
        let mut expanded: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
        for a in args {
            let a = a.replace("__key__", "key:__rand_int__");
            let mut bytes = Vec::new();
            let mut fields = Vec::new();
            let mut rest = a.as_str();
            loop {
                let r = rest.find("__rand_int__");
                let d = rest.find("__data__");
                let (at, is_rand) = match (r, d) {
                    (Some(r), Some(d)) if d < r => (d, false),
                    (Some(r), _) => (r, true),
                    (None, Some(d)) => (d, false),
                    (None, None) => break,
                };
                bytes.extend_from_slice(&rest.as_bytes()[..at]);
                if is_rand {
                    fields.push(bytes.len());
                    bytes.extend_from_slice(&[b'0'; DIGITS]);
                    rest = &rest[at + "__rand_int__".len()..];
                } else {
                    bytes.extend_from_slice(&data);
                    rest = &rest[at + "__data__".len()..];
                }
            }
            bytes.extend_from_slice(rest.as_bytes());
            expanded.push((bytes, fields));
        }
        let refs: Vec<&[u8]> = expanded.iter().map(|(b, _)| b.as_slice()).collect();
        let mut bytes = Vec::new();
        encode_command(&refs, &mut bytes);
        // Find each argument's start in the encoding to place the fields.
        let mut fields = Vec::new();
        let mut key = None;
        let mut pos = memchr::memchr(b'\n', &bytes).map_or(0, |p| p + 1);
        for (i, (arg, arg_fields)) in expanded.iter().enumerate() {
            let start = pos + memchr::memchr(b'\n', &bytes[pos..]).map_or(0, |p| p + 1);
            fields.extend(arg_fields.iter().map(|f| start + f));
            if i == 1 {
                key = Some((start, start + arg.len()));
            }
            pos = start + arg.len() + 2;
        }
        Template { bytes, fields, key }
    }

    /// Appends this command to `out` with random fields from `next_key`.
    /// In cluster mode every field of one command gets the same number so
    /// that multi-key commands stay within one slot.
    #[inline]
    pub fn append(
        &self,
        out: &mut Vec<u8>,
        first_key: u64,
        mut next_key: impl FnMut() -> u64,
        same_key: bool,
    ) -> usize {
        let base = out.len();
        out.extend_from_slice(&self.bytes);
        for (i, &f) in self.fields.iter().enumerate() {
            let k = if i == 0 || same_key {
                first_key
            } else {
                next_key()
            };
            write_digits(&mut out[base + f..base + f + DIGITS], k);
        }
        base
    }
}

/// Writes `v` as DIGITS zero-padded decimal digits, two at a time (one
/// division per pair: this runs for every key of every request).
#[inline]
pub fn write_digits(dst: &mut [u8], mut v: u64) {
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let mut i = dst.len();
    while i >= 2 {
        let p = (v % 100) as usize * 2;
        v /= 100;
        dst[i - 2..i].copy_from_slice(&PAIRS[p..p + 2]);
        i -= 2;
    }
    if i == 1 {
        dst[0] = b'0' + (v % 10) as u8;
    }
}

/// A test: one or more templates, picked in a fixed proportion.
#[derive(Debug, Clone)]
pub struct Test {
    /// The name printed in reports (SET, GET, SET:GET 1:10, the command).
    pub name: String,
    pub templates: Vec<Template>,
    /// Weights of the templates: request i uses the template whose slice of
    /// `i mod sum(weights)` holds it, so proportions are exact.
    pub weights: Vec<u32>,
    /// Commands sent once before the test (not measured, not counted).
    pub setup: Vec<Vec<u8>>,
}

impl Test {
    fn single(name: &str, args: &[&str], data_size: usize) -> Test {
        Test {
            name: name.to_string(),
            templates: vec![Template::new(args, data_size)],
            weights: vec![1],
            setup: vec![],
        }
    }

    /// Which template request number `i` uses.
    #[inline]
    pub fn pick(&self, i: u64) -> usize {
        if self.templates.len() == 1 {
            return 0;
        }
        let total: u64 = self.weights.iter().map(|&w| w as u64).sum();
        let mut r = i % total;
        for (t, &w) in self.weights.iter().enumerate() {
            if r < w as u64 {
                return t;
            }
            r -= w as u64;
        }
        0
    }
}

/// The built-in tests, in redis-benchmark's order.
pub const ALL_TESTS: &[&str] = &[
    "ping",
    "set",
    "get",
    "incr",
    "lpush",
    "rpush",
    "lpop",
    "rpop",
    "sadd",
    "hset",
    "spop",
    "zadd",
    "zpopmin",
    "lrange_100",
    "mset",
    "mget",
];

/// Builds a built-in test by name.
pub fn builtin(name: &str, data_size: usize) -> Result<Test, String> {
    let t = |args: &[&str]| Test::single(&name.to_uppercase(), args, data_size);
    Ok(match name {
        "ping" => t(&["PING"]),
        "set" => t(&["SET", "key:__rand_int__", "__data__"]),
        "get" => t(&["GET", "key:__rand_int__"]),
        "incr" => t(&["INCR", "counter:__rand_int__"]),
        "lpush" => t(&["LPUSH", "mylist", "__data__"]),
        "rpush" => t(&["RPUSH", "mylist", "__data__"]),
        "lpop" => t(&["LPOP", "mylist"]),
        "rpop" => t(&["RPOP", "mylist"]),
        "sadd" => t(&["SADD", "myset", "element:__rand_int__"]),
        "spop" => t(&["SPOP", "myset"]),
        "hset" => t(&["HSET", "myhash", "element:__rand_int__", "__data__"]),
        "zadd" => t(&["ZADD", "myzset", "__rand_int__", "element:__rand_int__"]),
        "zpopmin" => t(&["ZPOPMIN", "myzset"]),
        "mset" => {
            let mut args = vec!["MSET"];
            for _ in 0..10 {
                args.extend(["key:__rand_int__", "__data__"]);
            }
            Test::single("MSET (10 keys)", &args, data_size)
        }
        "mget" => {
            let mut args = vec!["MGET"];
            args.extend(["key:__rand_int__"; 10]);
            Test::single("MGET (10 keys)", &args, data_size)
        }
        _ => {
            let n: usize = name
                .strip_prefix("lrange_")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("unknown test {name:?} (known: {})", ALL_TESTS.join(",")))?;
            let last = (n - 1).to_string();
            let mut test = Test::single(
                &format!("LRANGE_{n} (first {n} elements)"),
                &["LRANGE", "mylist", "0", &last],
                data_size,
            );
            // Fill the list first, as redis-benchmark does, in one pipeline.
            let data = vec![b'x'; data_size];
            let mut fill = Vec::new();
            encode_command(&[b"DEL", b"mylist"], &mut fill);
            test.setup.push(fill);
            for _ in 0..n {
                let mut c = Vec::new();
                encode_command(&[b"RPUSH", b"mylist", &data], &mut c);
                test.setup.push(c);
            }
            test
        }
    })
}

/// A SET:GET mix on the same keys.
pub fn ratio(set: u32, get: u32, data_size: usize) -> Test {
    Test {
        name: format!("SET:GET {set}:{get}"),
        templates: vec![
            Template::new(&["SET", "key:__rand_int__", "__data__"], data_size),
            Template::new(&["GET", "key:__rand_int__"], data_size),
        ],
        weights: vec![set, get],
        setup: vec![],
    }
}

/// A user's command template (`tessera-bench -- SET __key__ __data__`).
pub fn custom(args: &[String], data_size: usize) -> Test {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Test::single(&args.join(" "), &refs, data_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_zero_padded_decimal() {
        for v in [
            0u64,
            7,
            42,
            99,
            100,
            12345,
            999_999_999_999,
            123_456_789_012,
        ] {
            for width in [1usize, 2, 5, 12] {
                let mut d = vec![b'x'; width];
                write_digits(&mut d, v);
                let want = format!("{v:0width$}");
                assert_eq!(d, &want.as_bytes()[want.len() - width..], "{v} in {width}");
            }
        }
    }

    #[test]
    fn templates_rewrite_only_digits() {
        let t = Template::new(&["SET", "__key__", "__data__"], 3);
        assert_eq!(
            t.bytes,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$3\r\nxxx\r\n"
        );
        let mut out = b"junk".to_vec();
        let mut n = 100;
        t.append(
            &mut out,
            42,
            || {
                n += 1;
                n
            },
            false,
        );
        assert_eq!(
            &out[4..],
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$3\r\nxxx\r\n"
        );
        let (a, b) = t.key.unwrap();
        assert_eq!(&out[4 + a..4 + b], b"key:000000000042");
    }

    #[test]
    fn multi_key_commands_get_distinct_or_shared_numbers() {
        let t = builtin("mget", 3).unwrap();
        let tpl = &t.templates[0];
        assert_eq!(tpl.fields.len(), 10);
        let mut out = Vec::new();
        let mut n = 0;
        tpl.append(
            &mut out,
            7,
            || {
                n += 1;
                n
            },
            false,
        );
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(s.contains("key:000000000007") && s.contains("key:000000000009"));
        out.clear();
        tpl.append(&mut out, 7, || 99, true);
        assert_eq!(
            String::from_utf8(out)
                .unwrap()
                .matches("key:000000000007")
                .count(),
            10
        );
    }

    #[test]
    fn ratios_are_exact_and_names_known() {
        let t = ratio(1, 3, 3);
        let picks: Vec<usize> = (0..8).map(|i| t.pick(i)).collect();
        assert_eq!(picks, [0, 1, 1, 1, 0, 1, 1, 1]);
        for name in ALL_TESTS {
            builtin(name, 3).unwrap();
        }
        assert!(builtin("nope", 3).is_err());
        assert_eq!(builtin("lrange_100", 3).unwrap().setup.len(), 101);
    }
}
