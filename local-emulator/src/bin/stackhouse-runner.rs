//! A deployment's runner on its own, as a CodeBuild build runs it on AWS (infra/: the runner
//! project's buildspec): the run named by the variables of `ports::launcher`, the `pulumi` and
//! `git` on its PATH. The same code as `local-emulator runner`, without the emulator.

use std::process::ExitCode;

fn main() -> ExitCode {
    stackhouse::telemetry::init(false);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(local_emulator::runner::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
