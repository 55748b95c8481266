//! Answers kept by text, for work whose answer is a function of a short text alone.
//!
//! Feeds repeat their texts: a rule's name and description, a signature, a command line, a
//! user agent, a user name written `DOMAIN\user`. Work that reads such a text and nothing else
//! (the sanitiser's detection, a mapping's regex cut) can give its answer again when the text
//! comes back, instead of doing the work again. A [`TextMemo`] keeps the answers a thread
//! found last:
//!
//! - one answer a slot, the slot chosen by a hash of the owner and the text; a text that lands
//!   on a taken slot replaces what was there;
//! - the text is kept whole and compared whole, with its owner, before an answer is given, so
//!   a hash collision (which anyone who writes a log line could aim for: the hash is not keyed)
//!   costs the work, never a wrong answer;
//! - the slots are one allocation of fixed size, texts copied in: texts kept one by one on the
//!   heap would sit among the alerts' short-lived strings and keep their pages from being
//!   reused. Texts longer than [`MAX_TEXT`] bytes are not kept.
//!
//! An owner is whatever the answer also depends on (one detector, one compiled regex), named
//! by a number from [`new_owner`].

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

/// The longest text kept, in bytes (its length is kept in a byte). In the generated corpus,
/// texts of up to 127 bytes hold 98.5% of the bytes of the sanitiser's repeated texts and all
/// of the regex cuts' inputs.
pub const MAX_TEXT: usize = 127;
const _: () = assert!(MAX_TEXT <= u8::MAX as usize);

/// Slots of a memo: about 600 KiB with a 16-byte answer.
const SLOTS: usize = 4096;

/// A number for an owner of answers, different from every other one of this process.
pub fn new_owner() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Answers of type `V` kept by (owner, text); empty (no allocation) until the first answer.
pub struct TextMemo<V> {
    slots: Vec<Slot<V>>,
}

struct Slot<V> {
    /// 0 where nothing is kept (owners are numbered from 1).
    owner: u32,
    len: u8,
    text: [u8; MAX_TEXT],
    answer: V,
}

impl<V> Default for TextMemo<V> {
    fn default() -> Self {
        TextMemo { slots: Vec::new() }
    }
}

impl<V: Default> TextMemo<V> {
    fn slot(owner: u32, text: &str) -> usize {
        rustc_hash::FxBuildHasher.hash_one((owner, text)) as usize & (SLOTS - 1)
    }

    /// The answer kept for `text` of `owner`.
    #[inline]
    pub fn get(&self, owner: u32, text: &str) -> Option<&V> {
        if text.len() > MAX_TEXT {
            return None;
        }
        let slot = self.slots.get(Self::slot(owner, text))?;
        let same = slot.owner == owner
            && usize::from(slot.len) == text.len()
            && slot.text[..text.len()] == *text.as_bytes();
        same.then_some(&slot.answer)
    }

    /// Keep `answer()` for `text` of `owner`. A text longer than [`MAX_TEXT`] is not kept, and
    /// its answer is not made.
    pub fn put(&mut self, owner: u32, text: &str, answer: impl FnOnce() -> V) {
        if text.len() > MAX_TEXT {
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || Slot {
                owner: 0,
                len: 0,
                text: [0; MAX_TEXT],
                answer: V::default(),
            });
        }
        let slot = &mut self.slots[Self::slot(owner, text)];
        slot.owner = owner;
        slot.len = text.len() as u8;
        slot.text[..text.len()].copy_from_slice(text.as_bytes());
        slot.answer = answer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_given_for_its_own_text_and_owner_only() {
        let (a, b) = (new_owner(), new_owner());
        assert_ne!(a, b);
        let mut m: TextMemo<u32> = TextMemo::default();
        assert_eq!(m.get(a, "anything"), None, "empty");
        m.put(a, "CORP\\jdoe", || 1);
        assert_eq!(m.get(a, "CORP\\jdoe"), Some(&1));
        assert_eq!(m.get(b, "CORP\\jdoe"), None, "another owner");
        assert_eq!(m.get(a, "CORP\\jdo"), None, "a prefix");
        assert_eq!(m.get(a, "CORP\\jdoe "), None, "a longer text");
        // A text that lands on a kept text's slot takes it.
        let other = (0..)
            .map(|i| format!("text {i}"))
            .find(|t| TextMemo::<u32>::slot(a, t) == TextMemo::<u32>::slot(a, "CORP\\jdoe"))
            .expect("some text shares the slot");
        m.put(a, &other, || 2);
        assert_eq!(m.get(a, &other), Some(&2));
        assert_eq!(m.get(a, "CORP\\jdoe"), None);
        // Texts of up to MAX_TEXT bytes are kept, longer ones are not.
        let longest = "x".repeat(MAX_TEXT);
        m.put(a, &longest, || 3);
        assert_eq!(m.get(a, &longest), Some(&3));
        let long = "x".repeat(MAX_TEXT + 1);
        m.put(a, &long, || {
            unreachable!("a text over MAX_TEXT gets no answer made")
        });
        assert_eq!(m.get(a, &long), None);
        assert_eq!(m.get(a, &longest), Some(&3));
    }
}
