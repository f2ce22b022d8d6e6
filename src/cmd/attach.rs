//! `podlink attach [-i] [-t] POD [-c CONTAINER]`.

use podlink_client::exec::ExecRequest;

use super::session::{self, Mode};
use crate::args::{AttachArgs, GlobalArgs};
use crate::exit::Exit;

/// Attach to the container's main process until it ends or we are stopped
/// (which, by default, leaves it running, as kubectl does).
pub async fn run(global: &GlobalArgs, args: AttachArgs) -> anyhow::Result<Exit> {
    session::run(global, args.session, args.on_cancel, Mode::Attach, |pod| {
        ExecRequest::attach(pod)
    })
    .await
}
