//! A mapping's `regex`, with the common shapes cut out of the text by byte search instead of
//! the regex engine.
//!
//! Most mapping regexes take a path or a name apart: the part after the last `\`
//! (`([^\\]+)$`, 58 rules of the embedded mappings), the part before the first (`^([^\\]+)\\`),
//! the directory (`^(.*)\\[^\\]*$`), the text before a `=`, `?` or `%`. Finding a group costs
//! the regex engine a capture search, about 2,400 instructions a call on the generated corpus
//! (callgrind; benches/OPTIMISATIONS.md). For these shapes the answer is the text before or
//! after the first or last byte of a small set, which `memchr` finds.
//!
//! [`Cut::new`] recognises a shape from the regex as written, exactly and conservatively:
//! anything it does not recognise keeps the regex. A test runs every recognised shape and
//! the regex side by side over generated texts (with the bytes the shapes look for, line
//! breaks, and non-ASCII text) and requires the same result.
//!
//! What the regex keeps of a text is a function of the text, and the texts repeat (user
//! names, event names, resource names): over the 50,000 records of `--seed 1`, the regexes
//! left ran 63,461 times on 5,817 distinct texts. Each thread keeps what the regex kept of
//! the texts it cut last ([`crate::memo`]), as a span of the text.

use crate::memo::TextMemo;
use regex::Regex;
use std::cell::RefCell;

/// A mapping regex, and the byte search that gives what it keeps, where one does.
#[derive(Debug)]
pub struct Cut {
    re: Regex,
    shape: Option<Shape>,
    /// Which cut this is, for the spans a thread keeps ([`KEPT`]).
    id: u32,
}

thread_local! {
    /// What the regexes kept of the texts this thread cut last: the byte span of the first
    /// group (or of the whole match), or `None` when nothing is kept.
    static KEPT: RefCell<TextMemo<Option<(u8, u8)>>> = RefCell::default();
}

/// The shapes, over a set of ASCII bytes `S`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `([^S]+)$`: after the last byte of `S`.
    After(Vec<u8>),
    /// `^([^S]+)` and `^([^S]*)`: before the first byte of `S`.
    Before(Vec<u8>),
    /// `^([^S]+)x` with `x` in `S`: before the first byte of `S`, which must be `x`.
    BeforeByte(Vec<u8>, u8),
    /// `^(.*)x[^x]*$`: before the last `x`, in text without a line break (`.` does not match
    /// one; text with one goes to the regex).
    BeforeLast(u8),
    /// `x(.+)$`: after the first `x`, in text without a line break.
    AfterFirst(u8),
    /// `^[^x]+x(.+)$`: after the first `x` where it is not the first byte, in text without a
    /// line break.
    AfterFirstInside(u8),
}

impl Cut {
    pub fn new(re: Regex) -> Cut {
        let shape = Shape::parse(re.as_str());
        Cut {
            re,
            shape,
            id: crate::memo::new_owner(),
        }
    }

    /// The regex as written.
    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }

    /// What the regex keeps of `s`: its first group, or the whole match without groups;
    /// `None` when it does not match or keeps nothing.
    pub fn capture<'t>(&self, s: &'t str) -> Option<&'t str> {
        match self.shape.as_ref().and_then(|shape| shape.cut(s)) {
            Some(kept) => kept.filter(|k| !k.is_empty()),
            None => self.by_regex(s),
        }
    }

    fn by_regex<'t>(&self, s: &'t str) -> Option<&'t str> {
        if let Some(span) = KEPT.with_borrow(|kept| kept.get(self.id, s).copied()) {
            return span.map(|(from, to)| &s[usize::from(from)..usize::from(to)]);
        }
        let found = self.search(s);
        KEPT.with_borrow_mut(|kept| {
            // Made only for a text that is kept: a span of its at most MAX_TEXT (< 256) bytes.
            kept.put(self.id, s, || {
                found.map(|f| {
                    let from = f.as_ptr() as usize - s.as_ptr() as usize;
                    (from as u8, (from + f.len()) as u8)
                })
            })
        });
        found
    }

    fn search<'t>(&self, s: &'t str) -> Option<&'t str> {
        let caps = self.re.captures(s)?;
        let m = caps.get(1).or_else(|| caps.get(0))?;
        (!m.as_str().is_empty()).then_some(m.as_str())
    }
}

