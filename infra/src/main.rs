//! `cargo run -p stackhouse-infra` rewrites `infra/template.yaml` from the route table;
//! `cargo run -p stackhouse-infra -- --check` exits non-zero when the file is stale.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    let wanted = stackhouse_infra::template();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => match std::fs::write(&path, &wanted) {
            Ok(()) => {
                println!("wrote {}", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        ["--check"] => {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            match stackhouse_infra::first_difference(&current, &wanted) {
                None => {
                    println!("{} is up to date", path.display());
                    ExitCode::SUCCESS
                }
                Some(diff) => {
                    eprintln!(
                        "{} is stale ({diff}); regenerate it with `{}` and commit it",
                        path.display(),
                        stackhouse_infra::REGENERATE
                    );
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: stackhouse-infra [--check]");
            ExitCode::from(2)
        }
    }
}
