//! The WebDriver harness of the console tests: a headless Chromium session through a
//! chromedriver of its own, the waits and clicks the tests use, axe-core, and the per-page
//! check (accessibility, sideways scrolling, screenshot) of the accessibility test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::server::TestServer;

/// A headless Chromium session through a chromedriver of its own; both end on drop.
pub struct Browser {
    pub client: Client,
    /// Where the browser saves downloads (removed on drop).
    pub downloads: std::path::PathBuf,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.downloads);
    }
}

pub(super) const WAIT: Duration = Duration::from_secs(30);

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session, 1280×900.
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// [`Browser::start`] with more Chromium switches (`--force-dark-mode`).
    pub async fn start_with(switches: &[&str]) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install Debian's `chromium` and \
                     `chromium-driver` (.ci/test does)"
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = reqwest::get(format!("{url}/status")).await;
            if matches!(&ready, Ok(r) if r.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let downloads = std::env::temp_dir()
            .join(format!("stackhouse-downloads-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&downloads).expect("a downloads folder");
        let args: Vec<&str> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ]
        .iter()
        .chain(switches)
        .copied()
        .collect();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": args,
                   "prefs": {"download.default_directory": downloads.to_string_lossy(),
                             "download.prompt_for_download": false}}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a Chromium session through chromedriver");
        Browser { client, downloads, driver }
    }

    /// The first element matching `css`, once there is one (at most 30 s).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Waits (at most 30 s) until the text of the first element matching `css` satisfies
    /// `ok`; that text.
    pub async fn text_until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if ok(&text) {
                        return text;
                    }
                    last = text;
                }
            }
            assert!(Instant::now() < deadline, "{css} never got there; last text: {last:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for el in self.client.find_all(Locator::Css(css)).await.expect("find_all") {
            out.push(el.text().await.expect("text"));
        }
        out
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks the link whose text is exactly `text`.
    pub async fn click_link(&self, text: &str) {
        let link = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("no link {text:?}: {e}"));
        link.click().await.expect("click");
    }

    /// Ends the session (the driver goes on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Runs axe-core (`STACKHOUSE_AXE_JS`, fetched by `.ci/axe-core`) on the current page; its
/// serious and critical violations, one line each.
pub async fn axe_violations(b: &Browser) -> Vec<String> {
    let path = std::env::var("STACKHOUSE_AXE_JS").unwrap_or_else(|_| {
        panic!("STACKHOUSE_AXE_JS is not set: run `eval \"$(bash .ci/axe-core)\"` (.ci/test does)")
    });
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    // WebDriver's scripts are not the page's: its content security policy does not apply.
    b.client.execute(&format!("{source}\nreturn true;"), vec![]).await.expect("inject axe-core");
    let found = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
               .then((r) => done(r.violations
                 .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                 .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)))
               .catch((e) => done([`axe failed: ${e}`]));",
            vec![],
        )
        .await
        .expect("run axe-core");
    serde_json::from_value(found).expect("a list of violations")
}

/// Where the tests save screenshots of the pages (`target/console-screenshots`).
fn screenshots() -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("a screenshots folder");
    dir
}

/// Presses Tab (at most 60 times) until the focused element matches `css` and its text
/// contains `text`.
pub(super) async fn tab_to(b: &Browser, css: &str, text: &str) -> fantoccini::elements::Element {
    let check = "const [css, text] = arguments; const a = document.activeElement;
                 return !!a && a.matches(css) && (a.textContent || '').includes(text);";
    for _ in 0..60 {
        let on = b.client.execute(check, vec![json!(css), json!(text)]).await.expect("focus");
        let focused = b.client.active_element().await.expect("the focused element");
        if on == json!(true) {
            // What has focus shows it (the :focus-visible ring).
            let ring = b
                .client
                .execute("return getComputedStyle(document.activeElement).outlineStyle;", vec![])
                .await
                .expect("style");
            assert_ne!(ring, json!("none"), "{css} {text:?} has focus but shows none");
            return focused;
        }
        focused.send_keys(&fantoccini::key::Key::Tab).await.expect("Tab");
    }
    panic!("Tab never reached {css} {text:?}");
}

/// Opens each of `pages` (name, path, title) at `size` in `b` (signed in), runs axe-core on it,
/// checks it does not scroll sideways, and saves its screenshot as `<name>-<width><tag>.png`;
/// what fails goes into `problems`.
pub(super) async fn check_pages(
    b: &Browser,
    srv: &TestServer,
    pages: &[(&str, String, String)],
    (width, height): (u32, u32),
    tag: &str,
    problems: &mut Vec<String>,
) {
    let dir = screenshots();
    b.client.set_window_size(width, height).await.expect("window size");
    for (name, path, title) in pages {
        b.client.goto(&format!("{}{path}", srv.base)).await.expect("open the page");
        b.text_until("main h1", |t| t == title).await;
        if *name == "update" {
            b.text_until("main [role=log]", |t| t.contains("Resources:")).await;
        }
        if *name == "webhook" {
            // The ping, which could not be delivered (no such host).
            b.text_until("main tbody", |t| t.contains("ping") && t.contains("no")).await;
        }
        for v in axe_violations(b).await {
            problems.push(format!("{name} at {width} px{tag}: {v}"));
        }
        let sideways = b
            .client
            .execute(
                "const d = document.documentElement; return d.scrollWidth - d.clientWidth;",
                vec![],
            )
            .await
            .expect("measure");
        if sideways.as_i64().unwrap_or(0) > 0 {
            problems.push(format!("{name} at {width} px{tag} scrolls sideways by {sideways} px"));
        }
        let png = b.client.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}-{width}{tag}.png")), png).expect("save it");
    }
}
