//! The web console's first page as a browser loads it (`loadgen console`): an organization's
//! stack list, opened `n` times in headless Chromium (a new document each time, so the page,
//! its script and stylesheet, `GET /api/user` and the stack listing all come again; the console
//! asks browsers to revalidate its files, which the emulator answers in full). Reads the
//! browser's own Navigation Timing: the page's first byte, DOMContentLoaded (the page, its
//! script and stylesheet in), and the moment the stack table is in the document (the console's
//! `stackhouse:shown` mark, after its two API calls), p50/p99 in milliseconds from the start of
//! the navigation.

use serde_json::{json, Value};

use super::report::p50_p99;
use super::scenario::{Endpoint, Result};
use crate::console::Browser;

/// What the bench measured, milliseconds from navigation start: p50, p99.
#[derive(Debug, Clone)]
pub struct ConsoleLoad {
    pub n: usize,
    pub stacks: usize,
    pub first_byte_ms: (f64, f64),
    pub dom_ready_ms: (f64, f64),
    pub shown_ms: (f64, f64),
}

/// Makes `stacks` stacks in `ep`'s organization, then opens its stack list `n` times.
pub async fn measure(ep: &Endpoint, n: usize, stacks: usize) -> Result<ConsoleLoad> {
    let http = reqwest::Client::new();
    for i in 0..stacks {
        let r = http
            .post(format!("{}/api/stacks/{}/loadgen-console", ep.base, ep.org))
            .header("Authorization", format!("token {}", ep.token))
            .header("Accept", "application/vnd.pulumi+8")
            .json(&json!({"stackName": format!("stack-{i:03}")}))
            .send()
            .await
            .map_err(|e| format!("create a stack: {e}"))?;
        if !r.status().is_success() && r.status().as_u16() != 409 {
            return Err(format!("create a stack: {}", r.status()));
        }
    }
    let b = Browser::start().await;
    let err = |what: &str, e: fantoccini::error::CmdError| format!("{what}: {e}");
    b.client.goto(&format!("{}/signin", ep.base)).await.map_err(|e| err("open", e))?;
    let sign_in = "sessionStorage.setItem('stackhouse.token', arguments[0]); return true;";
    b.client.execute(sign_in, vec![json!(ep.token)]).await.map_err(|e| err("sign in", e))?;
    let timing = "const n = performance.getEntriesByType('navigation')[0];
                  const shown = performance.getEntriesByName('stackhouse:shown')[0];
                  return [n.responseStart, n.domContentLoadedEventEnd, shown ? shown.startTime : -1];";
    let (mut first, mut ready, mut shown) = (Vec::new(), Vec::new(), Vec::new());
    // Two unmeasured visits warm the browser's and the server's connections.
    for i in 0..n + 2 {
        b.client.goto(&format!("{}/{}", ep.base, ep.org)).await.map_err(|e| err("open", e))?;
        let expected = format!("{stacks} of ");
        b.text_until("main [role=status]", |t| t.starts_with(&expected)).await;
        let t = b.client.execute(timing, vec![]).await.map_err(|e| err("timing", e))?;
        let at = |k: usize| t.get(k).and_then(Value::as_f64).unwrap_or(-1.0);
        if at(2) < 0.0 {
            return Err("the page set no stackhouse:shown mark".into());
        }
        if i >= 2 {
            first.push(at(0));
            ready.push(at(1));
            shown.push(at(2));
        }
    }
    b.close().await;
    Ok(ConsoleLoad {
        n,
        stacks,
        first_byte_ms: p50_p99(first),
        dom_ready_ms: p50_p99(ready),
        shown_ms: p50_p99(shown),
    })
}

/// The table's header.
pub const HEADER: &str = "| stacks listed | visits | first byte p50 / p99 | DOMContentLoaded p50 / p99 | stack table shown p50 / p99 |\n|---:|---:|---|---|---|";

/// One row of the table.
pub fn row(r: &ConsoleLoad) -> String {
    let ms = |(a, b): (f64, f64)| format!("{a:.1} / {b:.1} ms");
    format!(
        "| {} | {} | {} | {} | {} |",
        r.stacks,
        r.n,
        ms(r.first_byte_ms),
        ms(r.dom_ready_ms),
        ms(r.shown_ms)
    )
}