impl Shape {
    /// The shape of `src`, if it is one of them exactly.
    fn parse(src: &str) -> Option<Shape> {
        if let Some(class) = src.strip_prefix("([^").and_then(|r| r.strip_suffix("]+)$")) {
            return Some(Shape::After(class_bytes(class)?));
        }
        if let Some(rest) = src.strip_prefix("^([^") {
            let (class, tail) = rest.split_once(']')?;
            let set = class_bytes(class)?;
            return match tail {
                "+)" | "*)" => Some(Shape::Before(set)),
                _ => {
                    let byte = tail.strip_prefix("+)").and_then(single_byte)?;
                    set.contains(&byte).then_some(Shape::BeforeByte(set, byte))
                }
            };
        }
        if let Some(lit) = src.strip_suffix("(.+)$") {
            if let Some(class_lit) = lit.strip_prefix("^[^") {
                // `^[^x]+x(.+)$`
                let (class, lit) = class_lit.split_once("]+")?;
                let byte = single_byte(lit)?;
                return (class_bytes(class)? == [byte]).then_some(Shape::AfterFirstInside(byte));
            }
            return single_byte(lit).map(Shape::AfterFirst);
        }
        if let Some(rest) = src.strip_prefix("^(.*)") {
            // `x[^x]*$`, `x` written the same way both times.
            let (lit, class) = rest.strip_suffix("]*$")?.split_once("[^")?;
            let byte = single_byte(lit)?;
            return (class_bytes(class)? == [byte]).then_some(Shape::BeforeLast(byte));
        }
        None
    }

    /// What the shape keeps of `s` (`Some(None)`: no match), or `None` when `s` is one the
    /// shape leaves to the regex.
    fn cut<'t>(&self, s: &'t str) -> Option<Option<&'t str>> {
        let b = s.as_bytes();
        // The bytes searched for are ASCII, so every cut is at a character boundary.
        Some(match self {
            Shape::After(set) => {
                let start = rfind_any(b, set).map_or(0, |i| i + 1);
                (start < b.len()).then(|| &s[start..])
            }
            Shape::Before(set) => Some(&s[..find_any(b, set).unwrap_or(b.len())]),
            Shape::BeforeByte(set, byte) => {
                find_any(b, set).and_then(|i| (b[i] == *byte && i > 0).then(|| &s[..i]))
            }
            Shape::BeforeLast(byte) => {
                if memchr::memchr(b'\n', b).is_some() {
                    return None;
                }
                memchr::memrchr(*byte, b).map(|i| &s[..i])
            }
            Shape::AfterFirst(byte) | Shape::AfterFirstInside(byte) => {
                if memchr::memchr(b'\n', b).is_some() {
                    return None;
                }
                let inside = matches!(self, Shape::AfterFirstInside(_));
                memchr::memchr(*byte, b)
                    .filter(|&i| i + 1 < b.len() && (i > 0 || !inside))
                    .map(|i| &s[i + 1..])
            }
        })
    }
}

/// The bytes of a class body such as `\\/` or `=`: ASCII characters, `\` escapes of
/// punctuation. `None` for anything else (ranges, classes, non-ASCII, specials).
fn class_bytes(class: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chars = class.bytes();
    while let Some(c) = chars.next() {
        let byte = match c {
            b'\\' => {
                let e = chars.next()?;
                e.is_ascii_punctuation().then_some(e)?
            }
            b'^' | b'-' | b'[' | b']' | b'&' | b'~' => return None,
            c if c.is_ascii_graphic() || c == b' ' => c,
            _ => return None,
        };
        out.push(byte);
    }
    (!out.is_empty()).then_some(out)
}

/// A regex for one literal byte: an ASCII letter, digit or unspecial punctuation, or a `\`
/// escape of punctuation.
fn single_byte(lit: &str) -> Option<u8> {
    match lit.as_bytes() {
        [b'\\', e] if e.is_ascii_punctuation() => Some(*e),
        [c] if c.is_ascii_alphanumeric() || b"=:;,@/%#!\"'<> _".contains(c) => Some(*c),
        _ => None,
    }
}

fn find_any(b: &[u8], set: &[u8]) -> Option<usize> {
    match *set {
        [x] => memchr::memchr(x, b),
        [x, y] => memchr::memchr2(x, y, b),
        [x, y, z] => memchr::memchr3(x, y, z, b),
        _ => b.iter().position(|c| set.contains(c)),
    }
}

