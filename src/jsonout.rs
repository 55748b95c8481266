//! Compact JSON writing for the bundle's bulk: the alert tree, entity contexts and lookup data.
//!
//! The bytes are exactly what `serde_json::to_writer` writes for the same value (compact, keys
//! in the map's order, the same escapes and number forms; a test checks it on every kind of
//! value and on every escapable character), only faster. serde_json inspects a string one byte
//! at a time through a table; most of a bundle is short strings with nothing to escape, so
//! here sixteen bytes are tested at once and clean runs are copied whole. Writing a bundle this
//! way takes about a fifth fewer instructions than serde did (41.7k → 32.4k a bundle;
//! benches/OPTIMISATIONS.md): what remains is mostly the per-string copy and the walk over
//! the maps.

use serde_json::Value as Json;

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
const LO: u64 = 0x0101_0101_0101_0101;
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes in `w` needs an escape: a control character (below 0x20),
/// `"` or `\`. Exact for the word as a whole (it may not say which byte). What
/// [`either_needs_escape`] tests where there is no SSE2.
#[inline]
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn needs_escape(w: u64) -> bool {
    let below_space = w.wrapping_sub(LO * 0x20) & !w;
    let quote = (w ^ (LO * b'"' as u64)).wrapping_sub(LO) & !(w ^ (LO * b'"' as u64));
    let backslash = (w ^ (LO * b'\\' as u64)).wrapping_sub(LO) & !(w ^ (LO * b'\\' as u64));
    (below_space | quote | backslash) & HI != 0
}

/// `needs_escape(a) || needs_escape(b)`, the two words tested at once as one vector (SSE2,
/// which every x86-64 CPU has), whose constants stay out of the general registers. Tested as
/// words, they held enough registers that [`write_str`] saved and restored six of them on
/// every call (about 16 instructions, 180 calls a bundle).
#[inline]
fn either_needs_escape(a: u64, b: u64) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86-64 baseline, so these instructions exist on every
        // CPU this code runs on; they only compute on values.
        unsafe {
            let v = _mm_set_epi64x(b as i64, a as i64);
            // A byte is at most 0x1F when its unsigned minimum with 0x1F is the byte itself.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(control, quote), backslash)) != 0
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        needs_escape(a) || needs_escape(b)
    }
}

/// The escape serde_json writes for `b`, if it writes one.
#[inline]
fn escape_of(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        0x08 => b"\\b",
        0x0C => b"\\f",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        0x00..=0x1F => return Some(&CONTROL[b as usize]),
        _ => return None,
    })
}

/// `\u00XX` (lower-case hex, as serde_json writes it) for every control character.
static CONTROL: [[u8; 6]; 32] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 6]; 32];
    let mut i = 0;
    while i < 32 {
        t[i] = [b'\\', b'u', b'0', b'0', HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// A JSON string literal for `s`, quotes included.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if b.len() > SHORT || !write_short(out, b) {
        write_long(out, b)
    }
}

/// [`write_str`] for a string [`write_short`] does not write: longer than [`SHORT`], or
/// needing an escape, or with the output's room to grow first.
#[inline(never)]
fn write_long(out: &mut Vec<u8>, b: &[u8]) {
    // A short string that gets here is written byte by byte (it may need no escape: then it
    // came for the room, and `write_escaped` copies it whole); a longer one is tested here.
    let plain = b.len() > SHORT && clean(b);
    out.reserve(b.len() + 2);
    out.push(b'"');
    if plain {
        out.extend_from_slice(b);
    } else {
        write_escaped(out, b);
    }
    out.push(b'"');
}

/// Strings up to this long take [`write_short`].
const SHORT: usize = 16;

