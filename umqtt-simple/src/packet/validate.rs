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
    if bytes.contains(&0) || core::str::from_utf8(bytes).is_err() {
        return Err(EncodeError::InvalidUtf8(field));
    }
    Ok(())
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
        None if core::str::from_utf8(topic).is_err() => Err(EncodeError::InvalidUtf8(Field::Topic)),
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
pub fn validate_filter(filter: &[u8]) -> Result<(), EncodeError> {
    check_text(Field::TopicFilter, filter)?;
    let mut levels = filter.split(|&b| b == b'/').peekable();
    while let Some(level) = levels.next() {
        let has_plus = level.contains(&b'+');
        let has_hash = level.contains(&b'#');
        let is_last = levels.peek().is_none();
        if (has_plus && level != b"+") || (has_hash && (level != b"#" || !is_last)) {
            return Err(EncodeError::InvalidWildcard);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
