//! MQTT topic filter matching (MQTT 3.1.1 section 4.7), for `sub -T`.

/// Whether `topic` matches `filter`: `+` matches one level (an empty one
/// too), a final `#` matches the level before it and everything below; a
/// topic starting with `$` is not matched by a filter starting with a
/// wildcard (MQTT-4.7.2-1). `filter` is assumed valid.
pub fn matches(filter: &[u8], topic: &[u8]) -> bool {
    if topic.first() == Some(&b'$') && matches!(filter.first(), Some(b'+' | b'#')) {
        return false;
    }
    let mut filter = filter.split(|&b| b == b'/');
    let mut topic = topic.split(|&b| b == b'/');
    loop {
        match (filter.next(), topic.next()) {
            (Some(b"#"), _) => return true,
            (None, None) => return true,
            (Some(b"+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn the_examples_of_the_specification() {
        let cases: &[(&str, &str, bool)] = &[
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/tennis/player1/#", "sport/tennis/player2", false),
            ("sport/#", "sport", true),
            ("#", "a/b/c", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("a/b", "a/b", true),
            ("a/b", "a/bc", false),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("#", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ];
        for &(filter, topic, expected) in cases {
            assert_eq!(
                matches(filter.as_bytes(), topic.as_bytes()),
                expected,
                "{filter} vs {topic}"
            );
        }
    }
}
