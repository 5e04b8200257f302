//! The event stream's WebSocket connections, as records (issue 17): who is connected, to which
//! organization and scope, and from which `seq` on. Written when a client connects (`$connect`
//! on API Gateway, the handshake in the emulator) and deleted when it goes; each expires with
//! API Gateway's longest connection (2 hours) in case `$disconnect` never came.
//!
//! Per connection, three items in one transaction: the connection under its organization
//! (`WS#<org>`/`C#<id>`: what fan-out lists), its own item (`WSC#<id>`: the organization, for
//! `$disconnect`, which knows only the id), and for an update's watchers `WSU#<update>`/`<id>`
//! (what the events batch of a running update lists to send its engine events live).

use crate::app::App;
use crate::error::{Error, Result};
use crate::names::{StackId, UpdateId};
use crate::ports::metadata::TTL_ATTR;
use crate::ports::{Condition, Item, Query, SortKey, TransactOp, Value};
use crate::service::access::OrgAccess;
use crate::service::identity::{Principal, Subject};
use crate::service::item_keys;

/// How long a connection's records outlive its start: API Gateway closes every WebSocket
/// connection after 2 hours, plus a margin.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 300;

/// Which events a connection receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only events with a higher number (0: the whole retained stream).
    pub after: i64,
    /// Only the events of this stack (its immutable id).
    pub stack_id: Option<StackId>,
    /// That stack's `<project>/<stack>` when the client connected (what presence shows).
    pub stack_name: Option<String>,
    /// Only the events of this update of that stack, and its engine events live.
    pub update_id: Option<UpdateId>,
}

/// One connection, as fan-out reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// API Gateway's connection id (or the emulator's).
    pub id: String,
    /// Its organization.
    pub org: String,
    /// Who connected (visibility is decided for them on every fan-out).
    pub principal: Principal,
    /// The SHA-256 of the access token they connected with (the key its item is stored
    /// under): fan-out stops sending once it is revoked or expired.
    pub token_hash: String,
    /// What it receives.
    pub scope: Scope,
    /// Whether it has had its backlog: from then on it follows the organization's fan-out.
    pub caught_up: bool,
    /// When it connected (Unix seconds).
    pub connected: i64,
}

/// Records a connection of `principal` to `org`'s stream, after checking that they are a
/// member (the caller resolved and checked the scope's stack and update). Its backlog and then
/// live events reach it through fan-out ([`super::fanout`]).
pub async fn open(
    app: &App,
    principal: &Principal,
    token_hash: &str,
    org: &str,
    scope: &Scope,
    connection: &str,
) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    OrgAccess::resolve(meta, principal, org).await?.require_member()?;
    let now = app.clock.now();
    let ttl = Value::N(now.saturating_add(CONNECTION_TTL_SECONDS));
    let mut record = Item::new(item_keys::sockets_pk(org), item_keys::socket_sk(connection))
        .with("connection", Value::S(connection.to_string()))
        .with("token_id", Value::S(principal.token_id.clone()))
        .with("token_name", Value::S(principal.token_name.clone()))
        .with("token_hash", Value::S(token_hash.to_string()))
        .with("cursor", Value::N(scope.after))
        .with("caught_up", Value::Bool(false))
        .with("connected", Value::N(now))
        .with(TTL_ATTR, ttl.clone());
    match &principal.subject {
        Subject::User(user) => record.set("user", Value::S(user.clone())),
        Subject::Org { admin, .. } => record.set("org_token_admin", Value::Bool(*admin)),
        Subject::Team { team, .. } => record.set("team", Value::S(team.clone())),
    }
    if let Some(id) = &scope.stack_id {
        record.set("stack_id", Value::S(id.to_string()));
    }
    if let Some(name) = &scope.stack_name {
        record.set("stack_name", Value::S(name.clone()));
    }
    let mut own = Item::new(item_keys::socket_pk(connection), item_keys::SOCKET_SK)
        .with("org", Value::S(org.to_string()))
        .with(TTL_ATTR, ttl.clone());
    let mut ops = Vec::new();
    if let Some(update) = &scope.update_id {
        record.set("update_id", Value::S(update.to_string()));
        own.set("update_id", Value::S(update.to_string()));
        let watcher = Item::new(item_keys::watchers_pk(update), connection)
            .with("org", Value::S(org.to_string()))
            .with(TTL_ATTR, ttl);
        ops.push(TransactOp::Put(watcher, None));
    }
    ops.push(TransactOp::Put(record, Some(Condition::NotExists)));
    ops.push(TransactOp::Put(own, None));
    meta.transact(ops).await.map_err(|e| match e {
        crate::ports::MetaError::ConditionFailed => {
            Error::Conflict(format!("connection {connection} is already open"))
        }
        e => e.into(),
    })?;
    app.feed_signal.connected(org);
    Ok(())
}

