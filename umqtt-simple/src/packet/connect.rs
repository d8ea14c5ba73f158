//! CONNECT and CONNACK: opening a session.

use core::fmt;

use super::codec::{Reader, Writer};
use super::error::{DecodeError, EncodeError, Field};
use super::header::PacketType;
use super::qos::QoS;
use super::validate::{check_len, check_string, validate_topic_name};

const PROTOCOL_NAME: &[u8] = b"MQTT";
const PROTOCOL_LEVEL_3_1_1: u8 = 4;

const FLAG_USERNAME: u8 = 0x80;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_WILL: u8 = 0x04;
const FLAG_CLEAN_SESSION: u8 = 0x02;
const FLAG_RESERVED: u8 = 0x01;

/// The message the broker publishes for the client if the connection is lost
/// without a DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastWill<'a> {
    /// The topic the will is published to (no wildcards).
    pub topic: &'a [u8],
    /// The will message.
    pub message: &'a [u8],
    /// The QoS the broker publishes it with.
    pub qos: QoS,
    /// Whether the broker retains it.
    pub retain: bool,
}

/// A CONNECT packet: who the client is and how its session behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// The client identifier (may be empty with a clean session).
    pub client_id: &'a [u8],
    /// Keepalive in seconds; 0 turns keepalive off.
    pub keepalive: u16,
    /// Whether the broker discards any previous session.
    pub clean_session: bool,
    /// The last will, if any.
    pub will: Option<LastWill<'a>>,
    /// The user name, if any.
    pub username: Option<&'a [u8]>,
    /// The password, if any (only with a user name).
    pub password: Option<&'a [u8]>,
}

impl<'a> Connect<'a> {
    /// A CONNECT with a clean session, keepalive 0, no will and no credentials.
    pub const fn new(client_id: &'a [u8]) -> Self {
        Connect {
            client_id,
            keepalive: 0,
            clean_session: true,
            will: None,
            username: None,
            password: None,
        }
    }

    /// Checks every field; what passes can be encoded.
    pub fn validate(&self) -> Result<(), EncodeError> {
        check_string(Field::ClientId, self.client_id)?;
        if self.client_id.is_empty() && !self.clean_session {
            return Err(EncodeError::EmptyClientIdNeedsCleanSession);
        }
        if let Some(will) = &self.will {
            validate_topic_name(will.topic)?;
            check_len(Field::WillMessage, will.message)?;
        }
        if let Some(user) = self.username {
            check_string(Field::Username, user)?;
        }
        if let Some(password) = self.password {
            if self.username.is_none() {
                return Err(EncodeError::PasswordWithoutUsername);
            }
            check_len(Field::Password, password)?;
        }
        Ok(())
    }

