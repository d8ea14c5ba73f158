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
    blocks(pem, label)
        .next()
        .ok_or(PemError::NotFound)??
        .decode(out)
}

/// Each PEM block whose label contains `label`, in order (a bundle of CA
/// certificates, a chain); an unterminated block ends the iteration with
/// [`PemError::Unterminated`].
///
/// ```
/// use umqtt_transports::tls::pem;
///
/// let bundle = b"-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n\
///                -----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n";
/// let mut der = [0u8; 16];
/// let mut all = Vec::new();
/// for block in pem::blocks(bundle, "CERTIFICATE") {
///     all.push(block?.decode(&mut der)?.to_vec());
/// }
/// assert_eq!(all, [vec![1u8, 2, 3], vec![4, 5, 6]]);
/// # Ok::<(), pem::PemError>(())
/// ```
pub fn blocks<'p>(
    pem: &'p [u8],
    label: &'p str,
) -> impl Iterator<Item = Result<PemBlock<'p>, PemError>> + 'p {
    let mut rest = Some(pem);
    core::iter::from_fn(move || {
        loop {
            let text = rest?;
            let Some(begin) = find(text, b"-----BEGIN ") else {
                rest = None;
                return None;
            };
            let after = text.get(begin + 11..).unwrap_or_default();
            let Some(label_end) = find(after, b"-----") else {
                rest = None;
                return None;
            };
            let found = after.get(..label_end).unwrap_or_default();
            let body = after.get(label_end + 5..).unwrap_or_default();
            let Some(end) = find(body, b"-----END") else {
                rest = None;
                return Some(Err(PemError::Unterminated));
            };
            rest = body.get(end + 8..);
            if find(found, label.as_bytes()).is_some() {
                return Some(Ok(PemBlock {
                    base64: body.get(..end).unwrap_or_default(),
                }));
            }
        }
    })
}

/// One PEM block found by [`blocks`], not decoded yet.
#[derive(Debug, Clone, Copy)]
pub struct PemBlock<'p> {
    base64: &'p [u8],
}

impl PemBlock<'_> {
    /// Decodes the block into `out`; returns the DER bytes.
    pub fn decode<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], PemError> {
        base64(self.base64, out)
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
    fn blocks_finds_every_block_with_the_label_and_skips_others() {
        let text = b"-----BEGIN CERTIFICATE-----\nAQ==\n-----END CERTIFICATE-----\n\
                     -----BEGIN PRIVATE KEY-----\nAg==\n-----END PRIVATE KEY-----\n\
                     -----BEGIN CERTIFICATE-----\nAw==\n-----END CERTIFICATE-----\n";
        let mut out = [0u8; 4];
        let found: [Option<u8>; 3] = {
            let mut it = blocks(text, "CERTIFICATE")
                .map(|b| b.ok().and_then(|b| b.decode(&mut out).ok().map(|d| d[0])));
            [
                it.next().flatten(),
                it.next().flatten(),
                it.next().flatten(),
            ]
        };
        assert_eq!(found, [Some(1), Some(3), None]);
        let mut cut = blocks(b"-----BEGIN CERTIFICATE-----\nAQ==\n", "CERTIFICATE");
        assert!(matches!(cut.next(), Some(Err(PemError::Unterminated))));
        assert!(cut.next().is_none());
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
