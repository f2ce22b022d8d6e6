//! `podlink exec [-i] [-t] POD [-c CONTAINER] [--protocol …] [--on-cancel …] -- CMD [ARG…]`.

use podlink_client::exec::{DisconnectPolicy, ExecRequest};

use super::session::{self, Mode};
use crate::args::{ExecArgs, GlobalArgs, OnDisconnect};
use crate::exit::Exit;

/// Run the command and pass its exit status through.
pub async fn run(global: &GlobalArgs, args: ExecArgs) -> anyhow::Result<Exit> {
    let ExecArgs {
        session,
        on_cancel,
        on_disconnect,
        grace,
        command,
    } = args;
    let on_disconnect = match on_disconnect {
        OnDisconnect::Detach => DisconnectPolicy::Detach,
        OnDisconnect::Terminate => DisconnectPolicy::Terminate,
    };
    session::run(global, session, on_cancel, Mode::Exec, |pod| {
        ExecRequest::new(pod, command)
            .with_grace(grace)
            .with_on_disconnect(on_disconnect)
    })
    .await
}
