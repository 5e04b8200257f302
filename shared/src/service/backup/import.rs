//! Restoring an organization from an [`Archive`] into a deployment where it is empty (the order
//! of the writes and why a re-run is safe are in the module docs of [`super`]).

use std::collections::BTreeSet;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};

use super::archive::{missing, Archive};
use super::export::IMPORT_SK;
use super::format::{self, b64, Keys, Manifest, Records};
use super::seal::{Passphrase, Sealer};
use crate::app::App;
use crate::error::{Error, Result};
use crate::ports::{Condition, EncryptionContext, Item, MetaError, Query, SortKey, Value};
use crate::service::access::query_all;
use crate::service::item_keys;
use crate::service::secrets::CONTEXT_KEY;

/// What an import needs besides the archive.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The passphrase the export was made with.
    pub passphrase: Passphrase,
}

/// How an import found the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Empty: restored.
    Imported,
    /// An earlier run of this same import had stopped midway: finished.
    Resumed,
    /// This export was imported already: nothing done (a later change stays as it is).
    AlreadyImported,
}

/// What an import restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// The organization.
    pub org: String,
    /// Stacks.
    pub stacks: usize,
    /// Stack versions.
    pub versions: usize,
    /// Metadata items written.
    pub records: usize,
    /// What this run did.
    pub outcome: Outcome,
}

/// One stack to restore.
struct StackPlan {
    id: String,
    /// The stack item, written last.
    item: Item,
    /// History versions and grants.
    rest: Vec<Item>,
    /// (archive path, blob key) of each version's deployment.
    blobs: Vec<(String, String)>,
}

/// Everything an import writes, read and checked before the first write.
struct Plan {
    org: Vec<Item>,
    users: Vec<Item>,
    tokens: Vec<Item>,
    hooks: Vec<Item>,
    audit: Vec<Item>,
    stacks: Vec<StackPlan>,
    keys: Vec<(String, [u8; 32])>,
}

fn bad(path: &str, what: String) -> Error {
    Error::BadRequest(format!("{path}: {what}"))
}

/// Reads a listed file and checks its size and digest.
async fn read_checked(from: &dyn Archive, m: &Manifest, path: &str) -> Result<bytes::Bytes> {
    let entry = m.file(path)?;
    let body = from.read(path).await?.ok_or_else(|| missing(from, path))?;
    if !entry.matches(&body) {
        return Err(bad(path, "its size or SHA-256 differs from the manifest: damaged".into()));
    }
    Ok(body)
}

async fn records(
    from: &dyn Archive,
    m: &Manifest,
    path: &str,
    allowed: impl Fn(&Item) -> bool,
) -> Result<Vec<Item>> {
    let body = read_checked(from, m, path).await?;
    let records: Records = format::from_json(path, &body)?;
    let items = records.records.iter().map(|r| r.to_item()).collect::<Result<Vec<_>>>()?;
    if let Some(i) = items.iter().find(|i| !allowed(i)) {
        return Err(bad(
            path,
            format!("record {} {} is not one this organization's export may hold", i.pk, i.sk),
        ));
    }
    Ok(items)
}