/// Write a string of at most [`SHORT`] bytes that needs no escape, quotes included, and say
/// so; `false` (and nothing written) when a byte needs an escape or the output has no room
/// for `SHORT + 2` more bytes without growing ([`write_long`] grows it). Out of line and
/// calling nothing, it saves and restores one register, where the whole of `write_str` in
/// one function saved six on every call.
///
/// Most strings of a bundle are this short (keys, names, addresses, codes), and for them the
/// general path's length-dependent copies (a `memcpy` call each) cost more than the bytes.
/// Here the string is read in words (overlapping when its length is not a multiple of the
/// word, so that no byte outside it is read), tested sixteen bytes at once, and written with
/// fixed-size copies. (Taking strings of up to 32 bytes this way cost more than it saved:
/// benches/OPTIMISATIONS.md.)
///
/// The words are stored straight into the output's spare capacity. Assembling the literal on
/// the stack first and copying it out, as this did before, read sixteen bytes back just after
/// writing them in pieces, and a load that several smaller stores have to feed waits for all
/// of them to reach the cache (no store forwarding): a third of this function's time in
/// `perf`.
#[inline(never)]
fn write_short(out: &mut Vec<u8>, b: &[u8]) -> bool {
    let n = b.len();
    debug_assert!(n <= SHORT);
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
    if out.capacity() - out.len() < SHORT + 2 {
        return false;
    }
    let len = out.len();
    let at = out.as_mut_ptr().wrapping_add(len);
    // SAFETY (each `unsafe` below): the test above found at least `SHORT + 2` bytes of
    // capacity past `len`, and every write lands in `len .. len + n + 2` (`n <= SHORT`),
    // unaligned where it is a word; `set_len` at the end covers exactly those bytes, all of
    // them written.
    if n >= 8 {
        let (head, tail) = (word(0), word(n - 8));
        if either_needs_escape(head, tail) {
            return false;
        }
        unsafe {
            at.add(1).cast::<u64>().write_unaligned(head.to_le());
            at.add(n - 7).cast::<u64>().write_unaligned(tail.to_le());
        }
    } else if n > 0 {
        // One to seven bytes in one word (`word::short_word`: two overlapping halves, or the
        // first, middle and last byte); the fill is a byte that never needs an escape.
        let w = crate::word::short_word(b, b'a');
        if either_needs_escape(w, w) {
            return false;
        }
        unsafe {
            if n >= 4 {
                at.add(1).cast::<u32>().write_unaligned((w as u32).to_le());
                at.add(n - 3)
                    .cast::<u32>()
                    .write_unaligned(((w >> 32) as u32).to_le());
            } else {
                at.add(1).write(w as u8);
                at.add(1 + n / 2).write((w >> 8) as u8);
                at.add(n).write((w >> 16) as u8);
            }
        }
    }
    unsafe {
        at.write(b'"');
        at.add(n + 1).write(b'"');
        out.set_len(len + n + 2);
    }
    true
}

/// Whether no byte of `b` (longer than [`SHORT`]: shorter strings take [`write_short`]) needs
/// an escape, sixteen at a time.
#[inline]
fn clean(b: &[u8]) -> bool {
    let n = b.len();
    debug_assert!(n > SHORT);
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
    let mut i = 0;
    while i + 16 <= n {
        if either_needs_escape(word(i), word(i + 8)) {
            return false;
        }
        i += 16;
    }
    // The last (overlapping) sixteen bytes cover the tail.
    i == n || !either_needs_escape(word(n - 16), word(n - 8))
}

fn write_escaped(out: &mut Vec<u8>, b: &[u8]) {
    let mut start = 0; // first byte not yet copied
    for (i, &c) in b.iter().enumerate() {
        if let Some(esc) = escape_of(c) {
            out.extend_from_slice(&b[start..i]);
            out.extend_from_slice(esc);
            start = i + 1;
        }
    }
    out.extend_from_slice(&b[start..]);
}

/// A number as serde_json writes it: integers in decimal, floats in their shortest
/// round-trip form (`1.0`, `1e21`).
fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else {
        serde_json::to_writer(&mut *out, n).expect("writing to a Vec");
    }
}

/// A value's compact text: what `serde_json::to_string` gives, written by [`write_value`]
/// rather than through serde (a context of reference data or geo answer is written this way
/// once, when it is made).
pub fn to_text(v: &Json) -> String {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v);
    String::from_utf8(out).expect("the writer writes UTF-8")
}

/// A value in compact form.
///
/// Inlined where it is called, containers out of line: most members of an alert are
/// scalars, and as one recursive function every member's value paid for saving and restoring
/// six registers.
#[inline]
pub fn write_value(out: &mut Vec<u8>, v: &Json) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Number(n) => write_number(out, n),
        Json::String(s) => write_str(out, s),
        Json::Array(_) | Json::Object(_) => write_container(out, v),
    }
}

#[inline(never)]
fn write_container(out: &mut Vec<u8>, v: &Json) {
    match v {
        Json::Array(items) => write_array(out, items, write_value),
        Json::Object(map) => {
            let mut o = ObjectWriter::new(out);
            for (k, item) in map {
                o.value(k, item);
            }
            o.end();
        }
        _ => write_value(out, v),
    }
}

