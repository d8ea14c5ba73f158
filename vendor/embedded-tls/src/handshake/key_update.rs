//! umqtt patch: the KeyUpdate message (RFC 8446 §4.6.3).

use crate::TlsError;
use crate::alert::{AlertDescription, AlertLevel};
use crate::buffer::CryptoBuffer;
use crate::parse_buffer::ParseBuffer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeyUpdate {
    /// Whether the sender asks the receiver to update its own sending keys.
    pub update_requested: bool,
}

impl KeyUpdate {
    pub fn parse(buf: &mut ParseBuffer, content_len: u32) -> Result<Self, TlsError> {
        if content_len != 1 {
            return Err(TlsError::AbortHandshake(
                AlertLevel::Fatal,
                AlertDescription::DecodeError,
            ));
        }
        match buf.read_u8().map_err(|_| TlsError::InvalidHandshake)? {
            0 => Ok(KeyUpdate {
                update_requested: false,
            }),
            1 => Ok(KeyUpdate {
                update_requested: true,
            }),
            _ => Err(TlsError::AbortHandshake(
                AlertLevel::Fatal,
                AlertDescription::IllegalParameter,
            )),
        }
    }

    pub(crate) fn encode(&self, buf: &mut CryptoBuffer<'_>) -> Result<(), TlsError> {
        buf.push(u8::from(self.update_requested))
            .map_err(|_| TlsError::EncodeError)
    }
}
