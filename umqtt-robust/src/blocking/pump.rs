//! The blocking pump: runs one call of the engine to its end, performing
//! each command it asks for on the blocking client. The only code of this
//! front-end that does I/O.

use core::pin::pin;

use embedded_nal::TcpClientStack;
use umqtt_simple::{Client, Clock, Error, Wait};

use super::{RobustClient, RobustClientError};
use crate::engine::{Answer, Command, Step, Task};
use crate::reconnecting::ConnectHost;

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    /// Runs `task` on the engine, performing what it asks for, until it
    /// ends.
    pub(super) fn run(&mut self, task: Task<'_>) -> Result<Answer, RobustClientError<S>> {
        self.subscriptions_before(&task)?;
        let connect_host = self.connect_host;
        let result = {
            let (engine, io) = self.split();
            let mut work = pin!(engine.run(&io, task));
            loop {
                match io.resume(work.as_mut()) {
                    Step::Done(result) => break result,
                    Step::Perform(command) => {
                        let outbox = io.outbox();
                        let command = command.resolve(&outbox);
                        io.answer(perform(&mut io.client(), connect_host, command));
                    }
                }
            }
        };
        self.subscriptions_after(&task, result)
    }
}

/// Performs one command of the engine on `client`; a broker given by name
/// is reached through `connect_host`.
fn perform<'a, S: TcpClientStack, C: Clock, W: Wait<S>>(
    client: &mut Client<'a, S, C, W>,
    connect_host: Option<ConnectHost<'a, Client<'a, S, C, W>>>,
    command: Command<'_>,
) -> Result<Answer, Error<S::Error>> {
    perform_command!(client, command, |name, port| match connect_host {
        Some(connect) => connect(client, name, port).map(Answer::Flag),
        None => Err(Error::Dns),
    })
}
