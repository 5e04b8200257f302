//! The web console's static assets (`shared/console/`), compiled into the binary: the emulator
//! serves them at `/` beside the API; every path that is not an asset is a page of the
//! console's own router, so deep links (the Pulumi CLI's `/<org>/<project>/<stack>`) load the
//! console, which then reads the API with the visitor's token. Transport-neutral: what to
//! answer for a path, not how.

/// One file of the console, with what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Where the console's files are served; everything else not under `/api/` is a page.
pub const ASSETS_PREFIX: &str = "/console/";

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../console/index.html"),
};

const FILES: &[(&str, Asset)] = &[
    (
        "console.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!("../console/console.js"),
        },
    ),
    (
        "console.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            body: include_bytes!("../console/console.css"),
        },
    ),
];

/// Headers every console answer carries: the page loads only its own scripts and styles and
/// talks only to this origin, is never framed, and leaks no URL to other sites. The files are
/// small and change with each release, so they are revalidated rather than cached by age.
pub const HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
];

/// What the console answers for `path` (a GET or HEAD not under `/api/`): a file under
/// [`ASSETS_PREFIX`], the page for any other path, None for a missing file.
pub fn answer(path: &str) -> Option<Asset> {
    match path.strip_prefix(ASSETS_PREFIX) {
        Some(name) => FILES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a),
        None => Some(INDEX),
    }
}

/// Whether the console serves `path`: everything outside the API.
pub fn serves(path: &str) -> bool {
    path != "/api" && !path.starts_with("/api/")
}

/// The console's files by name with their sizes, for the docs and the size check.
pub fn files() -> impl Iterator<Item = (&'static str, usize)> {
    std::iter::once(("index.html", INDEX.body.len()))
        .chain(FILES.iter().map(|(n, a)| (*n, a.body.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_links_are_pages_and_assets_are_files() {
        for page in ["/", "/acme", "/acme/web/dev", "/acme/web/dev/updates/3", "/signin"] {
            assert_eq!(answer(page), Some(INDEX), "{page}");
        }
        let js = answer("/console/console.js").expect("the script");
        assert!(js.content_type.starts_with("text/javascript"));
        assert_eq!(answer("/console/nope.js"), None);
        assert_eq!(answer("/console/../console.js"), None);
        assert!(serves("/acme") && serves("/") && serves("/apiary"));
        assert!(!serves("/api/user") && !serves("/api"));
    }

    #[test]
    fn the_page_refers_only_to_files_it_has() {
        let html = std::str::from_utf8(INDEX.body).expect("utf-8");
        for name in ["console.js", "console.css"] {
            assert!(html.contains(&format!("{ASSETS_PREFIX}{name}")), "{name}");
            assert!(answer(&format!("{ASSETS_PREFIX}{name}")).is_some(), "{name}");
        }
    }
}