impl Plan {
    async fn read(from: &dyn Archive, m: &Manifest, sealer: &Sealer) -> Result<Plan> {
        let org = m.org.as_str();
        let org_pk = item_keys::org_pk(org);
        let org_items = records(from, m, format::ORG_RECORDS, |i| {
            i.pk == org_pk && i.sk != IMPORT_SK && !i.sk.starts_with(item_keys::STACK_PREFIX)
        })
        .await?;
        let members: BTreeSet<String> = org_items
            .iter()
            .filter_map(|i| i.sk.strip_prefix("MEMBER#").map(str::to_string))
            .collect();
        let users = records(from, m, format::USER_RECORDS, |i| {
            let member = i.pk.strip_prefix("USER#").is_some_and(|u| members.contains(u));
            member
                && (i.sk == item_keys::USER_SK
                    || i.sk == item_keys::user_org_sk(org)
                    || i.sk.starts_with(&item_keys::user_teams_prefix(org))
                    || i.sk.starts_with(item_keys::OWNER_TOKEN_PREFIX))
        })
        .await?;
        let listed: BTreeSet<&str> =
            org_items.iter().chain(&users).filter_map(|i| i.s("hash")).collect();
        let tokens = records(from, m, format::TOKEN_RECORDS, |i| {
            let hash = i.pk.strip_prefix("TOKEN#").unwrap_or_default();
            let owned = i.s("org") == Some(org) || i.s("user").is_some_and(|u| members.contains(u));
            i.sk == item_keys::TOKEN_SK && listed.contains(hash) && owned
        })
        .await?;
        let hooks_pk = item_keys::hooks_pk(org);
        let hooks = records(from, m, format::WEBHOOK_RECORDS, |i| i.pk == hooks_pk).await?;
        let audit_pk = item_keys::audit_pk(org);
        let audit = records(from, m, format::AUDIT_RECORDS, |i| i.pk == audit_pk).await?;

        let stacks = futures::stream::iter(&m.stacks)
            .map(|entry| read_stack(from, m, entry))
            .buffered(PARALLEL_WRITES)
            .try_collect::<Vec<_>>()
            .await?;

        let key_ids: BTreeSet<&str> = m
            .stacks
            .iter()
            .map(|s| s.id.as_str())
            .chain(hooks.iter().filter_map(|h| h.s("key_id")))
            .collect();
        let body = read_checked(from, m, format::KEYS).await?;
        let sealed: Keys = format::from_json(format::KEYS, &body)?;
        let mut keys = Vec::new();
        for k in &sealed.keys {
            if !key_ids.contains(k.key_id.as_str()) {
                return Err(bad(format::KEYS, format!("key {} belongs to nothing", k.key_id)));
            }
            let plain = b64()
                .decode(&k.sealed)
                .ok()
                .and_then(|s| sealer.open(&format!("datakey:{}", k.key_id), &s))
                .and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok())
                .ok_or_else(|| {
                    bad(format::KEYS, format!("the key of {} does not open: damaged", k.key_id))
                })?;
            keys.push((k.key_id.clone(), plain));
        }
        Ok(Plan { org: org_items, users, tokens, hooks, audit, stacks, keys })
    }

    fn records(&self) -> usize {
        let stacks: usize = self.stacks.iter().map(|s| 1 + s.rest.len()).sum();
        self.org.len()
            + self.users.len()
            + self.tokens.len()
            + self.hooks.len()
            + self.audit.len()
            + stacks
            + self.keys.len()
    }
}

/// Reads and checks one stack's records, and that each of its deployments is there intact.
async fn read_stack(
    from: &dyn Archive,
    m: &Manifest,
    entry: &format::StackEntry,
) -> Result<StackPlan> {
    let path = format::stack_records(&entry.id);
    let org_pk = item_keys::org_pk(&m.org);
    let id_pk = item_keys::stack_id_pk(&entry.id);
    let items = records(from, m, &path, |i| {
        (i.pk == org_pk
            && i.sk.starts_with(item_keys::STACK_PREFIX)
            && i.s("id") == Some(&entry.id))
            || (i.pk == id_pk
                && (i.sk.starts_with(item_keys::VERSION_PREFIX)
                    || i.sk.starts_with(item_keys::STACK_TEAM_PREFIX)
                    || i.sk.starts_with(item_keys::STACK_USER_PREFIX)))
    })
    .await?;
    let (heads, rest): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|i| i.pk == org_pk);
    let [item] = <[Item; 1]>::try_from(heads)
        .map_err(|_| bad(&path, "it must hold exactly one stack item".into()))?;
    // Deployments live under the stack's own prefix; anything else would let an export
    // overwrite other blobs.
    let own_prefix = format!("deployments/{}/", entry.id);
    let mut blobs = Vec::new();
    for version in rest.iter().filter(|i| i.sk.starts_with(item_keys::VERSION_PREFIX)) {
        let Some(key) = version.s("deployment_key") else { continue };
        let n =
            version.n("version").ok_or_else(|| bad(&path, "a version lacks its number".into()))?;
        if !key.starts_with(&own_prefix) || crate::ports::blob::validate_key(key).is_err() {
            return Err(bad(&path, format!("version {n} points at a foreign blob {key:?}")));
        }
        let file = format::version_blob(&entry.id, n);
        read_checked(from, m, &file).await?;
        blobs.push((file, key.to_string()));
    }
    if let Some(key) = item.s("deployment_key") {
        if !blobs.iter().any(|(_, k)| k == key) {
            return Err(bad(&path, format!("the stack's deployment {key} is not in the export")));
        }
    }
    Ok(StackPlan { id: entry.id.clone(), item, rest, blobs })
}

