//! Each function binary links the AWS SDK of a port only when its route, socket route or job
//! declares that port in its `needs`: the adapters of undeclared ports must fold away in the
//! binary's `main` (`stackhouse_lambda::route!`, `socket!`, `job!`,
//! `adapters::aws::connect_for`), or every function carries all five SDKs again
//! (docs/BENCHMARKS.md, "What unused adapters cost").
//!
//! `.ci/link-guard` builds a few binaries of different needs and runs this check on them: it
//! reads each binary's symbol table (`nm`) and fails naming the function and the SDK that is
//! linked without being declared, or declared and missing.

use std::path::Path;
use std::process::Command;

use stackhouse::api::routes::ROUTES;
use stackhouse::api::sockets::SOCKETS;
use stackhouse::jobs::table::JOBS;
use stackhouse::ports::{Access, Needs};

/// Which port of a function's `Needs` an SDK serves.
type Port = fn(&Needs) -> Access;

/// The crate prefix of each SDK's symbols, and the port it serves.
const SDKS: &[(&str, Port)] = &[
    ("aws_sdk_dynamodb::", |n| n.meta),
    ("aws_sdk_s3::", |n| n.blobs),
    ("aws_sdk_sqs::", |n| n.queue),
    ("aws_sdk_kms::", |n| n.keys),
    // API Gateway's management API: only the functions that push to WebSocket clients.
    ("aws_sdk_apigatewaymanagement::", |n| n.push),
    // The team's own Secrets Manager and Parameter Store: only the environment-open functions.
    ("aws_sdk_secretsmanager::", |n| n.external),
    ("aws_sdk_ssm::", |n| n.external),
    // Deployment runners as CodeBuild builds: only the function that starts them.
    ("aws_sdk_codebuild::", |n| n.launch),
];

/// Checks every function binary present in `dir` (a cargo target profile directory) and
/// returns how many it checked, or the mismatches.
pub fn check_dir(dir: &Path) -> Result<usize, Vec<String>> {
    let functions = ROUTES
        .iter()
        .map(|r| (r.name, r.needs))
        .chain(SOCKETS.iter().map(|s| (s.name, s.needs)))
        .chain(JOBS.iter().map(|j| (j.name, j.needs)))
        // The web console's function touches no port: no SDK at all.
        .chain(std::iter::once(("console", Needs::NOTHING)));
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (name, needs) in functions {
        let bin = dir.join(name);
        if !bin.is_file() {
            continue;
        }
        let symbols = match Command::new("nm").arg("--demangle").arg(&bin).output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            Ok(out) => {
                wrong.push(format!("{name}: nm failed: {}", String::from_utf8_lossy(&out.stderr)));
                continue;
            }
            Err(e) => {
                wrong.push(format!("{name}: cannot run nm: {e}"));
                continue;
            }
        };
        checked += 1;
        for (prefix, port) in SDKS {
            let declared = !matches!(port(&needs), Access::None);
            let linked = symbols.contains(prefix);
            if declared != linked {
                let sdk = prefix.trim_end_matches("::");
                wrong.push(match linked {
                    true => format!("{name} links {sdk} but its needs do not declare that port"),
                    false => format!("{name} declares the port of {sdk} but does not link it"),
                });
            }
        }
    }
    if wrong.is_empty() {
        Ok(checked)
    } else {
        Err(wrong)
    }
}

/// `.ci/link-guard` runs this (ignored otherwise: it needs the binaries built first) with
/// `STACKHOUSE_FUNCTION_BIN_DIR` naming the profile directory it built them in.
#[macro_export]
macro_rules! link_guard_tests {
    () => {
        #[test]
        #[ignore = "run by .ci/link-guard after it builds the function binaries"]
        fn each_function_links_only_the_sdks_its_needs_declare() {
            let dir = std::env::var("STACKHOUSE_FUNCTION_BIN_DIR")
                .expect("STACKHOUSE_FUNCTION_BIN_DIR names the directory of the built functions");
            match $crate::link_guard::check_dir(std::path::Path::new(&dir)) {
                // One binary per needs shape at least: meta only, + blobs, + keys, a queue job.
                Ok(checked) => assert!(checked >= 4, "only {checked} function binaries in {dir}"),
                Err(wrong) => {
                    panic!("function binaries against their needs:\n{}", wrong.join("\n"))
                }
            }
        }
    };
}
