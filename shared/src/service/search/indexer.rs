//! Brings an organization's index up to date with its stacks: the stacks whose version or names
//! differ from what the manifest recorded are read (their current deployment) and diffed
//! against their indexed documents, and only the resources that changed are written; stacks
//! that are gone lose theirs. A run that finds nothing changed writes nothing, so running it
//! again (a retried job, two events for one change) is harmless.
//!
//! Runs of one organization may overlap (two job invocations): each publishes its generation
//! only if the generation it started from is still current, and otherwise starts again from
//! the newer one.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::doc::{self, Changes, StackOf};
use super::index::OrgIndex;
use super::query::normal_unix;
use super::store::{self, Indexed, Manifest, Recorded};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::Query;
use crate::service::stacks::Stack;
use crate::service::{deployments, item_keys, references};

/// Runs of one organization that lost the race this many times in a row give up (the next
/// event's run goes on).
const TRIES: u32 = 8;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The generation published (None: nothing had changed).
    pub generation: Option<i64>,
    /// Stacks whose resources were read again.
    pub stacks_read: usize,
    /// Stacks that were gone.
    pub stacks_removed: usize,
    /// Documents written.
    pub written: usize,
    /// Documents removed (changed ones count here too).
    pub removed: usize,
    /// Documents in the index after the run.
    pub documents: u64,
}

/// Every stack of the organization.
pub(crate) async fn stacks_of(app: &App, org: &str) -> Result<Vec<Stack>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let mut query = Query::prefix(item_keys::org_pk(org), item_keys::STACK_PREFIX, 100);
        query.after = after;
        let page = app.ports.meta.query(query).await?;
        for item in &page.items {
            out.push(Stack::from_item(item)?);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

fn indexed(stack: &Stack) -> Indexed {
    Indexed { version: stack.version, project: stack.project.clone(), stack: stack.stack.clone() }
}

/// The documents of a stack's current deployment, and the stacks it references.
async fn current_docs(app: &App, stack: &Stack) -> Result<(Vec<doc::ResourceDoc>, Vec<String>)> {
    let Some(key) = &stack.deployment_key else {
        return Ok((Vec::new(), Vec::new()));
    };
    let untyped = deployments::read_untyped(app.ports.blobs.as_ref(), key).await?;
    let of = StackOf {
        id: stack.id.to_string(),
        project: stack.project.clone(),
        stack: stack.stack.clone(),
    };
    let changed_at = normal_unix(stack.last_update.unwrap_or_else(|| app.clock.now()));
    let references = references::upstream(&untyped, &stack.org, &stack.project)?;
    Ok((
        doc::docs_of(&of, &untyped, &changed_at)?,
        references.iter().map(ToString::to_string).collect(),
    ))
}

/// Brings `org`'s index up to date; `from_scratch` rebuilds it from every stack (the reindex
/// command).
pub async fn run(app: &App, org: &str, from_scratch: bool) -> Result<Report> {
    for _ in 0..TRIES {
        let (generation, current) = store::load(app, org).await?;
        if let Some(report) = attempt(app, org, generation, &current, from_scratch).await? {
            return Ok(report);
        }
    }
    Err(Error::Unavailable(format!(
        "the search index of {org} changed under {TRIES} runs in a row; the next run goes on"
    )))
}

/// One try from `generation`; None when another run published first.
async fn attempt(
    app: &App,
    org: &str,
    generation: i64,
    current: &Manifest,
    from_scratch: bool,
) -> Result<Option<Report>> {
    let base = if from_scratch { Manifest::default() } else { current.clone() };
    let stacks = stacks_of(app, org).await?;
    let changed: Vec<&Stack> =
        stacks.iter().filter(|s| base.stacks.get(s.id.as_str()) != Some(&indexed(s))).collect();
    let live: std::collections::HashSet<&str> = stacks.iter().map(|s| s.id.as_str()).collect();
    let gone: Vec<String> =
        base.stacks.keys().filter(|id| !live.contains(id.as_str())).cloned().collect();
    let mut report = Report::default();
    if changed.is_empty() && gone.is_empty() && !from_scratch {
        return Ok(Some(report));
    }
    let dir =
        std::env::temp_dir().join(format!("stackhouse-indexing-{}", crate::service::new_id()));
    let outcome = async {
        store::checkout(app, org, &base, &dir).await?;
        let index = Arc::new(OrgIndex::in_dir(&dir)?);
        let mut changes = Changes::default();
        for id in &gone {
            changes.remove.extend(index.docs_of_stack(id)?.iter().map(doc::ResourceDoc::key));
        }
        let mut references = base.references.clone();
        for id in &gone {
            references.remove(id);
        }
        for stack in &changed {
            let old = index.docs_of_stack(stack.id.as_str())?;
            let (docs, referenced) = current_docs(app, stack).await?;
            let next = doc::diff(&old, docs);
            changes.remove.extend(next.remove);
            changes.upsert.extend(next.upsert);
            if referenced.is_empty() {
                references.remove(stack.id.as_str());
            } else {
                references.insert(stack.id.to_string(), referenced);
            }
        }
        report.stacks_read = changed.len();
        report.stacks_removed = gone.len();
        report.written = changes.upsert.len();
        report.removed = changes.remove.len();
        // Indexing is CPU work (tokenising, merging segments): off the async workers.
        let writer = index.clone();
        tokio::task::spawn_blocking(move || writer.apply(&changes))
            .await
            .map_err(|e| Error::internal(format!("indexing task: {e}")))??;
        report.documents = index.len();
        let mut stacks_now: BTreeMap<String, Indexed> = base.stacks.clone();
        for id in &gone {
            stacks_now.remove(id);
        }
        for stack in &changed {
            stacks_now.insert(stack.id.to_string(), indexed(stack));
        }
        let recorded = Recorded { stacks: stacks_now, references };
        store::publish(app, org, generation, current, &dir, recorded).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    match outcome? {
        true => {
            report.generation = Some(generation + 1);
            Ok(Some(report))
        }
        false => Ok(None),
    }
}
