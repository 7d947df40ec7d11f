//! The `karmada` binary: parses the command line and hands over to the component it names.

mod agent_cmd;
mod apiserver_cmd;
mod bench;
mod cli;
mod controller_manager_cmd;
mod dashboard_cmd;
mod descheduler_cmd;
mod health;
mod init_secrets_cmd;
mod karmada_apis;
mod member_cmd;
mod scheduler_cmd;
mod up_cmd;

/// mimalloc instead of the system allocator: every component decodes, clones and drops JSON
/// trees per request, and glibc's malloc/free took ~30 % of the API server's and the
/// controller-manager's CPU under load (perf, `bench propagate`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    cli::main()
}
