//! The async pump: runs one call of the engine to its end, performing each
//! command it asks for on the async client, `.await`ing it. The only code
//! of this front-end that does I/O.

use embedded_nal_async::TcpConnect;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Error, Timer};

use super::{AsyncRobustError, RobustClient};
use crate::engine::{Answer, Command};
use crate::reconnecting::ConnectHost;

impl<'a, N: TcpConnect + 'a, T: Timer, const SUB_BYTES: usize> RobustClient<'a, N, T, SUB_BYTES> {
    robust_pump!(AsyncRobustError<N>, async, await);
}

/// Performs one command of the engine on `client`, which reconnects to
/// addresses only (the application resolves a host name first, so
/// `connect_host` is never set).
async fn perform<'a, N: TcpConnect, T: Timer>(
    client: &mut Client<'a, N, T>,
    connect_host: Option<ConnectHost<'a, Client<'a, N, T>>>,
    command: Command<'_>,
) -> Result<Answer, Error<N::Error>> {
    perform_command!(client, connect_host, command, await)
}
