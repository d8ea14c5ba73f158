//! Checks that every field is legal MQTT before a byte is sent.

use super::error::{EncodeError, Field};

/// The longest length-prefixed field MQTT can carry.
pub(crate) const MAX_FIELD_LEN: usize = 65_535;

/// Fails if `bytes` does not fit a two-byte length prefix.
pub(crate) fn check_len(field: Field, bytes: &[u8]) -> Result<(), EncodeError> {
    if bytes.len() > MAX_FIELD_LEN {
        Err(EncodeError::TooLong {
            field,
            len: bytes.len(),
        })
    } else {
        Ok(())
    }
}

/// Non-empty, at most 65 535 bytes, UTF-8 without U+0000.
fn check_text(field: Field, bytes: &[u8]) -> Result<(), EncodeError> {
    if bytes.is_empty() {
        return Err(EncodeError::Empty(field));
    }
    check_string(field, bytes)
}

/// At most 65 535 bytes, UTF-8 without U+0000 (MQTT-1.5.3-1, -2): an MQTT
/// UTF-8 string, which may be empty.
pub(crate) fn check_string(field: Field, bytes: &[u8]) -> Result<(), EncodeError> {
    check_len(field, bytes)?;
    if !is_mqtt_utf8(bytes) {
        return Err(EncodeError::InvalidUtf8(field));
    }
    Ok(())
}

/// Whether `bytes` are well-formed UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing past U+10FFFF) without U+0000, as MQTT strings must
/// be (MQTT-1.5.3-1, -2). The same answer as `core::str::from_utf8` plus
/// the NUL check, in a fraction of its code: the strings checked are topics
/// and ids, short, where its word-at-a-time ASCII path buys nothing.
pub(crate) fn is_mqtt_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some((&lead, tail)) = rest.split_first() {
        let (len, min) = match lead {
            0x01..=0x7F => {
                rest = tail;
                continue;
            }
            0xC2..=0xDF => (1, 0x80),
            0xE0..=0xEF => (2, 0x800),
            0xF0..=0xF4 => (3, 0x1_0000),
            _ => return false,
        };
        let Some((continuation, after)) = tail.split_at_checked(len) else {
            return false;
        };
        let mut code = u32::from(lead) & (0x3F >> len);
        for &byte in continuation {
            if byte & 0xC0 != 0x80 {
                return false;
            }
            code = code << 6 | u32::from(byte & 0x3F);
        }
        if code < min || code > 0x10_FFFF || (0xD800..=0xDFFF).contains(&code) {
            return false;
        }
        rest = after;
    }
    true
}

/// Checks a topic name for PUBLISH or a will: non-empty, at most 65 535 bytes,
/// UTF-8 without NUL, and no wildcard.
///
/// ```
/// use umqtt_simple::packet::{validate_topic_name, EncodeError};
///
/// assert!(validate_topic_name("sensors/t/\u{00fc}".as_bytes()).is_ok());
/// assert_eq!(validate_topic_name(b"a/+"), Err(EncodeError::WildcardInTopic));
/// ```
pub fn validate_topic_name(topic: &[u8]) -> Result<(), EncodeError> {
    if topic.is_empty() {
        return Err(EncodeError::Empty(Field::Topic));
    }
    check_len(Field::Topic, topic)?;
    // One pass for the bytes MQTT forbids, then the UTF-8 check.
    match topic.iter().find(|&&b| b == b'+' || b == b'#' || b == 0) {
        Some(0) => Err(EncodeError::InvalidUtf8(Field::Topic)),
        Some(_) => Err(EncodeError::WildcardInTopic),
        None if !is_mqtt_utf8(topic) => Err(EncodeError::InvalidUtf8(Field::Topic)),
        None => Ok(()),
    }
}

