use crate::*;

#[test]
fn set_options_like_redis() {
    let mut h = H::new();
    assert_eq!(h.cmd("SET k v EX 10 EX 20"), OK);
    assert_eq!(h.cmd("PTTL k"), int(20_000));
    assert_eq!(h.cmd("SET k v EX 10 PX 5"), SYNTAX);
    assert_eq!(h.cmd("SET k v EX abc"), NOT_INT);
    assert_eq!(
        h.cmd("SET k v EX 0"),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        h.cmd("SET k v EX 9223372036854775"),
        err("ERR invalid expire time in 'set' command")
    );
    assert_eq!(h.cmd("SET k v KEEPTTL EX 1"), SYNTAX);
    assert_eq!(h.cmd("SET k v NX XX"), SYNTAX);
    assert_eq!(h.cmd("SET k v NX NX"), NULL);
    assert_eq!(h.cmd("SET k w XX GET"), bulk("v"));
    assert_eq!(h.cmd("SET k x KEEPTTL KEEPTTL"), OK);
    assert_eq!(h.cmd("SET k v EX"), SYNTAX);
    assert_eq!(h.cmd("SET n v XX GET"), NULL);
    assert_eq!(h.cmd("EXISTS n"), int(0));
    assert_eq!(h.cmd("SET k v PXAT 1"), OK);
    assert_eq!(h.cmd("EXISTS k"), int(0));
}