/// Whose a token is: the attributes that name its subject.
fn subject(i: &Item) -> [Option<&str>; 4] {
    [i.s("kind"), i.s("user"), i.s("org"), i.s("team")]
}

/// `state` of the import marker while the import runs, and once it is done.
const RUNNING: &str = "running";
const FINISHED: &str = "finished";

/// Fails unless the organization may receive this export: absent or holding only its item and
/// members, or holding the marker of an import of this same export.
async fn check_target(app: &App, m: &Manifest, plan: &Plan) -> Result<Outcome> {
    let meta = app.ports.meta.as_ref();
    let org = m.org.as_str();
    let all = |pk: String| Query { pk, sk: SortKey::All, ascending: true, limit: 100, after: None };
    let existing = query_all(meta, all(item_keys::org_pk(org))).await?;
    if let Some(marker) = existing.iter().find(|i| i.sk == IMPORT_SK) {
        let finished = marker.s("state") == Some(FINISHED);
        match marker.s("export_id") {
            Some(id) if id == m.export_id && finished => return Ok(Outcome::AlreadyImported),
            Some(id) if id == m.export_id => return Ok(Outcome::Resumed),
            // A finished import of another export says nothing: what it left is judged below.
            _ if finished => {}
            other => {
                return Err(Error::Conflict(format!(
                    "organization '{org}' has an unfinished import of export {}; run that \
                     import again to finish it",
                    other.unwrap_or("?")
                )))
            }
        }
    }
    let not_empty = |what: String| {
        Error::Conflict(format!(
            "organization '{org}' is not empty ({what}); an import only restores into an \
             organization without stacks, teams, tokens or webhooks. Nothing was changed."
        ))
    };
    let settled =
        |sk: &str| sk == item_keys::ORG_SK || sk == IMPORT_SK || sk.starts_with("MEMBER#");
    if let Some(i) = existing.iter().find(|i| !settled(&i.sk)) {
        return Err(not_empty(format!("it holds {}", i.sk)));
    }
    let hooks = meta.query(Query { limit: 1, ..all(item_keys::hooks_pk(org)) }).await?;
    if !hooks.items.is_empty() {
        return Err(not_empty("it has webhooks".into()));
    }
    for s in &plan.stacks {
        let taken = meta.query(Query { limit: 1, ..all(item_keys::stack_id_pk(&s.id)) }).await?;
        if !taken.items.is_empty() {
            return Err(Error::Conflict(format!(
                "stack id {} is in use in this deployment already (was this export imported \
                 under another organization?). Nothing was changed.",
                s.id
            )));
        }
    }
    for t in &plan.tokens {
        if let Some(there) = meta.get(&t.pk, &t.sk).await? {
            if subject(&there) != subject(t) {
                return Err(Error::Conflict(format!(
                    "token {} exists in this deployment for someone else. Nothing was changed.",
                    t.s("id").unwrap_or("?")
                )));
            }
        }
    }
    Ok(Outcome::Imported)
}

/// Most writes in flight at once.
const PARALLEL_WRITES: usize = 16;

