//! Reading short byte strings as one machine word.
//!
//! The bundle writer and the sanitiser test every string of every alert eight bytes at a
//! time. A string shorter than a word is read here, in registers: copying it into a padded
//! buffer on the stack is a `memcpy` call of unknown length, and reading the buffer back as
//! one word waits for the bytes' stores to reach the cache (no store forwarding).

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

#[cfg(test)]
mod tests {
    use super::*;

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
