//! History retention and blob garbage collection (the `job-history-retention` job).
//!
//! Three kinds of garbage, each removed without ever touching a stack's current deployment:
//!
//! 1. **History beyond the policy** ([`Policy`], `STACKHOUSE_HISTORY_RETENTION`): `all` (the
//!    default) keeps everything, `versions:N` the newest N versions, `days:N` the versions that
//!    ended in the last N days. The stack's current version is always kept. A pruned version
//!    loses its deployment blob (unless a kept version or the stack still points to it), the
//!    scratch blobs of the update that made it, and its history item — blob first: a crash in
//!    between leaves a history item the next pass prunes again, never an unreachable blob.
//! 2. **Scratch blobs of ended updates** (`updates/<id>/…`: checkpoints, journal segments,
//!    journal snapshots, engine events), once the update ended more than the grace period ago
//!    (`STACKHOUSE_ORPHAN_GRACE_SECONDS`, default 7 days). Ending an update writes an
//!    `SYS#ENDED` index item in the finalize transaction, so this is one query, not a listing
//!    of the bucket.
//! 3. **Orphaned deployments** (`deployments/<stack id>/<version>.json.gz` that no history item and
//!    not the stack point to): crash leftovers of "write the blob, then publish the pointer"
//!    (docs/ARCHITECTURE.md, Blob first, then pointer). A blob is an orphan only when its version
//!    is not newer than the stack's version read *before* the listing (a newer one may be a
//!    publication in flight), and it is removed once the version it was written for ended more than
//!    the grace period ago (or that version's history is gone).
//!
//! Each run is bounded ([`Limits`]) and resumable: the stack pass keeps a cursor (organization,
//! stack) in `SYS#JOBS`, so a large installation is covered over several runs. A stack's blobs
//! are listed only when it changed within the grace period before the previous complete pass
//! started: an orphan can only become removable after such a change, and every earlier one was
//! seen by an earlier pass. Every step is idempotent; concurrent runs only repeat work.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::item_keys;
use super::stacks::Stack;
use crate::app::App;
use crate::error::Result;
use crate::ports::{Item, Query, SortKey, Value};

/// Default grace period before crash leftovers and scratch blobs are removed: 7 days.
pub const DEFAULT_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// Which stack versions to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Keep every version (the default).
    #[default]
    KeepAll,
    /// Keep the newest N versions.
    Versions(u32),
    /// Keep the versions that ended within the last N days.
    Days(u32),
}

impl Policy {
    /// Parses `all`, `versions:N` or `days:N` (N ≥ 1).
    pub fn parse(text: &str) -> std::result::Result<Policy, String> {
        let text = text.trim();
        if text.is_empty() || text == "all" {
            return Ok(Policy::KeepAll);
        }
        let bad = || format!("retention policy must be all, versions:N or days:N, not {text:?}");
        let (kind, n) = text.split_once(':').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        match kind.trim() {
            "versions" => Ok(Policy::Versions(n)),
            "days" => Ok(Policy::Days(n)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::KeepAll => write!(f, "all"),
            Policy::Versions(n) => write!(f, "versions:{n}"),
            Policy::Days(n) => write!(f, "days:{n}"),
        }
    }
}

/// How much one run may do before it saves its cursor and stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Stacks visited per run.
    pub stacks_per_run: usize,
    /// Ended updates whose scratch blobs are removed per run.
    pub ended_per_run: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { stacks_per_run: 500, ended_per_run: 1000 }
    }
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// The policy applied.
    pub policy: String,
    /// Stacks looked at.
    pub stacks_visited: usize,
    /// History items removed.
    pub versions_pruned: usize,
    /// Deployment blobs removed with pruned versions.
    pub deployments_deleted: usize,
    /// Orphaned deployment blobs removed.
    pub orphans_deleted: usize,
    /// Ended updates whose scratch blobs were removed.
    pub updates_cleaned: usize,
    /// Scratch blobs removed (under `updates/`).
    pub update_blobs_deleted: usize,
    /// Sealed values of expired environment sessions removed.
    pub sessions_deleted: usize,
    /// Deleted environments whose revisions, tags, grants and blobs were removed.
    pub environments_purged: usize,
    /// The stack pass reached its end in this run (the next run starts a new pass).
    pub pass_complete: bool,
    /// Stacks or updates skipped after an error (retried by the next pass).
    pub errors: usize,
}