#[test]
fn setnx_setex_psetex() {
    let mut h = H::new();
    assert_eq!(h.cmd("SETNX k v"), int(1));
    assert_eq!(h.cmd("SETNX k w"), int(0));
    assert_eq!(h.cmd("GET k"), bulk("v"));
    assert_eq!(h.cmd("SETEX k 10 w"), OK);
    assert_eq!(h.cmd("TTL k"), int(10));
    assert_eq!(h.cmd("GET k"), bulk("w"));
    assert_eq!(h.cmd("PSETEX k 1500 x"), OK);
    assert_eq!(h.cmd("PTTL k"), int(1500));
    assert_eq!(h.cmd("TTL k"), int(2)); // 1.5 s rounds up
    assert_eq!(h.cmd("SETEX k abc v"), NOT_INT);
    assert_eq!(
        h.cmd("SETEX k -1 v"),
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(
        h.cmd("PSETEX k 0 v"),
        err("ERR invalid expire time in 'psetex' command")
    );
    h.now += 1500;
    assert_eq!(h.cmd("GET k"), NULL);
}

#[test]
fn getset_getdel() {
    let mut h = H::new();
    assert_eq!(h.cmd("GETSET k a"), NULL);
    assert_eq!(h.cmd("SETEX k 100 b"), OK);
    assert_eq!(h.cmd("GETSET k c"), bulk("b"));
    assert_eq!(h.cmd("TTL k"), int(-1)); // GETSET drops the TTL
    assert_eq!(h.cmd("GETDEL k"), bulk("c"));
    assert_eq!(h.cmd("GETDEL k"), NULL);
    assert_eq!(h.cmd("EXISTS k"), int(0));
}

#[test]
fn getex_options() {
    let mut h = H::new();
    assert_eq!(h.cmd("GETEX nokey EX abc"), NULL);
    assert_eq!(h.cmd("SET k v"), OK);
    assert_eq!(h.cmd("GETEX k"), bulk("v"));
    assert_eq!(h.cmd("GETEX k EX abc"), NOT_INT);
    assert_eq!(
        h.cmd("GETEX k EX 0"),
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(h.cmd("GETEX k EX 10 EX 20"), bulk("v"));
    assert_eq!(h.cmd("TTL k"), int(20));
    assert_eq!(h.cmd("GETEX k PX 500"), bulk("v"));
    assert_eq!(h.cmd("PTTL k"), int(500));
    assert_eq!(h.cmd("GETEX k PERSIST"), bulk("v"));
    assert_eq!(h.cmd("TTL k"), int(-1));
    assert_eq!(h.cmd("GETEX k PERSIST EX 10"), SYNTAX);
    assert_eq!(h.cmd("GETEX k EX 10 PERSIST"), SYNTAX);
    assert_eq!(h.cmd("GETEX k KEEPTTL"), SYNTAX);
    assert_eq!(h.cmd("GETEX k NX"), SYNTAX);
    assert_eq!(h.cmd("GETEX k EX"), SYNTAX);
    let at = (T0 / 1000 + 100).to_string();
    assert_eq!(h.run(&["GETEX", "k", "EXAT", &at]), bulk("v"));
    assert_eq!(h.cmd("TTL k"), int(100));
    let at = (T0 + 100).to_string();
    assert_eq!(h.run(&["GETEX", "k", "pxat", &at]), bulk("v"));
    assert_eq!(h.cmd("PEXPIRETIME k"), int(T0 + 100));
    // An absolute time in the past deletes the key after replying.
    assert_eq!(h.cmd("GETEX k EXAT 1"), bulk("v"));
    assert_eq!(h.cmd("EXISTS k"), int(0));
}

#[test]
fn msetnx_all_or_nothing() {
    let mut h = H::new();
    assert_eq!(h.cmd("MSETNX a 1 b 2"), int(1));
    assert_eq!(h.cmd("MSETNX c 3 a 9"), int(0));
    assert_eq!(h.cmd("EXISTS c"), int(0));
    assert_eq!(h.cmd("GET a"), bulk("1"));
    assert_eq!(
        h.cmd("MSETNX x 1 y"),
        err("ERR wrong number of arguments for 'msetnx' command")
    );
    assert_eq!(h.cmd("MSETNX d 1 d 2"), int(1));
    assert_eq!(h.cmd("GET d"), bulk("2"));
}

#[test]
fn mset_mget_incr_family() {
    let mut h = H::new();
    assert_eq!(h.cmd("MSET a 1 b x"), OK);
    assert_eq!(
        h.cmd("MGET a nokey b"),
        "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\nx\r\n"
    );
    assert_eq!(h.cmd("INCR a"), int(2));
    assert_eq!(h.cmd("DECRBY a 5"), int(-3));
    assert_eq!(h.cmd("INCR b"), NOT_INT);
    assert_eq!(h.cmd("INCRBY a x"), NOT_INT);
    assert_eq!(h.cmd("SET m 9223372036854775807"), OK);
    assert_eq!(
        h.cmd("INCR m"),
        err("ERR increment or decrement would overflow")
    );
    assert_eq!(
        h.cmd("DECRBY a -9223372036854775808"),
        err("ERR decrement would overflow")
    );
    assert_eq!(h.cmd("SETEX t 100 5"), OK);
    assert_eq!(h.cmd("INCR t"), int(6));
    assert_eq!(h.cmd("TTL t"), int(100)); // INCR keeps the TTL
    assert_eq!(
        h.cmd("MSET a 1 b"),
        err("ERR wrong number of arguments for 'mset' command")
    );
}

#[test]
fn incrbyfloat_matches_long_double() {
    let mut h = H::new();
    assert_eq!(h.cmd("SET k 10.5"), OK);
    assert_eq!(h.cmd("INCRBYFLOAT k 0.1"), bulk("10.6"));
    assert_eq!(h.cmd("GET k"), bulk("10.6"));
    assert_eq!(
        h.cmd("INCRBYFLOAT k -5.0e3"),
        bulk("-4989.39999999999999991")
    );
    assert_eq!(h.cmd("INCRBYFLOAT n 3"), bulk("3"));
    assert_eq!(h.cmd("INCRBYFLOAT n 0x10"), bulk("19"));
    assert_eq!(h.cmd("INCRBYFLOAT n .5"), bulk("19.5"));
    assert_eq!(h.cmd("INCRBYFLOAT n -19.5"), bulk("0"));
    assert_eq!(
        h.cmd("INCRBYFLOAT z 0.000003814697265625"),
        bulk("0.00000381469726562")
    );
    assert_eq!(
        h.cmd("INCRBYFLOAT n abc"),
        err("ERR value is not a valid float")
    );
    assert_eq!(
        h.cmd("INCRBYFLOAT n nan"),
        err("ERR value is not a valid float")
    );
    assert_eq!(
        h.run(&["INCRBYFLOAT", "n", " 1"]),
        err("ERR value is not a valid float")
    );
    assert_eq!(
        h.cmd("INCRBYFLOAT n 1e-5000"),
        err("ERR value is not a valid float")
    );
    assert_eq!(
        h.cmd("INCRBYFLOAT n inf"),
        err("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(h.cmd("SET s hello"), OK);
    assert_eq!(
        h.cmd("INCRBYFLOAT s 1"),
        err("ERR value is not a valid float")
    );
    assert_eq!(h.cmd("SETEX t 100 1.5"), OK);
    assert_eq!(h.cmd("INCRBYFLOAT t 1"), bulk("2.5"));
    assert_eq!(h.cmd("TTL t"), int(100));
}

#[test]
fn append_and_strlen() {
    let mut h = H::new();
    assert_eq!(h.cmd("APPEND k 123"), int(3));
    assert_eq!(h.cmd("OBJECT ENCODING k"), bulk("int"));
    assert_eq!(h.cmd("APPEND k 45"), int(5));
    assert_eq!(h.cmd("GET k"), bulk("12345"));
    assert_eq!(h.cmd("OBJECT ENCODING k"), bulk("raw"));
    assert_eq!(h.cmd("STRLEN k"), int(5));
    assert_eq!(h.cmd("STRLEN nokey"), int(0));
    assert_eq!(h.cmd("SET e 7"), OK);
    assert_eq!(h.run(&["APPEND", "e", ""]), int(1));
    assert_eq!(h.cmd("OBJECT ENCODING e"), bulk("raw"));
    let long = "x".repeat(100);
    for i in 1..=50 {
        assert_eq!(h.run(&["APPEND", "big", &long]), int(100 * i));
    }
    assert_eq!(h.cmd("STRLEN big"), int(5000));
    assert_eq!(h.cmd("SETEX t 100 a"), OK);
    assert_eq!(h.cmd("APPEND t b"), int(2));
    assert_eq!(h.cmd("TTL t"), int(100));
}

#[test]
fn string_size_limit() {
    let mut h = H::with_config(tessera_shard::command::ShardConfig {
        proto_max_bulk_len: 10,
        ..Default::default()
    });
    let too_long = err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    assert_eq!(h.cmd("APPEND k 12345"), int(5));
    assert_eq!(h.cmd("APPEND k 12345"), int(10));
    assert_eq!(h.cmd("APPEND k 1"), too_long);
    assert_eq!(h.cmd("SETRANGE k 10 x"), too_long);
    assert_eq!(h.cmd("SETRANGE k 9 x"), int(10));
    assert_eq!(h.cmd("SETRANGE n 8 xyz"), too_long);
    assert_eq!(h.cmd("SETRANGE n 9223372036854775807 x"), too_long);
    assert_eq!(h.cmd("EXISTS n"), int(0));
    assert_eq!(
        h.cmd("LCS k k"),
        err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    );
}

#[test]
fn getrange_indexes() {
    let mut h = H::new();
    assert_eq!(h.cmd("GETRANGE nokey 0 -1"), EMPTY);
    assert_eq!(h.cmd("SET s hello"), OK);
    for (a, b, want) in [
        ("0", "-1", "hello"),
        ("-1", "-5", ""),
        ("-5", "-1", "hello"),
        ("3", "100", "lo"),
        ("-100", "-100", "h"),
        ("5", "5", ""),
        ("4", "4", "o"),
        ("2", "1", ""),
        ("-3", "-2", "ll"),
        ("-9223372036854775808", "9223372036854775807", "hello"),
        ("0", "0", "h"),
        ("1", "-100", ""),
    ] {
        assert_eq!(h.run(&["GETRANGE", "s", a, b]), bulk(want), "{a} {b}");
        assert_eq!(h.run(&["SUBSTR", "s", a, b]), bulk(want), "{a} {b}");
    }
    assert_eq!(h.cmd("GETRANGE s 0 x"), NOT_INT);
    assert_eq!(h.cmd("GETRANGE nokey x 0"), NOT_INT);
    assert_eq!(h.cmd("SET i 12345"), OK);
    assert_eq!(h.cmd("GETRANGE i 1 2"), bulk("23"));
    assert_eq!(h.run(&["SET", "e", ""]), OK);
    assert_eq!(h.cmd("GETRANGE e 0 -1"), EMPTY);
}

#[test]
fn setrange_pads_with_zeros() {
    let mut h = H::new();
    assert_eq!(h.run(&["SETRANGE", "k", "3", ""]), int(0));
    assert_eq!(h.cmd("EXISTS k"), int(0));
    assert_eq!(h.cmd("SETRANGE k 3 ab"), int(5));
    assert_eq!(h.cmd("GET k"), "$5\r\n\0\0\0ab\r\n");
    assert_eq!(h.cmd("OBJECT ENCODING k"), bulk("raw"));
    assert_eq!(h.cmd("SETRANGE k 0 xyzw"), int(5));
    assert_eq!(h.cmd("GET k"), bulk("xyzwb"));
    assert_eq!(h.cmd("SETRANGE k 7 Q"), int(8));
    assert_eq!(h.cmd("GET k"), "$8\r\nxyzwb\0\0Q\r\n");
    assert_eq!(h.run(&["SETRANGE", "k", "100", ""]), int(8));
    assert_eq!(h.cmd("SETRANGE k -1 x"), err("ERR offset is out of range"));
    assert_eq!(h.cmd("SETRANGE k x x"), NOT_INT);
    assert_eq!(h.cmd("SET i 12345"), OK);
    assert_eq!(h.cmd("SETRANGE i 1 00"), int(5));
    assert_eq!(h.cmd("GET i"), bulk("10045"));
    assert_eq!(h.cmd("OBJECT ENCODING i"), bulk("raw"));
    assert_eq!(h.cmd("SETEX t 100 abc"), OK);
    assert_eq!(h.cmd("SETRANGE t 1 X"), int(3));
    assert_eq!(h.cmd("TTL t"), int(100));
}

#[test]
fn lcs_forms() {
    let mut h = H::new();
    assert_eq!(h.cmd("MSET a ohmytext b mynewtext"), OK);
    assert_eq!(h.cmd("LCS a b"), bulk("mytext"));
    assert_eq!(h.cmd("LCS a b LEN"), int(6));
    assert_eq!(
        h.cmd("LCS a b IDX"),
        "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(
        h.cmd("LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN"),
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
    );
    h.proto = tessera_protocol::Proto::Resp3;
    assert!(h.cmd("LCS a b IDX").starts_with("%2\r\n$7\r\nmatches\r\n"));
    h.proto = tessera_protocol::Proto::Resp2;
    assert_eq!(h.cmd("LCS a nokey"), EMPTY);
    assert_eq!(h.cmd("LCS a nokey LEN"), int(0));
    assert_eq!(h.cmd("LCS a b MINMATCHLEN -5 LEN"), int(6));
    assert_eq!(
        h.cmd("LCS a b LEN IDX"),
        err("ERR If you want both the length and indexes, please just use IDX.")
    );
    assert_eq!(h.cmd("LCS a b MINMATCHLEN"), SYNTAX);
    assert_eq!(h.cmd("LCS a b MINMATCHLEN x"), NOT_INT);
    assert_eq!(h.cmd("LCS a b foo"), SYNTAX);
}
