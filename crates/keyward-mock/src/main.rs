//! The `keyward-mock` binary; all of it lives in the library.

fn main() -> anyhow::Result<std::process::ExitCode> {
    keyward_mock::run_cli()
}