/// Writes the members of one JSON object in order: `"key":value` pairs separated by commas.
pub struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> ObjectWriter<'o> {
    /// Open an object (`{`).
    pub fn new(out: &'o mut Vec<u8>) -> ObjectWriter<'o> {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub fn str(&mut self, key: &str, s: &str) -> &mut Self {
        let out = self.key(key);
        write_str(out, s);
        self
    }

    /// A string member when there is a string; nothing otherwise.
    pub fn str_opt(&mut self, key: &str, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(key, s),
            None => self,
        }
    }

    /// An integer of any width or sign, in decimal.
    pub fn int(&mut self, key: &str, n: impl itoa::Integer) -> &mut Self {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self
    }

    pub fn value(&mut self, key: &str, v: &Json) -> &mut Self {
        let out = self.key(key);
        write_value(out, v);
        self
    }

    /// A member written by serde (the small, typed parts of a bundle).
    pub fn serde<T: serde::Serialize + ?Sized>(&mut self, key: &str, v: &T) -> &mut Self {
        let out = self.key(key);
        serde_json::to_writer(&mut *out, v).expect("bundle parts serialise: string keys only");
        self
    }

    /// A member whose value is JSON text already, in this writer's form (compact, keys
    /// sorted: what `serde_json` writes for a `Value`), copied as it is.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        let out = self.key(key);
        out.extend_from_slice(json.as_bytes());
        self
    }

    /// Members written already (`"a":1,"b":2`, no braces), as the next members of this object.
    pub fn members(&mut self, json: &str) -> &mut Self {
        if json.is_empty() {
            return self;
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(json.as_bytes());
        self
    }

    /// A member whose value the closure writes.
    pub fn with(&mut self, key: &str, f: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        let out = self.key(key);
        f(out);
        self
    }

    /// Close the object (`}`).
    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON array of `items`, each written by `f`.
pub fn write_array<T>(out: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        f(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_character_escapes_as_serde_json_escapes_it() {
        // Each code point below 0x800 alone, then inside runs that span the eight-byte words.
        for c in (0u32..0x800).filter_map(char::from_u32) {
            let alone = Json::String(c.to_string());
            assert_eq!(
                to_text(&alone),
                serde_json::to_string(&alone).unwrap(),
                "{c:?}"
            );
            for pad in 0..10 {
                let s = format!("{}{c}{}x\u{e9}", "a".repeat(pad), "b".repeat(9 - pad));
                let v = Json::String(s);
                assert_eq!(to_text(&v), serde_json::to_string(&v).unwrap());
            }
        }
        let v = Json::String("\u{2028}\u{1F600}\u{7f}\"\\\u{0}".repeat(5));
        assert_eq!(to_text(&v), serde_json::to_string(&v).unwrap());
    }

    #[test]
    fn strings_of_every_length_around_the_short_path_write_as_serde_json_writes_them() {
        // Every length up to past SHORT, with each escapable (or multi-byte) character at
        // each position, and the existing output in front so that appending is checked too.
        for len in 0..=3 * SHORT + 2 {
            for pos in 0..len.max(1) {
                for c in ['a', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', '\u{e9}'] {
                    let mut text: String =
                        (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
                    if len > 0 {
                        text.replace_range(pos..pos + 1, &c.to_string());
                    }
                    let want = format!("[1,{}", serde_json::to_string(&text).unwrap());
                    // With room to write into, and without (the short path leaves that to
                    // the general one, which grows the vector).
                    for room in [0, 2 * SHORT] {
                        let mut out = Vec::with_capacity(3 + room);
                        out.extend_from_slice(b"[1,");
                        write_str(&mut out, &text);
                        assert_eq!(String::from_utf8(out).unwrap(), want, "{text:?}, {room}");
                    }
                }
            }
        }
    }

    #[test]
    fn values_write_as_serde_json_writes_them() {
        let v = json!({
            "z": [1, -2, 18446744073709551615u64, -9223372036854775808i64, 1.5, 1e21, 0.1, -0.0,
                  1.0, 5e-324, true, false, null, [], {}],
            "a": {"nested": {"k\"ey": "v\nal\tue", "": ""}},
            "m": "plain ascii text that is longer than one word",
        });
        assert_eq!(to_text(&v), serde_json::to_string(&v).unwrap());
    }

    /// Every byte value at every place of the sixteen tested at once, alone and beside
    /// another.
    #[test]
    fn the_vector_test_agrees_with_a_byte_by_byte_reading() {
        let needs = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        let words = |bytes: [u8; 16]| {
            let (a, b) = bytes.split_at(8);
            (
                u64::from_le_bytes(a.try_into().unwrap()),
                u64::from_le_bytes(b.try_into().unwrap()),
            )
        };
        for x in 0..=255u8 {
            for pos in 0..16 {
                for y in [b'a', 0x7F, 0x80, 0xFF, b'"'] {
                    let mut bytes = [b'a'; 16];
                    bytes[(pos + 5) % 16] = y;
                    bytes[pos] = x;
                    let (a, b) = words(bytes);
                    let expect = bytes.iter().any(|&c| needs(c));
                    assert_eq!(either_needs_escape(a, b), expect, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn the_word_test_agrees_with_a_byte_by_byte_reading() {
        let interesting = [
            0u8, 0x1F, 0x20, 0x21, b'"', b'\\', 0x5B, 0x7F, 0x80, 0xA2, 0xDC, 0xFF,
        ];
        for &x in &interesting {
            for &y in &interesting {
                for pos in 0..8 {
                    let mut bytes = [b'a'; 8];
                    bytes[pos] = x;
                    bytes[(pos + 3) % 8] = y;
                    let expect = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
                    assert_eq!(needs_escape(u64::from_le_bytes(bytes)), expect, "{bytes:?}");
                }
            }
        }
    }
}