/// One run with the default [`Limits`].
pub async fn run(app: &App, now: i64) -> Result<RetentionReport> {
    run_with(app, now, &Limits::default()).await
}

/// One bounded run at `now`: scratch blobs of updates ended before the grace period, then the
/// next stacks of the resumable stack pass.
pub async fn run_with(app: &App, now: i64, limits: &Limits) -> Result<RetentionReport> {
    let mut report = RetentionReport {
        policy: app.settings.history_retention.to_string(),
        ..Default::default()
    };
    clean_ended_updates(app, now, limits.ended_per_run, &mut report).await?;
    report.sessions_deleted =
        super::environments::sessions::sweep(app, now, limits.ended_per_run).await?;
    report.environments_purged = super::environments::purge::run(app, limits.ended_per_run).await?;
    stack_pass(app, now, limits.stacks_per_run, &mut report).await?;
    Ok(report)
}

/// Deletes every blob under `prefix`; returns how many.
pub(crate) async fn delete_prefix(app: &App, prefix: &str) -> Result<usize> {
    let blobs = app.ports.blobs.as_ref();
    let mut deleted = 0;
    let mut after = None;
    loop {
        let page = blobs.list(prefix, after).await?;
        for key in &page.keys {
            blobs.delete(key).await?;
            deleted += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(deleted),
        }
    }
}

fn update_prefix(update_id: &str) -> String {
    format!("updates/{update_id}/")
}

