//! Teams of an organization: members and stack permissions.
//!
//! Every relation is stored twice, once under each side, and both halves are written in one
//! transaction: a user's teams (`USER#u`/`TEAM#org#team`) are what authorisation reads, a
//! team's members (`ORG#o`/`TEAMMEMBER#team#u`) what listing reads; a team's permission on a
//! stack lives under the stack (`STACK#id`/`TEAMPERM#team`, read by authorisation in one
//! query) and under the organization (`ORG#o`/`TEAMSTACK#team#id`, for the team's page).

use super::access::{query_all, StackPermission};
use super::item_keys;
use crate::error::{Error, Result};
use crate::names::{TeamName, UserName};
use crate::ports::{Condition, Item, MetaError, MetadataStore, Query, TransactOp, Value};
use crate::service::stacks::Stack;

/// Names that are path segments of team routes (`POST /api/orgs/{org}/teams/pulumi` creates a
/// team), so no team may be called that.
const RESERVED: &[&str] = &["pulumi", "github", "gitlab"];

/// A team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Name (unique in the organization).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
}

/// A team's permission on one stack, with the stack's names as of the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackGrant {
    /// Project.
    pub project: String,
    /// Stack.
    pub stack: String,
    /// Permission.
    pub permission: StackPermission,
}

impl Team {
    fn from_item(item: &Item) -> Team {
        let name = item.sk.trim_start_matches(item_keys::TEAM_PREFIX).to_string();
        Team {
            display_name: item.s("display_name").unwrap_or(&name).to_string(),
            description: item.s("description").unwrap_or_default().to_string(),
            name,
        }
    }
}

/// Checks free-text team fields.
fn check_text(what: &str, s: &str, max: usize) -> Result<()> {
    if s.chars().count() > max {
        return Err(Error::BadRequest(format!("{what} too long (max {max} characters)")));
    }
    Ok(())
}