/// Checks a topic filter for SUBSCRIBE or UNSUBSCRIBE: like a topic name, but
/// `+` may stand for one whole level and `#` for the last level.
///
/// ```
/// use umqtt_simple::packet::{validate_filter, EncodeError};
///
/// assert!(validate_filter(b"foo/+/bar/#").is_ok());
/// assert_eq!(validate_filter(b"foo/ba#"), Err(EncodeError::InvalidWildcard));
/// ```
// Inlined for code size: a program that subscribes checks its filters in
// one loop.
#[inline(always)]
pub fn validate_filter(filter: &[u8]) -> Result<(), EncodeError> {
    check_text(Field::TopicFilter, filter)?;
    // One pass: a wildcard is a whole level (`/` or an end on both sides),
    // and `#` the last one.
    let mut before = b'/';
    for (i, &byte) in filter.iter().enumerate() {
        let after = filter.get(i + 1).copied();
        let level_starts = before == b'/';
        let misplaced = match byte {
            b'+' => !level_starts || !matches!(after, None | Some(b'/')),
            b'#' => !level_starts || after.is_some(),
            _ => false,
        };
        if misplaced {
            return Err(EncodeError::InvalidWildcard);
        }
        before = byte;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn topic_names_refuse_what_mqtt_forbids() {
        assert_eq!(
            validate_topic_name(b""),
            Err(EncodeError::Empty(Field::Topic))
        );
        assert_eq!(
            validate_topic_name(b"a/#"),
            Err(EncodeError::WildcardInTopic)
        );
        assert_eq!(
            validate_topic_name(b"a\0b"),
            Err(EncodeError::InvalidUtf8(Field::Topic))
        );
        assert_eq!(
            validate_topic_name(b"\xff"),
            Err(EncodeError::InvalidUtf8(Field::Topic))
        );
        let long = [b'a'; 65_536];
        assert_eq!(
            validate_topic_name(&long),
            Err(EncodeError::TooLong {
                field: Field::Topic,
                len: 65_536
            })
        );
        assert!(validate_topic_name(&long[..65_535]).is_ok());
        assert!(validate_topic_name(b"/").is_ok());
    }

    #[test]
    fn filters_allow_whole_level_wildcards_only() {
        for ok in [
            &b"#"[..],
            b"+",
            b"+/+",
            b"a/+/b",
            b"a/#",
            b"/#",
            b"+/#",
            b"a//b",
        ] {
            assert!(
                validate_filter(ok).is_ok(),
                "{:?}",
                core::str::from_utf8(ok)
            );
        }
        for bad in [&b"a#"[..], b"a/#/b", b"a+/b", b"#/a", b"a/b+", b"##"] {
            assert_eq!(validate_filter(bad), Err(EncodeError::InvalidWildcard));
        }
        assert_eq!(
            validate_filter(b""),
            Err(EncodeError::Empty(Field::TopicFilter))
        );
    }

    #[test]
    fn is_mqtt_utf8_agrees_with_core_on_every_sequence_of_up_to_three_bytes_and_the_four_byte_ranges()
     {
        let agree = |bytes: &[u8]| {
            let core = core::str::from_utf8(bytes).is_ok() && !bytes.contains(&0);
            assert_eq!(is_mqtt_utf8(bytes), core, "{bytes:02x?}");
        };
        agree(b"");
        for a in 0..=255u8 {
            agree(&[a]);
            for b in 0..=255u8 {
                agree(&[a, b]);
                if a >= 0xC0 {
                    for c in 0..=255u8 {
                        agree(&[a, b, c]);
                    }
                }
            }
        }
        for a in 0xF0..=0xF7u8 {
            for b in (0x70..=0xC0u8).step_by(3) {
                for c in [0x7F, 0x80, 0x9A, 0xBF, 0xC0] {
                    for d in [0x00, 0x7F, 0x80, 0xA5, 0xBF, 0xC0, 0xFF] {
                        agree(&[a, b, c, d]);
                        agree(&[b'x', a, b, c, d, b'y']);
                    }
                }
            }
        }
    }

    #[test]
    fn wildcards_are_judged_as_the_levels_rule_says_for_every_filter_up_to_six_bytes() {
        // The rule as MQTT states it (4.7.1), level by level.
        let by_levels = |filter: &[u8]| {
            let levels: Vec<&[u8]> = filter.split(|&b| b == b'/').collect();
            levels.iter().enumerate().all(|(i, level)| {
                let last = i + 1 == levels.len();
                (!level.contains(&b'+') || *level == b"+")
                    && (!level.contains(&b'#') || (*level == b"#" && last))
            })
        };
        let alphabet = [b'a', b'/', b'+', b'#'];
        for len in 1..=6u32 {
            for n in 0..4usize.pow(len) {
                let filter: Vec<u8> = (0..len).map(|k| alphabet[n / 4usize.pow(k) % 4]).collect();
                let expected = if by_levels(&filter) {
                    Ok(())
                } else {
                    Err(EncodeError::InvalidWildcard)
                };
                assert_eq!(validate_filter(&filter), expected, "{filter:?}");
            }
        }
    }
}
