//! The `karmada` binary: parses the command line and hands over to the component it names.

mod access;
mod agent_cmd;
mod apiserver_cmd;
mod bench;
mod cli;
mod controller_manager_cmd;
mod karmada_apis;
mod member_cmd;
mod scheduler_cmd;
mod up_cmd;

fn main() -> anyhow::Result<()> {
    cli::main()
}
