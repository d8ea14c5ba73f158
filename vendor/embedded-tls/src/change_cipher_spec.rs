use crate::TlsError;
use crate::buffer::CryptoBuffer;
use crate::parse_buffer::ParseBuffer;

#[derive(Debug, Copy, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChangeCipherSpec {
    valid: bool,
}

#[allow(clippy::unnecessary_wraps)] // TODO
impl ChangeCipherSpec {
    pub fn new() -> Self {
        Self { valid: true }
    }

    pub fn read(rx_buf: &mut [u8]) -> Result<Self, TlsError> {
        // umqtt patch: remember whether the body is the one byte 0x01 (RFC
        // 8446 §5), for the record's processing to refuse it with an alert.
        Ok(Self {
            valid: rx_buf == [1],
        })
    }

    /// umqtt patch: whether the body was the one byte 0x01.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    #[allow(dead_code)]
    pub fn parse(_: &mut ParseBuffer) -> Result<Self, TlsError> {
        Ok(Self { valid: true })
    }

    #[allow(dead_code, clippy::unused_self)]
    pub(crate) fn encode(self, buf: &mut CryptoBuffer<'_>) -> Result<(), TlsError> {
        buf.push(1).map_err(|_| TlsError::EncodeError)?;
        Ok(())
    }
}

impl Default for ChangeCipherSpec {
    fn default() -> Self {
        ChangeCipherSpec::new()
    }
}
