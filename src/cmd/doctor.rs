//! `podlink doctor`: placeholder until its owner lands the real command.

use crate::args::{GlobalArgs, DoctorArgs};
use crate::exit::Exit;

/// Not implemented yet: fails as podlink's own failure (exit 255).
pub async fn run(_global: &GlobalArgs, _args: DoctorArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("doctor: not yet implemented")
}