/// Forgets a connection (its client went, or fan-out found it gone). Idempotent.
pub async fn close(app: &App, connection: &str) -> Result<()> {
    let meta = app.ports.meta.as_ref();
    let Some(own) = meta.get(&item_keys::socket_pk(connection), item_keys::SOCKET_SK).await? else {
        return Ok(());
    };
    let mut ops = vec![TransactOp::Delete {
        pk: item_keys::socket_pk(connection),
        sk: item_keys::SOCKET_SK.to_string(),
        condition: None,
    }];
    if let Some(org) = own.s("org") {
        ops.push(TransactOp::Delete {
            pk: item_keys::sockets_pk(org),
            sk: item_keys::socket_sk(connection),
            condition: None,
        });
    }
    if let Some(update) = own.s("update_id") {
        ops.push(TransactOp::Delete {
            pk: item_keys::watchers_pk(&UpdateId::from_stored(update)),
            sk: connection.to_string(),
            condition: None,
        });
    }
    meta.transact(ops).await?;
    Ok(())
}

/// Every open connection of `org`.
pub async fn list(app: &App, org: &str) -> Result<Vec<Connection>> {
    let meta = app.ports.meta.as_ref();
    let mut query = Query {
        pk: item_keys::sockets_pk(org),
        sk: SortKey::BeginsWith(item_keys::SOCKET_PREFIX.to_string()),
        ascending: true,
        limit: 1000,
        after: None,
    };
    let mut out = Vec::new();
    loop {
        let page = meta.query(query.clone()).await?;
        out.extend(page.items.iter().filter_map(|item| from_item(org, item)));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// The connections watching `update` (their ids).
pub async fn watchers(app: &App, update: &UpdateId) -> Result<Vec<String>> {
    let query = Query {
        pk: item_keys::watchers_pk(update),
        sk: SortKey::All,
        ascending: true,
        limit: 1000,
        after: None,
    };
    let page = app.ports.meta.query(query).await?;
    Ok(page.items.into_iter().map(|i| i.sk).collect())
}

/// Marks a connection as caught up (it has had its backlog), or moves its cursor back to the
/// last event it got when a push failed part-way (it is then sent the rest next time).
pub async fn set_position(
    app: &App,
    org: &str,
    connection: &str,
    cursor: i64,
    caught_up: bool,
) -> Result<()> {
    let change =
        crate::ports::Update::new(item_keys::sockets_pk(org), item_keys::socket_sk(connection))
            .set("cursor", Value::N(cursor))
            .set("caught_up", Value::Bool(caught_up))
            .when(Condition::Exists);
    match app.ports.meta.update(change).await {
        // Closed meanwhile: nothing to keep.
        Ok(_) | Err(crate::ports::MetaError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn from_item(org: &str, item: &Item) -> Option<Connection> {
    let subject = if let Some(user) = item.s("user") {
        Subject::User(user.to_string())
    } else if let Some(team) = item.s("team") {
        Subject::Team { org: org.to_string(), team: team.to_string() }
    } else {
        let admin = matches!(item.attrs.get("org_token_admin"), Some(Value::Bool(true)));
        Subject::Org { org: org.to_string(), admin }
    };
    Some(Connection {
        id: item.s("connection")?.to_string(),
        org: org.to_string(),
        principal: Principal {
            subject,
            token_id: item.s("token_id").unwrap_or_default().to_string(),
            token_name: item.s("token_name").unwrap_or_default().to_string(),
            deployment: None,
        },
        token_hash: item.s("token_hash").unwrap_or_default().to_string(),
        scope: Scope {
            after: item.n("cursor").unwrap_or(0),
            stack_id: item.s("stack_id").map(|s| StackId::from_stored(s.to_string())),
            stack_name: item.s("stack_name").map(str::to_string),
            update_id: item.s("update_id").map(|s| UpdateId::from_stored(s.to_string())),
        },
        caught_up: matches!(item.attrs.get("caught_up"), Some(Value::Bool(true))),
        connected: item.n("connected").unwrap_or(0),
    })
}
