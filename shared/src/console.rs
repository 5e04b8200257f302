//! The web console's static assets (`shared/console/`), compiled into the binary: the emulator
//! serves them at `/` beside the API; every path that is not an asset is a page of the
//! console's own router, so deep links (the Pulumi CLI's `/<org>/<project>/<stack>`) load the
//! console, which then reads the API with the visitor's token and follows running updates on
//! the event stream's WebSocket ([`EventsUrl`], told to the page). Transport-neutral: what to
//! answer for a path, not how.

/// One file of the console, with what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Where the console's files are served; everything else not under `/api/` is a page.
pub const ASSETS_PREFIX: &str = "/console/";

const INDEX: Asset =
    Asset { content_type: PAGE_TYPE, body: include_bytes!("../console/index.html") };

/// A script of the console (an ES module).
const fn script(body: &'static [u8]) -> Asset {
    Asset { content_type: "text/javascript; charset=utf-8", body }
}

const FILES: &[(&str, Asset)] = &[
    ("console.js", script(include_bytes!("../console/console.js"))),
    ("core.js", script(include_bytes!("../console/core.js"))),
    ("stacks.js", script(include_bytes!("../console/stacks.js"))),
    ("updates.js", script(include_bytes!("../console/updates.js"))),
    ("access.js", script(include_bytes!("../console/access.js"))),
    ("platform.js", script(include_bytes!("../console/platform.js"))),
    (
        "console.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            body: include_bytes!("../console/console.css"),
        },
    ),
];

