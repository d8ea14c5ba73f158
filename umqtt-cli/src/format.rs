//! `sub -F FORMAT`: how each message is printed, as mosquitto_sub's `-F`
//! spells it. The format is parsed once; each message is then written
//! piece by piece, with no allocation but the JSON escape of its strings.
//!
//! `%t` topic, `%p` payload, `%q` QoS, `%r` retain flag (0/1), `%l` payload
//! length, `%I` time (ISO 8601, UTC), `%U` Unix time with nanoseconds, `%x`
//! / `%X` payload in lower / upper case hex, `%j` the message as one JSON
//! object, `%%` a percent sign; `\n`, `\t`, `\r`, `\0`, `\e`, `\\` escapes.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use umqtt_simple::Message;

/// One piece of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Topic,
    Payload,
    Qos,
    Retain,
    Length,
    IsoTime,
    UnixTime,
    Hex,
    HexUpper,
    Json,
}

/// A parsed `-F` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Vec<Piece>);

impl Format {
    /// Parses `text`; an unknown `%` or `\` sequence is an error that names it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let piece = match chars.next() {
                        Some('t') => Piece::Topic,
                        Some('p') => Piece::Payload,
                        Some('q') => Piece::Qos,
                        Some('r') => Piece::Retain,
                        Some('l') => Piece::Length,
                        Some('I') => Piece::IsoTime,
                        Some('U') => Piece::UnixTime,
                        Some('x') => Piece::Hex,
                        Some('X') => Piece::HexUpper,
                        Some('j') => Piece::Json,
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some('m') => {
                            return Err("-F: %m (message id) is not supported: the \
                                        client acknowledges by id but does not hand it out"
                                .into());
                        }
                        Some(other) => {
                            return Err(format!(
                                "-F: unknown format `%{other}` (supported: %t %p %q %r %l %I %U %x %X %j %%)"
                            ));
                        }
                        None => return Err("-F: the format ends in a lone `%`".into()),
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                '\\' => literal.push(match chars.next() {
                    Some('n') => b'\n',
                    Some('t') => b'\t',
                    Some('r') => b'\r',
                    Some('0') => 0,
                    Some('e') => 0x1b,
                    Some('\\') => b'\\',
                    Some(other) => {
                        return Err(format!(
                            "-F: unknown escape `\\{other}` (supported: \\n \\t \\r \\0 \\e \\\\)"
                        ));
                    }
                    None => return Err("-F: the format ends in a lone `\\`".into()),
                }),
                c => literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Format(pieces))
    }

    /// Writes `message`, received at `now`, in this format.
    pub fn write(
        &self,
        out: &mut impl Write,
        message: &Message<'_>,
        now: SystemTime,
    ) -> io::Result<()> {
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.write_all(text)?,
                Piece::Topic => out.write_all(message.topic)?,
                Piece::Payload => out.write_all(message.payload)?,
                Piece::Qos => write!(out, "{}", message.qos as u8)?,
                Piece::Retain => write!(out, "{}", u8::from(message.retain))?,
                Piece::Length => write!(out, "{}", message.payload.len())?,
                Piece::IsoTime => write_iso(out, now, false)?,
                Piece::UnixTime => {
                    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                    write!(out, "{}.{:09}", since.as_secs(), since.subsec_nanos())?;
                }
                Piece::Hex => write_hex(out, message.payload, b"0123456789abcdef")?,
                Piece::HexUpper => write_hex(out, message.payload, b"0123456789ABCDEF")?,
                Piece::Json => write_json(out, message, now)?,
            }
        }
        Ok(())
    }
}

fn write_hex(out: &mut impl Write, bytes: &[u8], digits: &[u8; 16]) -> io::Result<()> {
    for &b in bytes {
        let pair = [digits[usize::from(b >> 4)], digits[usize::from(b & 0xf)]];
        out.write_all(&pair)?;
    }
    Ok(())
}