/// Creates a team; 409 if the name is taken.
pub async fn create(
    meta: &dyn MetadataStore,
    org: &str,
    name: &TeamName,
    display_name: &str,
    description: &str,
    now: i64,
) -> Result<Team> {
    if RESERVED.contains(&name.as_str()) {
        return Err(Error::BadRequest(format!("'{name}' is reserved and cannot name a team")));
    }
    check_text("displayName", display_name, 100)?;
    check_text("description", description, 1000)?;
    let display_name = if display_name.is_empty() { name.as_str() } else { display_name };
    let item = Item::new(item_keys::org_pk(org), item_keys::team_sk(name.as_str()))
        .with("display_name", Value::S(display_name.into()))
        .with("description", Value::S(description.into()))
        .with("created", Value::N(now));
    match meta.put(item, Some(Condition::NotExists)).await {
        Ok(()) => Ok(Team {
            name: name.to_string(),
            display_name: display_name.to_string(),
            description: description.to_string(),
        }),
        Err(MetaError::ConditionFailed) => {
            Err(Error::Conflict(format!("team '{name}' already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads a team; 404 when absent.
pub async fn get(meta: &dyn MetadataStore, org: &str, team: &str) -> Result<Team> {
    meta.get(&item_keys::org_pk(org), &item_keys::team_sk(team))
        .await?
        .map(|item| Team::from_item(&item))
        .ok_or_else(|| Error::NotFound(format!("team '{team}' not found in '{org}'")))
}

/// The organization's teams, by name.
pub async fn list(meta: &dyn MetadataStore, org: &str) -> Result<Vec<Team>> {
    let items =
        query_all(meta, Query::prefix(item_keys::org_pk(org), item_keys::TEAM_PREFIX, 100)).await?;
    Ok(items.iter().map(Team::from_item).collect())
}

/// Changes a team's display name and/or description.
pub async fn describe(
    meta: &dyn MetadataStore,
    org: &str,
    team: &str,
    display_name: Option<&str>,
    description: Option<&str>,
) -> Result<()> {
    let mut item = meta
        .get(&item_keys::org_pk(org), &item_keys::team_sk(team))
        .await?
        .ok_or_else(|| Error::NotFound(format!("team '{team}' not found in '{org}'")))?;
    if let Some(d) = display_name {
        check_text("newDisplayName", d, 100)?;
        item.set("display_name", Value::S(d.into()));
    }
    if let Some(d) = description {
        check_text("newDescription", d, 1000)?;
        item.set("description", Value::S(d.into()));
    }
    // Exists: a concurrent delete wins rather than being undone.
    meta.put(item, Some(Condition::Exists)).await.map_err(|e| match e {
        MetaError::ConditionFailed => Error::NotFound(format!("team '{team}' not found")),
        e => e.into(),
    })
}

/// The team's members, by name.
pub async fn members(meta: &dyn MetadataStore, org: &str, team: &str) -> Result<Vec<String>> {
    let prefix = item_keys::team_members_prefix(team);
    let items = query_all(meta, Query::prefix(item_keys::org_pk(org), prefix.clone(), 100)).await?;
    Ok(items.iter().map(|i| i.sk.trim_start_matches(&prefix).to_string()).collect())
}

/// Adds an organization member to a team (idempotent). The team must exist and the user must
/// be a member of the organization, checked inside the transaction.
pub async fn add_member(
    meta: &dyn MetadataStore,
    org: &str,
    team: &str,
    user: &UserName,
    now: i64,
) -> Result<()> {
    let user = user.as_str();
    let ops = vec![
        TransactOp::Check {
            pk: item_keys::org_pk(org),
            sk: item_keys::team_sk(team),
            condition: Condition::Exists,
        },
        TransactOp::Check {
            pk: item_keys::org_pk(org),
            sk: item_keys::org_member_sk(user),
            condition: Condition::Exists,
        },
        TransactOp::Put(
            Item::new(item_keys::org_pk(org), item_keys::team_member_sk(team, user))
                .with("created", Value::N(now)),
            None,
        ),
        TransactOp::Put(
            Item::new(item_keys::user_pk(user), item_keys::user_team_sk(org, team))
                .with("created", Value::N(now)),
            None,
        ),
    ];
    match meta.transact(ops).await {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => {
            get(meta, org, team).await?;
            Err(Error::BadRequest(format!("'{user}' is not a member of organization '{org}'")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes a user from a team (idempotent).
pub async fn remove_member(
    meta: &dyn MetadataStore,
    org: &str,
    team: &str,
    user: &str,
) -> Result<()> {
    meta.transact(vec![
        TransactOp::Delete {
            pk: item_keys::org_pk(org),
            sk: item_keys::team_member_sk(team, user),
            condition: None,
        },
        TransactOp::Delete {
            pk: item_keys::user_pk(user),
            sk: item_keys::user_team_sk(org, team),
            condition: None,
        },
    ])
    .await?;
    Ok(())
}

/// Gives a team `permission` on a stack (replacing a previous grant); `None` removes it.
pub async fn set_stack_permission(
    meta: &dyn MetadataStore,
    org: &str,
    team: &str,
    stack: &Stack,
    permission: StackPermission,
) -> Result<()> {
    let grant = (permission != StackPermission::None).then(|| {
        Grant::new(Value::N(permission.code()))
            .with("project", Value::S(stack.project.clone()))
            .with("stack", Value::S(stack.stack.clone()))
    });
    let under_stack = (item_keys::stack_id_pk(&stack.id), item_keys::stack_team_sk(team));
    let under_org = item_keys::team_stack_sk(team, &stack.id);
    write_grant(meta, org, team, under_stack, under_org, grant).await
}

/// What a team is given on one thing: its permission, and (under the organization only) the
/// names its page shows.
pub(crate) struct Grant {
    permission: Value,
    names: Vec<(&'static str, Value)>,
}

impl Grant {
    pub(crate) fn new(permission: Value) -> Grant {
        Grant { permission, names: Vec::new() }
    }

    pub(crate) fn with(mut self, name: &'static str, value: Value) -> Grant {
        self.names.push((name, value));
        self
    }
}

/// Writes (Some) or removes (None) both halves of a team's grant in one transaction: the one
/// under the thing (`under_target`, what authorisation reads) and the one under the
/// organization (sort key `under_org`, what the team's page lists). 404 when the team does
/// not exist.
pub(crate) async fn write_grant(
    meta: &dyn MetadataStore,
    org: &str,
    team: &str,
    under_target: (String, String),
    under_org: String,
    grant: Option<Grant>,
) -> Result<()> {
    let org_pk = item_keys::org_pk(org);
    let ops = match grant {
        None => vec![
            TransactOp::Delete { pk: under_target.0, sk: under_target.1, condition: None },
            TransactOp::Delete { pk: org_pk, sk: under_org, condition: None },
        ],
        Some(g) => {
            let mut listed =
                Item::new(org_pk.clone(), under_org).with("permission", g.permission.clone());
            for (name, value) in g.names {
                listed = listed.with(name, value);
            }
            vec![
                TransactOp::Check {
                    pk: org_pk,
                    sk: item_keys::team_sk(team),
                    condition: Condition::Exists,
                },
                TransactOp::Put(
                    Item::new(under_target.0, under_target.1).with("permission", g.permission),
                    None,
                ),
                TransactOp::Put(listed, None),
            ]
        }
    };
    match meta.transact(ops).await {
        Ok(()) => Ok(()),
        Err(MetaError::ConditionFailed) => {
            Err(Error::NotFound(format!("team '{team}' not found in '{org}'")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The team's stack grants.
pub async fn stack_grants(
    meta: &dyn MetadataStore,
    org: &str,
    team: &str,
) -> Result<Vec<StackGrant>> {
    let items = query_all(
        meta,
        Query::prefix(item_keys::org_pk(org), item_keys::team_stacks_prefix(team), 100),
    )
    .await?;
    Ok(items
        .iter()
        .map(|i| StackGrant {
            project: i.s("project").unwrap_or_default().to_string(),
            stack: i.s("stack").unwrap_or_default().to_string(),
            permission: i
                .n("permission")
                .and_then(StackPermission::from_code)
                .unwrap_or(StackPermission::None),
        })
        .collect())
}

/// Deletes a team with its tokens, grants and memberships. Tokens go first so a team token
/// stops working before anything else changes; the team item goes last, so a crash part-way
/// leaves a team that a retried delete finishes.
pub async fn delete(meta: &dyn MetadataStore, org: &str, team: &str) -> Result<()> {
    get(meta, org, team).await?;
    let org_pk = item_keys::org_pk(org);
    let owner = super::tokens::Owner::Team { org: org.to_string(), team: team.to_string() };
    for token in super::tokens::list(meta, &owner).await? {
        match super::tokens::revoke(meta, &owner, &token.id).await {
            Ok(()) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut ops = Vec::new();
    for item in
        query_all(meta, Query::prefix(&org_pk, item_keys::team_stacks_prefix(team), 100)).await?
    {
        let stack_id = item.sk.trim_start_matches(&item_keys::team_stacks_prefix(team)).to_string();
        ops.push(vec![
            TransactOp::Delete {
                pk: item_keys::stack_id_pk(&stack_id),
                sk: item_keys::stack_team_sk(team),
                condition: None,
            },
            TransactOp::Delete { pk: item.pk.clone(), sk: item.sk.clone(), condition: None },
        ]);
    }
    for user in members(meta, org, team).await? {
        ops.push(vec![
            TransactOp::Delete {
                pk: org_pk.clone(),
                sk: item_keys::team_member_sk(team, &user),
                condition: None,
            },
            TransactOp::Delete {
                pk: item_keys::user_pk(&user),
                sk: item_keys::user_team_sk(org, team),
                condition: None,
            },
        ]);
    }
    for pair in ops {
        meta.transact(pair).await?;
    }
    super::environments::access::forget_team(meta, org, team).await?;
    meta.delete(&org_pk, &item_keys::team_sk(team), None).await?;
    Ok(())
}

/// Removes a user from every team of an organization (when they leave it).
pub async fn remove_user_from_all(meta: &dyn MetadataStore, org: &str, user: &str) -> Result<()> {
    for team in super::access::user_teams(meta, user, org).await? {
        remove_member(meta, org, &team, user).await?;
    }
    Ok(())
}

/// Rewrites the stack names that a stack's team grants show on the teams' pages, after a
/// rename (authorisation never reads them: it goes by stack id).
pub async fn restamp_stack(meta: &dyn MetadataStore, stack: &Stack) -> Result<()> {
    for (team, permission) in super::access::stack_team_permissions(meta, &stack.id).await? {
        let item =
            Item::new(item_keys::org_pk(&stack.org), item_keys::team_stack_sk(&team, &stack.id))
                .with("permission", Value::N(permission.code()))
                .with("project", Value::S(stack.project.clone()))
                .with("stack", Value::S(stack.stack.clone()));
        match meta.put(item, Some(Condition::Exists)).await {
            Ok(()) | Err(MetaError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes every team grant on a deleted stack, so teams' pages stop listing it.
pub async fn forget_stack(meta: &dyn MetadataStore, stack: &Stack) -> Result<()> {
    for (team, _) in super::access::stack_team_permissions(meta, &stack.id).await? {
        set_stack_permission(meta, &stack.org, &team, stack, StackPermission::None).await?;
    }
    Ok(())
}