/// The content security policy of every console answer: the page loads only its own scripts
/// and styles and talks only to this origin and the event stream's WebSocket (`events`, its
/// origin), is never framed, and posts forms nowhere else.
fn policy(events: Option<&str>) -> String {
    let socket = events.map(|e| format!(" {e}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{socket}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// Headers of every console answer besides its type: the policy, no sniffing, no referrer
/// to other sites. The files are small and change with each release, so they are revalidated
/// rather than cached by age.
pub fn headers(events: Option<&EventsUrl>) -> [(&'static str, String); 4] {
    [
        ("Content-Security-Policy", policy(events.map(|e| e.origin.as_str()))),
        ("X-Content-Type-Options", "nosniff".into()),
        ("Referrer-Policy", "no-referrer".into()),
        ("Cache-Control", "no-cache".into()),
    ]
}

/// The event stream's WebSocket URL the console's pages connect to, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsUrl {
    url: String,
    origin: String,
}

impl EventsUrl {
    /// A `ws://` or `wss://` URL (the emulator's WebSocket port, or the WebSocket API's stage).
    pub fn parse(s: &str) -> Result<EventsUrl, String> {
        let u = url::Url::parse(s).map_err(|e| format!("the event stream URL {s:?}: {e}"))?;
        if !matches!(u.scheme(), "ws" | "wss") || u.host_str().is_none() {
            return Err(format!("the event stream URL {s:?} is not a ws:// or wss:// URL"));
        }
        let origin = u.origin().ascii_serialization();
        Ok(EventsUrl { url: s.trim_end_matches('/').to_string(), origin })
    }
}

/// The page, telling its script where the event stream is (a `<meta>` the script reads).
pub fn page(events: Option<&EventsUrl>) -> Vec<u8> {
    let html = String::from_utf8_lossy(INDEX.body);
    let url = events.map(|e| escape(&e.url)).unwrap_or_default();
    html.replacen(
        EVENTS_META,
        &EVENTS_META.replace("content=\"\"", &format!("content=\"{url}\"")),
        1,
    )
    .into_bytes()
}

/// The page's placeholder for the event stream's URL.
const EVENTS_META: &str = "<meta name=\"stackhouse-events\" content=\"\">";

/// `s` safe inside a double-quoted HTML attribute.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// What the console answers for a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The page ([`page`], `text/html`): its script routes by path.
    Page,
    /// One of its files.
    File(Asset),
}

/// The page's content type.
pub const PAGE_TYPE: &str = "text/html; charset=utf-8";

/// What the console answers for `path` (a GET or HEAD not under `/api/`): a file under
/// [`ASSETS_PREFIX`], the page for any other path, None for a missing file.
pub fn answer(path: &str) -> Option<Answer> {
    match path.strip_prefix(ASSETS_PREFIX) {
        Some(name) => FILES.iter().find(|(n, _)| *n == name).map(|(_, a)| Answer::File(*a)),
        None => Some(Answer::Page),
    }
}

/// A whole answer of the console, for a transport to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// 200, or 404 for a missing file.
    pub status: u16,
    pub content_type: &'static str,
    /// [`headers`].
    pub headers: [(&'static str, String); 4],
    pub body: std::borrow::Cow<'static, [u8]>,
}

/// The console's answer to a GET of `path` (not under `/api/`), telling pages where the event
/// stream is when `events` is known.
pub fn serve(path: &str, events: Option<&EventsUrl>) -> Served {
    let (status, content_type, body) = match answer(path) {
        None => (404, "text/plain; charset=utf-8", b"not found\n".as_slice().into()),
        Some(Answer::Page) => (200, PAGE_TYPE, page(events).into()),
        Some(Answer::File(asset)) => (200, asset.content_type, asset.body.into()),
    };
    Served { status, content_type, headers: headers(events), body }
}

/// Whether the console serves `path`: everything outside the API.
pub fn serves(path: &str) -> bool {
    path != "/api" && !path.starts_with("/api/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_links_are_pages_and_assets_are_files() {
        for page in ["/", "/acme", "/acme/web/dev", "/acme/web/dev/updates/3", "/signin"] {
            assert_eq!(answer(page), Some(Answer::Page), "{page}");
        }
        let Some(Answer::File(js)) = answer("/console/console.js") else { panic!("the script") };
        assert!(js.content_type.starts_with("text/javascript"));
        assert_eq!(answer("/console/nope.js"), None);
        assert_eq!(answer("/console/../console.js"), None);
        assert!(serves("/acme") && serves("/") && serves("/apiary"));
        assert!(!serves("/api/user") && !serves("/api"));
    }

    #[test]
    fn the_page_names_the_event_stream_and_the_policy_allows_only_its_origin() {
        let bare = String::from_utf8(page(None)).expect("utf-8");
        assert!(bare.contains(EVENTS_META), "{bare}");
        assert!(headers(None)[0].1.contains("connect-src 'self';"));
        let events = EventsUrl::parse("wss://abc.execute-api.eu-west-1.amazonaws.com/events/")
            .expect("a WebSocket URL");
        let html = String::from_utf8(page(Some(&events))).expect("utf-8");
        assert!(html.contains(
            "<meta name=\"stackhouse-events\" content=\"wss://abc.execute-api.eu-west-1.amazonaws.com/events\">"
        ));
        let csp = &headers(Some(&events))[0].1;
        assert!(csp.contains("connect-src 'self' wss://abc.execute-api.eu-west-1.amazonaws.com;"));
        let odd = EventsUrl::parse("ws://127.0.0.1:8081/?a=\"<b>").expect("a URL");
        assert!(!String::from_utf8(page(Some(&odd))).expect("utf-8").contains("\"<b>"));
        for bad in ["http://127.0.0.1:8081", "not a url", "ws://"] {
            assert!(EventsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_page_refers_only_to_files_it_has() {
        let html = std::str::from_utf8(INDEX.body).expect("utf-8");
        // Every file is named by the page (the scripts as preloads, so the browser fetches
        // them at once rather than one import after another), and every import is a file.
        for (name, _) in FILES {
            assert!(html.contains(&format!("\"{ASSETS_PREFIX}{name}\"")), "{name}");
        }
        for (name, asset) in FILES.iter().filter(|(n, _)| n.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).expect("utf-8");
            for import in text.split("from \"./").skip(1) {
                let file = import.split('"').next().unwrap_or_default();
                assert!(FILES.iter().any(|(n, _)| *n == file), "{name} imports {file}");
            }
        }
    }
}