/// `2026-12-03T16:30:05+0000` (with `micros`: `…05.123456+0000`), UTC.
fn write_iso(out: &mut impl Write, now: SystemTime, micros: bool) -> io::Result<()> {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rest = secs % 86_400;
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )?;
    if micros {
        write!(out, ".{:06}", since.subsec_micros())?;
    }
    out.write_all(b"+0000")
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// One JSON object, as mosquitto_sub's `%j` writes it:
/// `{"tst":"…","topic":"…","qos":1,"retain":0,"payloadlen":5,"payload":"…"}`.
/// A payload that is not UTF-8 is given in hex as `"payload_hex"` instead.
fn write_json(out: &mut impl Write, message: &Message<'_>, now: SystemTime) -> io::Result<()> {
    out.write_all(b"{\"tst\":\"")?;
    write_iso(out, now, true)?;
    out.write_all(b"\",\"topic\":")?;
    write_json_string(out, &String::from_utf8_lossy(message.topic))?;
    write!(
        out,
        ",\"qos\":{},\"retain\":{},\"payloadlen\":{},",
        message.qos as u8,
        u8::from(message.retain),
        message.payload.len()
    )?;
    match std::str::from_utf8(message.payload) {
        Ok(text) => {
            out.write_all(b"\"payload\":")?;
            write_json_string(out, text)?;
        }
        Err(_) => {
            out.write_all(b"\"payload_hex\":\"")?;
            write_hex(out, message.payload, b"0123456789abcdef")?;
            out.write_all(b"\"")?;
        }
    }
    out.write_all(b"}")
}

fn write_json_string(out: &mut impl Write, text: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    for c in text.chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            '\n' => out.write_all(b"\\n")?,
            '\r' => out.write_all(b"\\r")?,
            '\t' => out.write_all(b"\\t")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_all(c.encode_utf8(&mut [0; 4]).as_bytes())?,
        }
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use umqtt_simple::QoS;

    fn printed(format: &str, message: &Message<'_>) -> String {
        let mut out = Vec::new();
        // 2026-12-03T16:30:05.123456789 UTC
        let now = UNIX_EPOCH + Duration::new(1_796_315_405, 123_456_789);
        Format::parse(format)
            .unwrap()
            .write(&mut out, message, now)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_field_prints_as_mosquitto_sub_prints_it() {
        let mut message = Message::new(b"a/b", b"hi\x01", QoS::AtLeastOnce);
        message.retain = true;
        assert_eq!(
            printed("%t %q %r %l %x %X%%\\t|", &message),
            "a/b 1 1 3 686901 686901%\t|"
        );
        assert_eq!(
            printed("%I %U", &message),
            "2026-12-03T16:30:05+0000 1796315405.123456789"
        );
        assert_eq!(printed("%p", &message).as_bytes(), b"hi\x01");
    }

    #[test]
    fn json_is_one_object_with_escapes_or_hex_for_binary() {
        let message = Message::new(b"t\"q", b"line\n\"x\"", QoS::AtMostOnce);
        assert_eq!(
            printed("%j", &message),
            "{\"tst\":\"2026-12-03T16:30:05.123456+0000\",\"topic\":\"t\\\"q\",\"qos\":0,\
             \"retain\":0,\"payloadlen\":8,\"payload\":\"line\\n\\\"x\\\"\"}"
        );
        let binary = Message::new(b"t", &[0xff, 0x00], QoS::AtMostOnce);
        assert!(printed("%j", &binary).ends_with(",\"payloadlen\":2,\"payload_hex\":\"ff00\"}"));
    }

    #[test]
    fn dates_are_right_across_leap_years_and_centuries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn unknown_sequences_are_refused_with_what_was_wrong() {
        assert!(
            Format::parse("%z")
                .unwrap_err()
                .contains("unknown format `%z`")
        );
        assert!(
            Format::parse("\\q")
                .unwrap_err()
                .contains("unknown escape `\\q`")
        );
        assert!(Format::parse("ends %").unwrap_err().contains("lone `%`"));
        assert!(Format::parse("%m").unwrap_err().contains("not supported"));
    }
}
