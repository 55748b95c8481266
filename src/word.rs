//! Reading byte strings a word or a vector at a time.
//!
//! The bundle writer and the sanitiser test every string of every alert eight bytes at a
//! time. A string shorter than a word is read here, in registers: copying it into a padded
//! buffer on the stack is a `memcpy` call of unknown length, and reading the buffer back as
//! one word waits for the bytes' stores to reach the cache (no store forwarding). [`ByteSet`]
//! tells whether a string holds any byte of a small set, sixteen bytes at a time.

/// The bytes of `b` (one to seven of them) in one little-endian word, each at least once.
///
/// Four to seven bytes are two overlapping four-byte halves: the first four in the low half,
/// the last four in the high half. One to three are the first, middle and last byte in the
/// three low bytes, the rest of the word `fill`. A test on every byte of the word is a test on
/// every byte of `b` (some are tested twice) plus `fill`.
#[inline]
pub fn short_word(b: &[u8], fill: u8) -> u64 {
    let n = b.len();
    debug_assert!((1..8).contains(&n), "short_word takes one to seven bytes");
    if n >= 4 {
        let head = u32::from_le_bytes(b[..4].try_into().expect("four bytes"));
        let tail = u32::from_le_bytes(b[n - 4..].try_into().expect("four bytes"));
        u64::from(head) | u64::from(tail) << 32
    } else {
        u64::from_le_bytes([b[0], b[n / 2], b[n - 1], fill, fill, fill, fill, fill])
    }
}

/// A set of ASCII bytes that a byte string is searched for sixteen bytes at a time.
///
/// The sanitiser asks of nearly every string of an alert whether it holds a separator or a
/// markup character (`sanitize::WORDY`), and most strings (addresses, hashes, ids, names) do
/// not, so the whole string is read. Byte by byte through a table, that was about 2.3k
/// instructions a record (callgrind, the generated corpus). Here a byte is in the set when `low[b & 15] & high[b >> 4]` is not
/// zero: `high` gives each of the eight ASCII high nibbles a bit of its own, and `low` holds,
/// for each low nibble, the bits of the high nibbles it makes a member with. With SSSE3 (every
/// x86-64 CPU since 2006; checked at run time) both tables are looked up for sixteen bytes
/// at once by `pshufb`; a string shorter than that is read as one or two words.
pub struct ByteSet {
    low: [u8; 16],
    high: [u8; 16],
}

impl ByteSet {
    /// The set of `bytes`, all of them ASCII.
    pub const fn new(bytes: &[u8]) -> ByteSet {
        let mut set = ByteSet {
            low: [0; 16],
            high: [0; 16],
        };
        let mut h = 0;
        while h < 8 {
            set.high[h] = 1 << h;
            h += 1;
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(b < 0x80, "a ByteSet holds ASCII bytes only");
            set.low[(b & 15) as usize] |= 1 << (b >> 4);
            i += 1;
        }
        set
    }

    /// Whether `b` is in the set.
    #[inline]
    pub fn contains(&self, b: u8) -> bool {
        self.low[(b & 15) as usize] & self.high[(b >> 4) as usize] != 0
    }

    /// Whether `s` holds a byte of the set.
    #[inline]
    pub fn any_in(&self, s: &[u8]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU has SSSE3, checked just above.
            return unsafe { self.any_in_ssse3(s) };
        }
        s.iter().any(|&b| self.contains(b))
    }

    /// [`any_in`](ByteSet::any_in) with SSSE3; the caller checks that the CPU has it.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "ssse3")]
    unsafe fn any_in_ssse3(&self, s: &[u8]) -> bool {
        use std::arch::x86_64::_mm_loadu_si128 as load;
        use std::arch::x86_64::{__m128i, _mm_set_epi64x};
        // SAFETY: each table is sixteen bytes.
        let (low, high) = unsafe {
            (
                load(self.low.as_ptr().cast()),
                load(self.high.as_ptr().cast()),
            )
        };
        let n = s.len();
        if n < 16 {
            // Most strings asked about are this short (addresses, ports, names): read in
            // words, as `short_word` reads them, with a filler byte that no set holds.
            let (a, b) = match n {
                0 => return false,
                1..=7 => (short_word(s, 0x80), 0x8080_8080_8080_8080),
                _ => (
                    u64::from_le_bytes(s[..8].try_into().expect("eight bytes")),
                    u64::from_le_bytes(s[n - 8..].try_into().expect("eight bytes")),
                ),
            };
            return holds(low, high, _mm_set_epi64x(b as i64, a as i64));
        }
        let at = |i: usize| -> __m128i {
            assert!(i + 16 <= s.len());
            // SAFETY: sixteen bytes from `i`, inside `s` (asserted); `loadu` reads unaligned.
            unsafe { load(s.as_ptr().add(i).cast()) }
        };
        let mut i = 0;
        while i + 16 <= s.len() {
            if holds(low, high, at(i)) {
                return true;
            }
            i += 16;
        }
        // The last sixteen bytes, overlapping those read already.
        i < s.len() && holds(low, high, at(s.len() - 16))
    }
}

/// Whether a byte of `v` is in the set of the tables `low` and `high` ([`ByteSet`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
#[inline]
fn holds(
    low: std::arch::x86_64::__m128i,
    high: std::arch::x86_64::__m128i,
    v: std::arch::x86_64::__m128i,
) -> bool {
    use std::arch::x86_64::*;
    let nibble = _mm_set1_epi8(15);
    let lo = _mm_and_si128(v, nibble);
    // Bytes of 0x80 and above get a high nibble of 8 to 15, whose bits are zero.
    let hi = _mm_and_si128(_mm_srli_epi16(v, 4), nibble);
    let bits = _mm_and_si128(_mm_shuffle_epi8(low, lo), _mm_shuffle_epi8(high, hi));
    _mm_movemask_epi8(_mm_cmpeq_epi8(bits, _mm_setzero_si128())) != 0xFFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_set_finds_exactly_its_bytes_wherever_they_are() {
        const MEMBERS: &[u8] = b" \t\n\r-_+%<[{\"'`!#]";
        static SET: ByteSet = ByteSet::new(MEMBERS);
        for b in 0..=255u8 {
            assert_eq!(SET.contains(b), MEMBERS.contains(&b), "byte {b:#04x}");
        }
        // Every byte at every place of strings of every length around the SIMD width, in a
        // string of bytes outside the set (ASCII letters and bytes above 0x7F alike).
        for len in 1..=49 {
            for filler in [b'a', 0xC3] {
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut s = vec![filler; len];
                        s[at] = b;
                        assert_eq!(
                            SET.any_in(&s),
                            MEMBERS.contains(&b),
                            "byte {b:#04x} at {at} of {len}"
                        );
                    }
                }
                assert!(!SET.any_in(&vec![filler; len]));
            }
        }
        assert!(!SET.any_in(b""));
    }

    #[test]
    fn every_byte_is_in_the_word_and_the_rest_is_fill() {
        let text = b"abcdefg";
        for n in 1..8 {
            let w = short_word(&text[..n], b'~').to_le_bytes();
            for b in &text[..n] {
                assert!(w.contains(b), "{n}: {:?} lacks {}", w, *b as char);
            }
            for b in w {
                assert!(b == b'~' || text[..n].contains(&b), "{n}: {:?}", w);
            }
            if n >= 4 {
                assert_eq!(&w[..4], &text[..4]);
                assert_eq!(&w[4..], &text[n - 4..n]);
            } else {
                assert_eq!(&w[..3], &[text[0], text[n / 2], text[n - 1]]);
                assert_eq!(&w[3..], &[b'~'; 5]);
            }
        }
    }
}
