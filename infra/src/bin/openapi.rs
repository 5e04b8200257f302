//! `cargo run -p stackhouse-infra --bin openapi` rewrites `docs/openapi.json` from the route
//! table; `-- --check` exits non-zero when the file is stale.

use std::path::Path;
use std::process::ExitCode;

use stackhouse_infra::openapi::{openapi_json, REGENERATE_OPENAPI};

fn main() -> ExitCode {
    // infra/ sits at the repository's root, beside docs/.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".."));
    let path = root.join("docs/openapi.json");
    let wanted = match openapi_json() {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: the route table is not fully described: {e}");
            return ExitCode::FAILURE;
        }
    };
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
                        "{} is stale ({diff}); regenerate it with `{REGENERATE_OPENAPI}` and commit it",
                        path.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: openapi [--check]");
            ExitCode::from(2)
        }
    }
}
