//! The async pump: runs one call of the engine to its end, performing each
//! command it asks for on the async client, `.await`ing it. The only code
//! of this front-end that does I/O.

use core::pin::pin;

use embedded_nal_async::TcpConnect;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Error, Timer};

use super::{AsyncRobustError, RobustClient};
use crate::engine::{Answer, Command, Step, Task};

impl<'a, N: TcpConnect + 'a, T: Timer, const SUB_BYTES: usize> RobustClient<'a, N, T, SUB_BYTES> {
    /// Runs `task` on the engine, performing (and awaiting) what it asks
    /// for, until it ends. A call dropped on the way leaves the client
    /// usable, with the command in progress cut short as the inner
    /// client's own call would be.
    #[allow(
        clippy::await_holding_refcell_ref,
        reason = "the engine, the only other borrower, is suspended until the command is answered"
    )]
    pub(super) async fn run(&mut self, task: Task<'_>) -> Result<Answer, AsyncRobustError<N>> {
        self.subscriptions_before(&task)?;
        let result = {
            let (engine, io) = self.split();
            let mut work = pin!(engine.run(&io, task));
            loop {
                match io.resume(work.as_mut()) {
                    Step::Done(result) => break result,
                    Step::Perform(command) => {
                        let outbox = io.outbox();
                        let answer = perform(&mut io.client(), command.resolve(&outbox)).await;
                        io.answer(answer);
                    }
                }
            }
        };
        self.subscriptions_after(&task, result)
    }
}

/// Performs one command of the engine on `client`, which reconnects to
/// addresses only (the application resolves a host name first).
async fn perform<N: TcpConnect, T: Timer>(
    client: &mut Client<'_, N, T>,
    command: Command<'_>,
) -> Result<Answer, Error<N::Error>> {
    perform_command!(client, command, |_name, _port| Err(Error::Dns), await)
}
