//! Tests of the Lua libraries against redis-server's recorded behaviour
//! (truth.json, written by scripts/lualibs_truth.py), round trips, and
//! hostile input.

use super::install;
use mlua::Lua;

/// A VM like a script's: standard libraries plus ours.
fn vm() -> Lua {
    let lua = Lua::new();
    install(&lua).expect("install");
    lua
}

/// Runs `src` as the chunk "user_script" (Redis's chunk name, which error
/// positions show) and returns its string result.
fn run(lua: &Lua, src: &str) -> String {
    match lua
        .load(src)
        .set_name("@user_script")
        .eval::<mlua::LuaString>()
    {
        Ok(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        Err(e) => format!("<harness error: {e}>"),
    }
}

#[test]
fn matches_redis_recorded_behaviour() {
    let truth: serde_json::Value =
        serde_json::from_str(include_str!("truth.json")).expect("truth.json parses");
    let prelude = truth["prelude"].as_str().expect("prelude");
    let cases = truth["cases"].as_array().expect("cases");
    assert!(cases.len() > 1000, "the recorded table is complete");
    let lua = vm();
    let mut failures = Vec::new();
    for case in cases {
        let code = case[0].as_str().unwrap();
        let expected = case[1].as_str().unwrap();
        let got = run(&lua, &prelude.replace("%CODE%", code));
        if got != expected {
            failures.push(format!("case: {code}\n  redis: {expected}\n  ours:  {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Lua helpers for the property tests: a seeded generator of values and a
/// deep equality.
const GEN: &str = r#"
local seed = ...
math.randomseed(seed)
local function rstring()
  local n = math.random(0, 40)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end
local function rnumber()
  local k = math.random(1, 6)
  if k == 1 then return math.random(-200, 200)
  elseif k == 2 then return math.floor((math.random() - 0.5) * 2 ^ 53)
  elseif k == 3 then return (math.random() - 0.5) * 10 ^ math.random(-30, 30)
  elseif k == 4 then return math.floor(math.random() * 2 ^ 32)
  elseif k == 5 then return -math.floor(math.random() * 2 ^ 32) * 2 ^ math.random(0, 31)
  else return math.random() end
end
local gen
gen = function(depth)
  local k = math.random(1, depth > 4 and 4 or 7)
  if k == 1 then return rstring()
  elseif k == 2 then return rnumber()
  elseif k == 3 then return math.random(0, 1) == 1
  elseif k == 4 then return rstring()
  elseif k == 5 then
    local t = {}
    for i = 1, math.random(0, 20) do t[i] = gen(depth + 1) end
    return t
  else
    local t = {}
    for i = 1, math.random(0, 8) do t[rstring()] = gen(depth + 1) end
    return t
  end
end
local function equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= 'table' then return a == b end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
return gen, equal
"#;

#[test]
fn cmsgpack_round_trips_exactly() {
    let lua = vm();
    for seed in 1..=300 {
        let (gen, equal): (mlua::Function, mlua::Function) =
            lua.load(GEN).call(seed).expect("generator loads");
        let check: mlua::Function = lua
            .load(
                r#"local gen, equal = ...
                local vals = {}
                for i = 1, 5 do vals[i] = gen(0) end
                local s = cmsgpack.pack(unpack(vals))
                local back = {cmsgpack.unpack(s)}
                if #back ~= 5 then return 'count ' .. #back end
                for i = 1, 5 do
                  if not equal(vals[i], back[i]) then return 'value ' .. i end
                end
                -- unpack_one walks the same values one at a time
                local off, n = 0, 0
                repeat
                  local r = {cmsgpack.unpack_one(s, off)}
                  off = r[1]
                  n = n + 1
                  if not equal(r[2], vals[n]) then return 'one ' .. n end
                until off == -1
                return n == 5 and 'ok' or 'walked ' .. n"#,
            )
            .into_function()
            .unwrap();
        let r: mlua::LuaString = check.call((gen, equal)).expect("check runs");
        assert_eq!(String::from_utf8_lossy(&r.as_bytes()), "ok", "seed {seed}");
    }
}

#[test]
fn cjson_round_trips() {
    let lua = vm();
    for seed in 1..=300 {
        let (gen, equal): (mlua::Function, mlua::Function) = lua.load(GEN).call(seed).unwrap();
        let check: mlua::Function = lua
            .load(
                r#"local gen, equal = ...
                local v = gen(0)
                local s = cjson.encode(v)
                -- %.14g loses digits, and key order follows the table: once
                -- decoded, a value must survive encode+decode exactly
                local d1 = cjson.decode(s)
                local d2 = cjson.decode(cjson.encode(d1))
                if not equal(d1, d2) then return 'unstable: ' .. s end
                -- strings survive exactly (any bytes)
                if type(v) == 'string' and cjson.decode(s) ~= v then return 'string' end
                -- integers below 10^14 survive exactly
                local n = math.floor((math.random() - 0.5) * 2e14)
                if cjson.decode(cjson.encode(n)) ~= n then return 'int ' .. n end
                local t = {a = {1, 2, {b = 'x'}}, c = true}
                if not equal(cjson.decode(cjson.encode(t)), t) then return 'table' end
                return 'ok'"#,
            )
            .into_function()
            .unwrap();
        let r: mlua::LuaString = check.call((gen, equal)).expect("check runs");
        assert_eq!(String::from_utf8_lossy(&r.as_bytes()), "ok", "seed {seed}");
    }
}

/// Random and mutated input to every decoder and to struct's format
/// language: Lua errors are fine, a panic or a crash is not.
#[test]
fn hostile_input_gives_lua_errors() {
    let lua = vm();
    let fuzz: mlua::Function = lua
        .load(
            r#"local seed = ...
            math.randomseed(seed)
            local function bytes(n, alphabet)
              local t = {}
              for i = 1, n do
                if alphabet then
                  local k = math.random(1, #alphabet)
                  t[i] = alphabet:sub(k, k)
                else
                  t[i] = string.char(math.random(0, 255))
                end
              end
              return table.concat(t)
            end
            local function mutate(s)
              local n = #s
              if n == 0 then return s end
              for _ = 1, math.random(1, 3) do
                local i = math.random(1, n)
                s = s:sub(1, i - 1) .. string.char(math.random(0, 255)) .. s:sub(i + 1)
              end
              if math.random(1, 4) == 1 then s = s:sub(1, math.random(0, n)) end
              return s
            end
            local good_json = '{"a":[1,2.5,-3e4,"x\\u00e9\\ud83d\\ude00",true,false,null,{"b":[]}],"c":{}}'
            local good_mp = cmsgpack.pack({1, -1, 2^40, 0.5, 'str', {a = {true, false}}}, 'x', 1e300)
            local ok_count = 0
            for _ = 1, 200 do
              local inputs = {
                bytes(math.random(0, 64)),
                bytes(math.random(0, 64), '[]{}:,"\\u0123456789abcdefntrl.eE+- \t'),
                mutate(good_json),
                mutate(good_mp),
              }
              for _, s in ipairs(inputs) do
                if pcall(cjson.decode, s) then ok_count = ok_count + 1 end
                if pcall(cmsgpack.unpack, s) then ok_count = ok_count + 1 end
                pcall(cmsgpack.unpack_one, s, math.random(-2, 10))
                pcall(cmsgpack.unpack_limit, s, math.random(-1, 5), math.random(-2, 10))
              end
              local fmt = bytes(math.random(0, 12), '<>!=xbBhHlLTiIfdcs0123456789 ')
              pcall(struct.size, fmt)
              pcall(struct.unpack, fmt, bytes(math.random(0, 40)), math.random(-3, 10))
              pcall(struct.pack, fmt, math.random(-1000, 1000), 'abc', 1.5, 'de', 7, -3, 'xyz')
              pcall(bit.tohex, (math.random() - 0.5) * 2 ^ 41, math.random(-20, 20))
            end
            return ok_count"#,
        )
        .into_function()
        .unwrap();
    let mut decoded = 0i64;
    for seed in 1..=50 {
        decoded += fuzz.call::<i64>(seed).expect("fuzz round runs");
    }
    assert!(decoded > 0, "some mutated inputs still decode");
}

/// Nesting up to the Lua stack's limit runs on a 256 KiB thread stack: the
/// encoders and decoders keep their nesting on the heap, so only Lua's own
/// limits (the same as Redis's) stop them.
#[test]
fn deep_nesting_fits_a_small_thread_stack() {
    let h = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let lua = vm();
            run(
                &lua,
                r#"cjson.encode_max_depth(100000) cjson.decode_max_depth(100000)
                local out = {}
                local t = {} local c = t
                for i = 1, 9000 do c[1] = {} c = c[1] end
                out[#out + 1] = select(2, pcall(cjson.encode, t))
                t = {} c = t
                for i = 1, 9000 do c.k = {} c = c.k end
                out[#out + 1] = select(2, pcall(cjson.encode, t))
                out[#out + 1] = select(2, pcall(cjson.decode, string.rep('[', 9000)))
                out[#out + 1] = select(2, pcall(cjson.decode, string.rep('{"a":', 9000)))
                out[#out + 1] = select(2, pcall(cmsgpack.unpack, string.rep('\145', 10000) .. '\192'))
                out[#out + 1] = select(2, pcall(cmsgpack.unpack, string.rep('\129\1', 10000) .. '\192'))
                return table.concat(out, '\n')"#,
            )
        })
        .unwrap();
    let got = h.join().expect("no stack overflow");
    assert_eq!(
        got,
        "Cannot serialise, excessive nesting (7998)\n\
         Cannot serialise, excessive nesting (4000)\n\
         Found too many nested data structures (7999) at character 7999\n\
         Found too many nested data structures (4000) at character 19996\n\
         stack overflow (in function mp_decode_to_lua_array)\n\
         stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
    );
}

#[test]
fn errors_are_plain_strings() {
    // pcall sees the message itself (a string), as under Redis.
    let lua = vm();
    let got = run(
        &lua,
        r#"local ok, e = pcall(cjson.decode, '{')
        local ok2, e2 = pcall(function() return bit.tobit('x') end)
        return type(e) .. ' ' .. e .. ' / ' .. type(e2) .. ' ' .. e2"#,
    );
    assert_eq!(
        got,
        "string Expected object key string but found T_END at character 2 / \
         string user_script:2: bad argument #1 to 'tobit' (number expected, got string)"
    );
}

/// Under a VM memory bound, calls that run out of memory mid-way fail with
/// Lua's memory error and leave the libraries working (their buffers live in
/// the VM's scratch userdata, reclaimed by the next call).
#[test]
fn memory_errors_leave_the_libraries_working() {
    let lua = vm();
    let setup = r#"
        big = {}
        for i = 1, 20000 do big[i] = string.rep('x', 50) .. i end
        packed = cmsgpack.pack(big)
        json = cjson.encode(big)"#;
    lua.load(setup).exec().unwrap();
    let used = lua.used_memory();
    // Room for the inputs, not for another copy of the output.
    lua.set_memory_limit(used + (512 << 10)).unwrap();
    let attempt = r#"
        local errs = {}
        for _ = 1, 20 do
          for _, f in ipairs({
            function() return cjson.encode(big) end,
            function() return cjson.decode(json) end,
            function() return cmsgpack.pack(big, big) end,
            function() return cmsgpack.unpack(packed) end,
          }) do
            local ok, e = pcall(f)
            -- Lua 5.1 has no emergency collection: free the failed
            -- attempt's garbage before allocating here.
            f = nil
            collectgarbage()
            if not ok then errs[#errs + 1] = e end
          end
        end
        return errs"#;
    let errs: Vec<String> = lua.load(attempt).eval().unwrap();
    assert!(!errs.is_empty(), "the bound is hit");
    assert!(
        errs.iter().all(|e| e.contains("not enough memory")),
        "{errs:?}"
    );
    lua.set_memory_limit(0).unwrap();
    let ok: bool = lua
        .load(
            r#"local t = cjson.decode(cjson.encode({a = {1, 2}, b = 'c'}))
            local u = {cmsgpack.unpack(cmsgpack.pack({1, 'x'}, 2))}
            return t.a[2] == 2 and t.b == 'c' and u[1][2] == 'x' and u[2] == 2
              and struct.unpack('>i', struct.pack('>i', 7)) == 7"#,
        )
        .eval()
        .unwrap();
    assert!(ok);
}

/// The libraries need nothing from Lua's standard libraries, and install()
/// may run on any VM the engine builds.
#[test]
fn works_on_a_bare_vm() {
    let lua = Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default()).unwrap();
    install(&lua).unwrap();
    let (json, packed, bits, st): (String, mlua::LuaString, i64, i64) = lua
        .load(
            r#"return cjson.encode(cjson.decode('[1,{"a":null}]')),
                cmsgpack.pack({1, 2}), bit.band(12, 10), struct.size('>i2 b')"#,
        )
        .eval()
        .unwrap();
    assert_eq!(json, r#"[1,{"a":null}]"#);
    assert_eq!(&packed.as_bytes()[..], b"\x92\x01\x02");
    assert_eq!((bits, st), (8, 3));
}