async fn put_all(app: &App, items: &[Item]) -> Result<()> {
    futures::stream::iter(items.iter().cloned())
        .map(|item| async move { app.ports.meta.put(item, None).await.map_err(Error::from) })
        .buffer_unordered(PARALLEL_WRITES)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Restores the organization of the export at `from`. Reads and checks everything first;
/// refuses (changing nothing) a damaged export, a wrong passphrase, or an organization that is
/// not empty. Re-running it after a crash finishes the import.
pub async fn import(app: &App, from: &dyn Archive, opts: &ImportOptions) -> Result<ImportSummary> {
    let body = from.read(format::MANIFEST).await?.ok_or_else(|| {
        Error::BadRequest(format!(
            "no {} at {}: not an export, or an export that did not finish",
            format::MANIFEST,
            from.location()
        ))
    })?;
    let m = Manifest::parse(&body)?;
    let sealer = Sealer::open_export(&opts.passphrase, &m.sealing, &m.export_id)?;
    if !sealer.verify(&m.unsigned()?, &m.mac) {
        return Err(Error::BadRequest(format!(
            "{} was altered after the export: its MAC does not match",
            format::MANIFEST
        )));
    }
    let plan = Plan::read(from, &m, &sealer).await?;
    let outcome = check_target(app, &m, &plan).await?;
    let meta = app.ports.meta.as_ref();
    let org = m.org.as_str();
    let now = app.clock.now();
    let versions = plan
        .stacks
        .iter()
        .flat_map(|s| &s.rest)
        .filter(|i| i.sk.starts_with(item_keys::VERSION_PREFIX))
        .count();
    let summary = ImportSummary {
        org: org.to_string(),
        stacks: plan.stacks.len(),
        versions,
        records: plan.records(),
        outcome,
    };
    if outcome == Outcome::AlreadyImported {
        return Ok(summary);
    }

    let marker = |state: &str| {
        Item::new(item_keys::org_pk(org), IMPORT_SK)
            .with("export_id", Value::S(m.export_id.clone()))
            .with("state", Value::S(state.to_string()))
            .with("started", Value::N(now))
    };
    let mine = Condition::NotExists
        .or(Condition::Equals("export_id".into(), Value::S(m.export_id.clone())))
        .or(Condition::Equals("state".into(), Value::S(FINISHED.into())));
    match meta.put(marker(RUNNING), Some(mine)).await {
        Err(MetaError::ConditionFailed) => {
            return Err(Error::Conflict(format!(
                "another import into organization '{org}' started meanwhile"
            )))
        }
        other => other?,
    }

    // Blobs before anything points at them.
    futures::stream::iter(plan.stacks.iter().flat_map(|s| &s.blobs))
        .map(|(file, key)| async {
            let body = read_checked(from, &m, file).await?;
            app.ports.blobs.put(key, body).await.map_err(Error::from)
        })
        .buffer_unordered(PARALLEL_WRITES)
        .try_collect::<Vec<()>>()
        .await?;
    let keys = futures::stream::iter(&plan.keys)
        .map(|(key_id, plaintext)| async move {
            let context = EncryptionContext::from([(CONTEXT_KEY.to_string(), key_id.clone())]);
            let wrapped = app.ports.keys.wrap_data_key(plaintext, &context).await?;
            Ok::<_, Error>(
                Item::new(item_keys::stack_id_pk(key_id), item_keys::DATAKEY_SK)
                    .with("stack_id", Value::S(key_id.clone()))
                    .with("wrapped", Value::B(wrapped))
                    .with("format", Value::N(1))
                    .with("created", Value::N(now)),
            )
        })
        .buffer_unordered(PARALLEL_WRITES)
        .try_collect::<Vec<_>>()
        .await?;
    put_all(app, &keys).await?;
    for s in &plan.stacks {
        put_all(app, &s.rest).await?;
    }
    // A user who exists here already keeps their profile; everything else is the export's.
    let (profiles, user_rest): (Vec<Item>, Vec<Item>) =
        plan.users.iter().cloned().partition(|i| i.sk == item_keys::USER_SK);
    for p in profiles {
        match meta.put(p, Some(Condition::NotExists)).await {
            Ok(()) | Err(MetaError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    put_all(app, &user_rest).await?;
    put_all(app, &plan.tokens).await?;
    put_all(app, &plan.org).await?;
    put_all(app, &plan.hooks).await?;
    put_all(app, &plan.audit).await?;
    let stack_items: Vec<Item> = plan.stacks.iter().map(|s| s.item.clone()).collect();
    put_all(app, &stack_items).await?;
    let created = plan.org.iter().find(|i| i.sk == item_keys::ORG_SK).and_then(|i| i.n("created"));
    let indexed = Item::new(item_keys::ORGS_PK, item_keys::org_index_sk(org))
        .with("name", Value::S(org.to_string()))
        .with("created", Value::N(created.unwrap_or(now)));
    match meta.put(indexed, Some(Condition::NotExists)).await {
        Ok(()) | Err(MetaError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    // Kept, finished: running this import again is then a no-op, not a conflict, even when
    // this very write was the one a crash interrupted after it landed.
    meta.put(marker(FINISHED), None).await?;
    let what = format!(
        "imported {} stacks with {versions} versions (export {} of {})",
        summary.stacks, m.export_id, m.exported_at
    );
    super::archive::audit(app, org, "org-import", from, what).await?;
    Ok(summary)
}