fn rfind_any(b: &[u8], set: &[u8]) -> Option<usize> {
    match *set {
        [x] => memchr::memrchr(x, b),
        [x, y] => memchr::memrchr2(x, y, b),
        [x, y, z] => memchr::memrchr3(x, y, z, b),
        _ => b.iter().rposition(|c| set.contains(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(src: &str) -> Cut {
        Cut::new(Regex::new(src).unwrap())
    }

    #[test]
    fn the_common_shapes_are_recognised_and_the_rest_are_not() {
        let shape = |src: &str| cut(src).shape;
        assert_eq!(shape(r"([^\\]+)$"), Some(Shape::After(vec![b'\\'])));
        assert_eq!(shape(r"([^\\/]+)$"), Some(Shape::After(vec![b'\\', b'/'])));
        assert_eq!(shape(r"^([^%]+)"), Some(Shape::Before(vec![b'%'])));
        assert_eq!(shape(r"^([^?]*)"), Some(Shape::Before(vec![b'?'])));
        assert_eq!(
            shape(r"^([^\\]+)\\"),
            Some(Shape::BeforeByte(vec![b'\\'], b'\\'))
        );
        assert_eq!(
            shape(r"^([^=]+)="),
            Some(Shape::BeforeByte(vec![b'='], b'='))
        );
        assert_eq!(shape(r"^(.*)\\[^\\]*$"), Some(Shape::BeforeLast(b'\\')));
        assert_eq!(shape(r"=(.+)$"), Some(Shape::AfterFirst(b'=')));
        assert_eq!(shape(r"^[^.]+\.(.+)$"), Some(Shape::AfterFirstInside(b'.')));
        for other in [
            r".(.+)$",
            r"^[^.]+:(.+)$",
            r"^[^.]*\.(.+)$",
            r"^([^\\]+)\\|[^@\\]+$",
            r"^([^a-z]+)",
            r"^([^\d]+)",
            r"([^\\]+)",
            r"^([^=]+)=x",
            r"^([^=]+):",
            r"^(.*)[\\/][^\\/]+$",
            r"^(.*)\\[^/]*$",
            r"(?i)^([^x]+)",
            r"^([^\\]+)$",
        ] {
            assert_eq!(shape(other), None, "{other}");
        }
    }

    #[test]
    fn every_shape_keeps_what_the_regex_keeps() {
        let sources = [
            r"([^\\]+)$",
            r"([^\\/]+)$",
            r"([^/:]+)$",
            r"^([^%]+)",
            r"^([^?]*)",
            r"^([^:]+)",
            r"^([^\\]+)\\",
            r"^([^=]+)=",
            r"^([^.]+)\.",
            r"^(.*)\\[^\\]*$",
            r"^(.*)/[^/]*$",
            r"=(.+)$",
            r"\?(.+)$",
            r"^[^.]+\.(.+)$",
            r"^[^=]+=(.+)$",
        ];
        let pieces = [
            "a", "bc", "\\", "/", ":", "%", "?", "=", ".", "\n", "é", "日本", " ", "C:", "x\\y",
        ];
        let mut state = 0x1234_5678_9abc_def0u64;
        for src in sources {
            let c = cut(src);
            assert!(c.shape.is_some(), "{src}");
            for _ in 0..4_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mut text = String::new();
                for k in 0..(state % 7) {
                    text.push_str(pieces[(state >> (8 * k + 3)) as usize % pieces.len()]);
                }
                assert_eq!(c.capture(&text), c.search(&text), "{src} on {text:?}");
            }
        }
    }

    #[test]
    fn a_kept_cut_is_what_the_regex_keeps() {
        // Regexes the shapes leave to the engine, over texts that match with a group, match
        // without one, do not match, repeat, and are too long to keep.
        let long = format!("CORP\\{}", "a".repeat(crate::memo::MAX_TEXT));
        let texts = [
            "CORP\\jdoe",
            "jdoe@corp.example",
            "SYSTEM",
            "host$",
            "",
            "CORP\\jdoe",
            "日本\\名前",
            long.as_str(),
            "SYSTEM",
        ];
        for src in [
            r"^([^\\]+)\\|[^@\\]+$",
            r"(\$)$|^(?i:SYSTEM|LOCAL SERVICE)$",
            r"^\s*(.*\S)",
        ] {
            let c = cut(src);
            assert!(c.shape.is_none(), "{src}");
            for round in 0..2 {
                for text in texts {
                    assert_eq!(
                        c.capture(text),
                        c.search(text),
                        "{src} on {text:?}, round {round}"
                    );
                }
            }
            let kept = |t: &str| KEPT.with_borrow(|k| k.get(c.id, t).is_some());
            assert!(
                kept("CORP\\jdoe") && kept("SYSTEM") && !kept(&long),
                "{src}"
            );
        }
        // Each cut's spans are its own: the same text, cut by two regexes.
        let (domain, name) = (cut(r"^([^\\]+)\\|[^@\\]+$"), cut(r"([a-z]+)$"));
        assert_eq!(domain.capture("CORP\\jdoe"), Some("CORP"));
        assert_eq!(name.capture("CORP\\jdoe"), Some("jdoe"));
        assert_eq!(domain.capture("CORP\\jdoe"), Some("CORP"));
    }
}