async fn clean_ended_updates(
    app: &App,
    now: i64,
    budget: usize,
    report: &mut RetentionReport,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let cutoff = now - app.settings.orphan_grace_seconds;
    if cutoff < 0 || budget == 0 {
        return Ok(());
    }
    // Sort keys are `<ended:010>#…`: everything up to `<cutoff + 1:010>` ended at or before
    // the cutoff (the bound itself is shorter than any key, so it sorts before that second's).
    let mut query = Query {
        pk: item_keys::ENDED_PK.to_string(),
        sk: SortKey::Between("0".into(), format!("{:010}", cutoff + 1)),
        ascending: true,
        limit: budget.min(100),
        after: None,
    };
    let mut left = budget;
    while left > 0 {
        query.limit = left.min(100);
        let page = meta.query(query.clone()).await?;
        for item in &page.items {
            left = left.saturating_sub(1);
            let Some(update_id) = item.s("update_id").filter(|id| valid_id(id)) else {
                meta.delete(&item.pk, &item.sk, None).await?;
                continue;
            };
            match delete_prefix(app, &update_prefix(update_id)).await {
                Ok(n) => {
                    report.update_blobs_deleted += n;
                    report.updates_cleaned += 1;
                    meta.delete(&item.pk, &item.sk, None).await?;
                }
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!(update_id, error = %e, "retention: scratch blobs left for later");
                }
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    Ok(())
}

/// Ids are hex (`new_id`); anything else in an index item is not used to build a key.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Sort key of the stack pass's cursor under [`item_keys::JOBS_PK`].
const CURSOR_SK: &str = "history-retention";

/// Where the stack pass stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cursor {
    /// Organization being visited (None: start with the first).
    org: Option<String>,
    /// Last stack sort key visited in it (None: from its first stack).
    after: Option<String>,
    /// Start of the pass in progress.
    pass_started: Option<i64>,
    /// Start of the last complete pass (0: none yet).
    prev_pass_started: i64,
}

impl Cursor {
    fn from_item(item: Option<&Item>) -> Cursor {
        let Some(item) = item else { return Cursor::default() };
        Cursor {
            org: item.s("org").map(str::to_string),
            after: item.s("after").map(str::to_string),
            pass_started: item.n("pass_started"),
            prev_pass_started: item.n("prev_pass_started").unwrap_or(0),
        }
    }

    fn to_item(&self) -> Item {
        let mut item = Item::new(item_keys::JOBS_PK, CURSOR_SK)
            .with("prev_pass_started", Value::N(self.prev_pass_started));
        if let Some(o) = &self.org {
            item.set("org", Value::S(o.clone()));
        }
        if let Some(a) = &self.after {
            item.set("after", Value::S(a.clone()));
        }
        if let Some(p) = self.pass_started {
            item.set("pass_started", Value::N(p));
        }
        item
    }
}

/// The first organization after `after` (None: the first of all).
async fn next_org(app: &App, after: Option<&str>) -> Result<Option<String>> {
    let mut query = Query::prefix(item_keys::ORGS_PK, "ORG#", 1);
    query.after = after.map(item_keys::org_index_sk);
    let page = app.ports.meta.query(query).await?;
    Ok(page.items.first().and_then(|i| i.sk.strip_prefix("ORG#")).map(str::to_string))
}

async fn stack_pass(
    app: &App,
    now: i64,
    budget: usize,
    report: &mut RetentionReport,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let mut cursor = Cursor::from_item(meta.get(item_keys::JOBS_PK, CURSOR_SK).await?.as_ref());
    let pass_started = *cursor.pass_started.get_or_insert(now);
    let mut left = budget;
    let mut org = match cursor.org.clone() {
        Some(o) => Some(o),
        None => next_org(app, None).await?,
    };
    let mut after = cursor.after.clone();
    while let Some(o) = org {
        loop {
            if left == 0 {
                cursor.org = Some(o);
                cursor.after = after;
                meta.put(cursor.to_item(), None).await?;
                return Ok(());
            }
            let mut query =
                Query::prefix(item_keys::org_pk(&o), item_keys::STACK_PREFIX, left.min(100));
            query.after = after.clone();
            let page = meta.query(query).await?;
            for item in &page.items {
                left = left.saturating_sub(1);
                after = Some(item.sk.clone());
                report.stacks_visited += 1;
                let outcome = match Stack::from_item(item) {
                    Ok(stack) => {
                        visit_stack(app, &stack, now, cursor.prev_pass_started, report).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    report.errors += 1;
                    tracing::warn!(org = %o, sk = %item.sk, error = %e, "retention: stack skipped");
                }
            }
            if page.next.is_none() {
                break;
            }
        }
        org = next_org(app, Some(&o)).await?;
        after = None;
    }
    let done = Cursor { prev_pass_started: pass_started, ..Cursor::default() };
    meta.put(done.to_item(), None).await?;
    report.pass_complete = true;
    Ok(())
}

/// One history item, as retention needs it.
#[derive(Debug, Clone)]
struct Version {
    sk: String,
    version: i64,
    deployment_key: Option<String>,
    update_id: Option<String>,
    end_time: i64,
}

async fn versions(app: &App, stack_id: &str) -> Result<Vec<Version>> {
    let mut out = Vec::new();
    let mut query = Query::prefix(item_keys::stack_id_pk(stack_id), item_keys::VERSION_PREFIX, 200);
    loop {
        let page = app.ports.meta.query(query.clone()).await?;
        for item in &page.items {
            let Some(version) = item.n("version") else { continue };
            let end_time = item
                .s("info")
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .and_then(|info| info.get("endTime").and_then(serde_json::Value::as_i64))
                .unwrap_or(0);
            out.push(Version {
                sk: item.sk.clone(),
                version,
                deployment_key: item.s("deployment_key").map(str::to_string),
                update_id: item.s("update_id").map(str::to_string),
                end_time,
            });
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    Ok(out)
}

/// Whether `policy` keeps `v`, the `rank`-th newest version (0 = newest), of a stack at
/// `current`.
fn keeps(policy: Policy, v: &Version, rank: usize, current: i64, now: i64) -> bool {
    v.version >= current
        || match policy {
            Policy::KeepAll => true,
            Policy::Versions(n) => rank < n as usize,
            Policy::Days(n) => v.end_time >= now - i64::from(n) * 86_400,
        }
}

/// The version a deployment blob was written for: `deployments/<id>/<version>.json.gz`.
fn blob_version(key: &str, stack_id: &str) -> Option<i64> {
    let name = key.strip_prefix("deployments/")?.strip_prefix(stack_id)?.strip_prefix('/')?;
    let digits = name.strip_suffix(".json.gz")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

async fn visit_stack(
    app: &App,
    stack: &Stack,
    now: i64,
    prev_pass_started: i64,
    report: &mut RetentionReport,
) -> Result<()> {
    let policy = app.settings.history_retention;
    let grace = app.settings.orphan_grace_seconds;
    let list_blobs =
        stack.last_update.is_some_and(|t| t.saturating_add(grace) >= prev_pass_started);
    if policy == Policy::KeepAll && !list_blobs {
        return Ok(());
    }
    let meta = app.ports.meta.as_ref();
    let blobs = app.ports.blobs.as_ref();
    // The stack was read before its history: every version up to `stack.version` is in it.
    let mut all = versions(app, &stack.id).await?;
    all.sort_by_key(|v| std::cmp::Reverse(v.version));
    let mut kept: Vec<Version> = Vec::new();
    let mut pruned: Vec<Version> = Vec::new();
    for (rank, v) in all.into_iter().enumerate() {
        if keeps(policy, &v, rank, stack.version, now) {
            kept.push(v);
        } else {
            pruned.push(v);
        }
    }
    let mut referenced: HashSet<String> =
        kept.iter().filter_map(|v| v.deployment_key.clone()).collect();
    referenced.extend(stack.deployment_key.clone());
    let pk = item_keys::stack_id_pk(&stack.id);
    for v in pruned.iter().rev() {
        if let Some(key) = v.deployment_key.as_deref().filter(|k| !referenced.contains(*k)) {
            blobs.delete(key).await?;
            report.deployments_deleted += 1;
            referenced.insert(key.to_string());
        }
        if let Some(id) = v.update_id.as_deref().filter(|id| valid_id(id)) {
            report.update_blobs_deleted += delete_prefix(app, &update_prefix(id)).await?;
        }
        meta.delete(&pk, &v.sk, None).await?;
        report.versions_pruned += 1;
    }
    if !list_blobs {
        return Ok(());
    }
    // Blobs of versions a deleted item pointed to count as referenced above only to delete them
    // once; the orphan check needs what the remaining items point to.
    let mut live: HashSet<String> = kept.iter().filter_map(|v| v.deployment_key.clone()).collect();
    live.extend(stack.deployment_key.clone());
    let ended: BTreeMap<i64, i64> = kept.iter().map(|v| (v.version, v.end_time)).collect();
    let prefix = format!("deployments/{}/", stack.id);
    let mut after = None;
    loop {
        let page = blobs.list(&prefix, after).await?;
        for key in &page.keys {
            if live.contains(key) {
                continue;
            }
            let Some(version) = blob_version(key, &stack.id) else { continue };
            if version > stack.version {
                continue; // possibly a publication in flight
            }
            let removable = match ended.get(&version) {
                Some(end_time) => end_time.saturating_add(grace) <= now,
                None => true, // that version's history is gone
            };
            if removable {
                blobs.delete(key).await?;
                report.orphans_deleted += 1;
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        assert_eq!(Policy::parse("").unwrap(), Policy::KeepAll);
        assert_eq!(Policy::parse("all").unwrap(), Policy::KeepAll);
        assert_eq!(Policy::parse("versions:3").unwrap(), Policy::Versions(3));
        assert_eq!(Policy::parse(" days: 30 ").unwrap(), Policy::Days(30));
        for bad in ["versions:0", "days:", "weeks:2", "versions:-1", "3", "versions:x"] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        for p in [Policy::KeepAll, Policy::Versions(2), Policy::Days(7)] {
            assert_eq!(Policy::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn blob_versions_are_read_from_keys() {
        assert_eq!(blob_version("deployments/abc/0000000012.json.gz", "abc"), Some(12));
        assert_eq!(blob_version("deployments/abc/12.json", "abc"), None);
        assert_eq!(blob_version("deployments/abcd/0000000001.json.gz", "abc"), None);
        assert_eq!(blob_version("deployments/abc/x.json.gz", "abc"), None);
    }

    #[test]
    fn the_current_version_is_always_kept() {
        let v = |version, end_time| Version {
            sk: String::new(),
            version,
            deployment_key: None,
            update_id: None,
            end_time,
        };
        let now = 100 * 86_400;
        assert!(keeps(Policy::Versions(1), &v(5, 0), 3, 5, now));
        assert!(!keeps(Policy::Versions(1), &v(4, now), 1, 5, now));
        assert!(keeps(Policy::Days(1), &v(4, now - 3600), 1, 5, now));
        assert!(!keeps(Policy::Days(1), &v(4, now - 2 * 86_400), 1, 5, now));
        assert!(keeps(Policy::Days(1), &v(5, 0), 0, 5, now));
        assert!(keeps(Policy::KeepAll, &v(1, 0), 9, 5, now));
    }
}