    pub(crate) fn remaining_length(&self) -> usize {
        let field = |b: &[u8]| 2 + b.len();
        let mut len = field(PROTOCOL_NAME) + 1 + 1 + 2 + field(self.client_id);
        if let Some(will) = &self.will {
            len += field(will.topic) + field(will.message);
        }
        len += self.username.map_or(0, field);
        len += self.password.map_or(0, field);
        len
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_session {
            flags |= FLAG_CLEAN_SESSION;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | ((will.qos as u8) << 3);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        flags
    }

    // Out of line for code size (the client's connect path stays short).
    #[inline(never)]
    pub(crate) fn write_body(&self, w: &mut Writer<'_>) {
        w.prefixed(PROTOCOL_NAME);
        w.u8(PROTOCOL_LEVEL_3_1_1);
        w.u8(self.flags());
        w.u16(self.keepalive);
        w.prefixed(self.client_id);
        if let Some(will) = &self.will {
            w.prefixed(will.topic);
            w.prefixed(will.message);
        }
        if let Some(user) = self.username {
            w.prefixed(user);
        }
        if let Some(password) = self.password {
            w.prefixed(password);
        }
    }

    pub(crate) fn read_body(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        if r.prefixed()? != PROTOCOL_NAME || r.u8()? != PROTOCOL_LEVEL_3_1_1 {
            return Err(DecodeError::UnsupportedProtocol);
        }
        let flags = r.u8()?;
        let has_will = flags & FLAG_WILL != 0;
        let will_qos_bits = (flags >> 3) & 0b11;
        let bad_will = !has_will && (will_qos_bits != 0 || flags & FLAG_WILL_RETAIN != 0);
        let password_alone = flags & FLAG_PASSWORD != 0 && flags & FLAG_USERNAME == 0;
        if flags & FLAG_RESERVED != 0 || bad_will || password_alone {
            return Err(DecodeError::InvalidConnectFlags(flags));
        }
        let keepalive = r.u16()?;
        let client_id = r.prefixed()?;
        let will = if has_will {
            let qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::InvalidConnectFlags(flags))?;
            Some(LastWill {
                topic: r.prefixed()?,
                message: r.prefixed()?,
                qos,
                retain: flags & FLAG_WILL_RETAIN != 0,
            })
        } else {
            None
        };
        let username = if flags & FLAG_USERNAME != 0 {
            Some(r.prefixed()?)
        } else {
            None
        };
        let password = if flags & FLAG_PASSWORD != 0 {
            Some(r.prefixed()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Connect {
            client_id,
            keepalive,
            clean_session: flags & FLAG_CLEAN_SESSION != 0,
            will,
            username,
            password,
        })
    }
}

/// The broker's answer to CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted = 0,
    /// 1: the broker does not speak MQTT 3.1.1.
    UnacceptableProtocolVersion = 1,
    /// 2: the client identifier is not allowed.
    IdentifierRejected = 2,
    /// 3: the MQTT service is unavailable.
    ServerUnavailable = 3,
    /// 4: the user name or password is wrong.
    BadUsernameOrPassword = 4,
    /// 5: the client is not authorised to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a wire value, or an error for values above 5.
    pub fn from_u8(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            0 => ConnectReturnCode::Accepted,
            1 => ConnectReturnCode::UnacceptableProtocolVersion,
            2 => ConnectReturnCode::IdentifierRejected,
            3 => ConnectReturnCode::ServerUnavailable,
            4 => ConnectReturnCode::BadUsernameOrPassword,
            5 => ConnectReturnCode::NotAuthorized,
            other => return Err(DecodeError::UnknownConnackCode(other)),
        })
    }
}

impl fmt::Display for ConnectReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectReturnCode::Accepted => "connection accepted",
            ConnectReturnCode::UnacceptableProtocolVersion => {
                "broker refused the protocol version (MQTT 3.1.1)"
            }
            ConnectReturnCode::IdentifierRejected => "broker rejected the client id",
            ConnectReturnCode::ServerUnavailable => "broker says the MQTT service is unavailable",
            ConnectReturnCode::BadUsernameOrPassword => "broker refused the user name or password",
            ConnectReturnCode::NotAuthorized => "broker says the client is not authorised",
        })
    }
}

/// A CONNACK packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the broker kept a session from an earlier connection.
    pub session_present: bool,
    /// Accepted, or why not.
    pub code: ConnectReturnCode,
}

impl ConnAck {
    pub(crate) fn write_body(&self, w: &mut Writer<'_>) {
        w.u8(u8::from(self.session_present));
        w.u8(self.code as u8);
    }

    pub(crate) fn read_body(r: &mut Reader<'_>, len: usize) -> Result<Self, DecodeError> {
        if len != 2 {
            return Err(DecodeError::InvalidLength {
                packet: PacketType::ConnAck,
                len,
            });
        }
        let flags = r.u8()?;
        if flags & !1 != 0 {
            return Err(DecodeError::InvalidConnackFlags(flags));
        }
        let code = ConnectReturnCode::from_u8(r.u8()?)?;
        Ok(ConnAck {
            session_present: flags & 1 != 0,
            code,
        })
    }
}
