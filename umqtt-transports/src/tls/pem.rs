//! PEM to DER without a heap: certificates and keys are read from PEM files
//! on std, and may be stored as PEM text in a device's flash.

use core::fmt;

/// Why [`decode`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemError {
    /// No `-----BEGIN ...-----` block whose label contains the one asked for.
    NotFound,
    /// The block has no `-----END` line.
    Unterminated,
    /// A character that is not base64.
    BadBase64,
    /// The decoded bytes do not fit in the output buffer.
    TooLarge {
        /// Bytes the output buffer holds.
        buffer: usize,
    },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::NotFound => f.write_str("no PEM block with the expected label"),
            PemError::Unterminated => f.write_str("PEM block without an END line"),
            PemError::BadBase64 => f.write_str("PEM block with invalid base64"),
            PemError::TooLarge { buffer } => {
                write!(f, "PEM block larger than the {buffer}-byte buffer")
            }
        }
    }
}

impl core::error::Error for PemError {}

/// Decodes the first PEM block whose label contains `label` (e.g.
/// `"CERTIFICATE"`, `"PRIVATE KEY"` for both `EC PRIVATE KEY` and PKCS#8
/// `PRIVATE KEY`) into `out`; returns the DER bytes.
///
/// ```
/// use umqtt_transports::tls::pem;
///
/// let text = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
///              -----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
/// let mut der = [0u8; 16];
/// assert_eq!(pem::decode(text, "CERTIFICATE", &mut der), Ok(&[1u8, 2, 3][..]));
/// assert_eq!(pem::decode(text, "PRIVATE KEY", &mut der), Err(pem::PemError::NotFound));
/// ```
pub fn decode<'o>(pem: &[u8], label: &str, out: &'o mut [u8]) -> Result<&'o [u8], PemError> {
    let mut rest = pem;
    loop {
        let begin = find(rest, b"-----BEGIN ").ok_or(PemError::NotFound)?;
        let after = rest.get(begin + 11..).unwrap_or_default();
        let label_end = find(after, b"-----").ok_or(PemError::NotFound)?;
        let found = after.get(..label_end).unwrap_or_default();
        let body = after.get(label_end + 5..).unwrap_or_default();
        if find(found, label.as_bytes()).is_none() {
            rest = body;
            continue;
        }
        let end = find(body, b"-----END").ok_or(PemError::Unterminated)?;
        return base64(body.get(..end).unwrap_or_default(), out);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn base64<'o>(text: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], PemError> {
    let buffer = out.len();
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return Err(PemError::BadBase64),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = out.get_mut(n).ok_or(PemError::TooLarge { buffer })?;
            *byte = (acc >> bits) as u8;
            n += 1;
        }
    }
    Ok(out.get(..n).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        let mut out = [0u8; 8];
        assert_eq!(base64(b"aGVsbG8=", &mut out), Ok(&b"hello"[..]));
        assert_eq!(base64(b"aGk\n", &mut out), Ok(&b"hi"[..]));
        assert_eq!(base64(b"a?", &mut out), Err(PemError::BadBase64));
        let mut small = [0u8; 2];
        assert_eq!(
            base64(b"aGVsbG8=", &mut small),
            Err(PemError::TooLarge { buffer: 2 })
        );
    }

    #[test]
    fn unterminated_block_is_refused() {
        let mut out = [0u8; 8];
        assert_eq!(
            decode(b"-----BEGIN CERTIFICATE-----\nAQID\n", "CERT", &mut out),
            Err(PemError::Unterminated)
        );
    }
}
