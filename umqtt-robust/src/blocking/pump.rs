//! The blocking pump: runs one call of the engine to its end, performing
//! each command it asks for on the blocking client. The only code of this
//! front-end that does I/O.

use embedded_nal::TcpClientStack;
use umqtt_simple::{Client, Clock, Error, Wait};

use super::{RobustClient, RobustClientError};
use crate::engine::{Answer, Command};
use crate::reconnecting::ConnectHost;

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    robust_pump!(RobustClientError<S>);
}

/// Performs one command of the engine on `client`; a broker given by name
/// is reached through `connect_host`.
fn perform<'a, S: TcpClientStack, C: Clock, W: Wait<S>>(
    client: &mut Client<'a, S, C, W>,
    connect_host: Option<ConnectHost<'a, Client<'a, S, C, W>>>,
    command: Command<'_>,
) -> Result<Answer, Error<S::Error>> {
    perform_command!(client, connect_host, command)
}
