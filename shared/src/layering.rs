//! The layering rule, enforced: api → jobs → service → ports ← adapters, with `app` (the
//! process's ports, settings and clock) beside the services, and `ports`, `config`,
//! `telemetry` and `console` (the web console's files) importing nothing of the crate (`error` knows the ports' errors, `names` the
//! error type). The transports that put it all together live outside this crate: the Lambda
//! transport in `functions`, the HTTP server in `local-emulator`. This test reads the sources and fails on an import that points up or
//! sideways, naming the file and line; test modules (`#[cfg(test)]` to the end of a file) may
//! use anything.

use std::path::{Path, PathBuf};

/// What each top-level module may import from the crate, besides itself.
fn allowed(module: &str) -> Option<&'static [&'static str]> {
    Some(match module {
        // The console's files: nothing of the crate.
        "ports" | "config" | "telemetry" | "console" => &[],
        "error" => &["ports"],
        "names" => &["error"],
        "apitype" => &["names", "error"],
        "adapters" => &["ports", "names", "error", "config"],
        "app" => &["ports", "service", "config", "error", "telemetry"],
        "service" => &["app", "ports", "names", "error", "apitype", "config", "telemetry"],
        "jobs" => &["service", "app", "ports", "names", "error", "apitype", "config", "telemetry"],
        "api" => {
            &["jobs", "service", "app", "ports", "names", "error", "apitype", "config", "telemetry"]
        }
        _ => return None,
    })
}

/// Names at the crate root (`#[macro_export]` macros, re-exports) and the module they are from.
const ROOT_NAMES: &[(&str, &str)] = &[
    ("handler", "api"),
    ("batch", "jobs"),
    ("manual", "jobs"),
    ("scheduled", "jobs"),
    ("stream", "jobs"),
    ("Error", "error"),
    ("App", "app"),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules a line of code names (`crate::x`, `$crate::x`, `crate::{x, y}`).
fn named_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            group.split('}').next().unwrap_or("").split(',').map(str::trim).collect()
        } else {
            vec![rest]
        };
        for name in names {
            let ident: String =
                name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let owner =
                ROOT_NAMES.iter().find(|(m, _)| *m == ident).map(|(_, owner)| owner.to_string());
            if !ident.is_empty() {
                found.push(owner.unwrap_or(ident));
            }
        }
    }
    found
}

#[test]
fn imports_point_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), src.display());
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap_or(&file);
        let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().to_string());
        let module = first.unwrap_or_default().trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "layering" | "fixtures") {
            continue;
        }
        // A module's tests in their own file or folder (`#[cfg(test)] mod tests;`: `tests.rs`
        // or `tests/`) may build an app on the adapters, as the in-file test modules below the
        // `#[cfg(test)]` line may.
        let test_only =
            rel.components().any(|c| c.as_os_str() == "tests" || c.as_os_str() == "tests.rs");
        if test_only {
            continue;
        }
        let Some(allowed) = allowed(&module) else {
            wrong
                .push(format!("{}: module `{module}` has no place in the layering", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for target in named_modules(code) {
                if target != module && !allowed.contains(&target.as_str()) {
                    wrong.push(format!(
                        "{}:{}: `{module}` imports `{target}`",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn the_scanner_sees_grouped_and_macro_imports() {
    assert_eq!(named_modules("use crate::{batch, names::X};"), ["jobs", "names"]);
    assert_eq!(
        named_modules("app: Arc<$crate::app::App>, e: crate::error::Error"),
        ["app", "error"]
    );
}
