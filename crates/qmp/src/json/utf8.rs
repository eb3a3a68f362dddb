//! QEMU's "modified UTF-8" (util/unicode.c): UTF-8 in which U+0000 is the
//! overlong pair C0 80, and noncharacters and surrogates are invalid.

/// Whether QEMU accepts `cp` as a character.
pub fn is_valid_codepoint(cp: u32) -> bool {
    cp <= 0x10FFFF
        && !(0xFDD0..=0xFDEF).contains(&cp)
        && cp & 0xFFFE != 0xFFFE
        && !(0xD800..=0xDFFF).contains(&cp)
}

/// Decodes one character from the start of `bytes` (which must not be
/// empty).  Returns the character, or `None` for an invalid sequence, and
/// how many bytes were consumed — as QEMU's `mod_utf8_codepoint` does.
pub fn decode(bytes: &[u8]) -> (Option<char>, usize) {
    const MIN: [u32; 5] = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];
    let lead = bytes[0];
    if lead < 0x80 {
        return (Some(char::from(lead)), 1);
    }
    if lead >= 0xFE || lead & 0x40 == 0 {
        return (None, 1);
    }
    let len = lead.leading_ones() as usize;
    let mut cp = u32::from(lead) & (0x7F >> len);
    let mut consumed = 1;
    while consumed < len {
        match bytes.get(consumed) {
            Some(&byte) if byte & 0xC0 == 0x80 => {
                cp = cp << 6 | u32::from(byte & 0x3F);
                consumed += 1;
            }
            _ => return (None, consumed),
        }
    }
    let overlong = cp < MIN[len - 2] && !(cp == 0 && len == 2);
    if !is_valid_codepoint(cp) || overlong {
        return (None, consumed);
    }
    (char::from_u32(cp), consumed)
}

/// Text as QEMU prints raw bytes: up to the first NUL, each invalid sequence
/// as U+FFFD.
pub fn lossy(bytes: &[u8]) -> String {
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        let (ch, consumed) = decode(rest);
        text.push(ch.unwrap_or('\u{FFFD}'));
        rest = &rest[consumed..];
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_qemu() {
        assert_eq!(decode(b"a"), (Some('a'), 1));
        assert_eq!(decode("é".as_bytes()), (Some('é'), 2));
        assert_eq!(decode("😀".as_bytes()), (Some('😀'), 4));
        assert_eq!(decode(b"\xc0\x80"), (Some('\0'), 2), "C0 80 is U+0000");
        assert_eq!(decode(b"\xc0\xaf"), (None, 2), "overlong");
        assert_eq!(decode(b"\xed\xa0\x80"), (None, 3), "surrogate");
        assert_eq!(decode(b"\xef\xbf\xbe"), (None, 3), "noncharacter");
        assert_eq!(decode(b"\xf4\x90\x80\x80"), (None, 4), "beyond U+10FFFF");
        assert_eq!(decode(b"\xe2\x82\x01"), (None, 2), "missing continuation");
        assert_eq!(decode(b"\x80"), (None, 1));
        assert_eq!(decode(b"\xff"), (None, 1));
    }

    #[test]
    fn lossy_stops_at_nul_and_replaces_each_bad_sequence() {
        assert_eq!(lossy(b"\"a\xe2\x82\x01"), "\"a\u{FFFD}\u{1}");
        assert_eq!(lossy(b"\x80\x80"), "\u{FFFD}\u{FFFD}");
        assert_eq!(lossy(b"\"a\x00b"), "\"a");
    }
}
