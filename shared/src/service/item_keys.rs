//! Item key layout of the metadata table (docs/ARCHITECTURE.md, Data model), in one place.

use crate::names::{StackId, UpdateId};

/// Partition of a user.
pub fn user_pk(user: &str) -> String {
    format!("USER#{user}")
}
/// Sort key of a user's profile item.
pub const USER_SK: &str = "USER";
/// Sort-key prefix of a user's membership items (`ORG#<org>` under the user).
pub const USER_ORG_PREFIX: &str = "ORG#";
/// Sort key of the user's membership of `org`.
pub fn user_org_sk(org: &str) -> String {
    format!("ORG#{org}")
}
/// Partition of an organization.
pub fn org_pk(org: &str) -> String {
    format!("ORG#{org}")
}
/// Sort key of the organization item.
pub const ORG_SK: &str = "ORG";
/// Sort key of a member item under an organization.
pub fn org_member_sk(user: &str) -> String {
    format!("MEMBER#{user}")
}
/// Partition of an access token, by the SHA-256 of the token.
pub fn token_pk(hash: &str) -> String {
    format!("TOKEN#{hash}")
}
/// Sort key of the token item.
pub const TOKEN_SK: &str = "TOKEN";
/// Sort-key prefix of all stacks of an organization.
pub const STACK_PREFIX: &str = "STACK#";
/// Sort-key prefix of the stacks of one project. `/` cannot appear in names, so the prefix
/// never matches another project.
pub fn project_stacks_prefix(project: &str) -> String {
    format!("STACK#{project}/")
}
/// Sort key of a stack under its organization.
pub fn stack_sk(project: &str, stack: &str) -> String {
    format!("STACK#{project}/{stack}")
}
/// Partition of everything hanging off an environment by its immutable id (revisions, tags,
/// team grants), so a name reused later is a fresh partition.
pub fn env_id_pk(env_id: &str) -> String {
    format!("ENV#{env_id}")
}
/// Partition of everything hanging off a stack by its immutable id (updates, history), so a
/// rename moves none of it.
pub fn stack_id_pk(stack_id: &str) -> String {
    format!("STACK#{stack_id}")
}
/// Sort key of an update under its stack.
pub fn update_sk(update_id: &str) -> String {
    format!("UPDATE#{update_id}")
}
/// Sort-key prefix of the history versions of a stack.
pub const VERSION_PREFIX: &str = "VERSION#";
/// Sort key of history version `n` (zero-padded so sort order is numeric order).
pub fn version_sk(n: i64) -> String {
    format!("VERSION#{n:010}")
}
/// Sort key of a stack's wrapped data key, under [`stack_id_pk`] (service secrets).
pub const DATAKEY_SK: &str = "DATAKEY";

/// Partition of the lease index: one item per started, not yet ended update, so the lease
/// reaper finds candidates with one query instead of reading every stack.
pub const LEASES_PK: &str = "SYS#LEASES";
/// Sort key of a running update in the lease index: start time first (oldest first).
pub fn lease_sk(started: i64, stack_id: &StackId, update_id: &UpdateId) -> String {
    format!("{started:010}#{stack_id}#{update_id}")
}
/// Partition of an organization's running updates (presence, `service::feed::presence`): one
/// item per started, not yet ended update, written and deleted in the same transactions as its
/// lease index item.
pub fn running_pk(org: &str) -> String {
    format!("RUNNING#{org}")
}
/// Sort key of a running update in its organization's index.
pub fn running_sk(stack_id: &StackId, update_id: &UpdateId) -> String {
    format!("{stack_id}#{update_id}")
}
/// Partition of the ended-updates index: one item per ended update whose scratch blobs
/// (`updates/<id>/…`) still exist, ordered by end time for the retention job.
pub const ENDED_PK: &str = "SYS#ENDED";
/// Sort key of an ended update in the ended-updates index.
pub fn ended_sk(ended: i64, stack_id: &StackId, update_id: &UpdateId) -> String {
    format!("{ended:010}#{stack_id}#{update_id}")
}
/// Partition of the organization index, so that jobs can visit every stack.
pub const ORGS_PK: &str = "SYS#ORGS";
/// Sort key of an organization in the organization index.
pub fn org_index_sk(org: &str) -> String {
    format!("ORG#{org}")
}
/// Partition of background jobs' own state (cursors of resumable passes).
pub const JOBS_PK: &str = "SYS#JOBS";
/// Partition of an organization's webhooks: its own hooks and those of its stacks, so one query
/// finds every hook a stack's event may go to.
pub fn hooks_pk(org: &str) -> String {
    format!("HOOKS#{org}")
}
/// Sort-key prefix of an organization's own hooks, under [`hooks_pk`].
pub const ORG_HOOK_PREFIX: &str = "ORG#";
/// Sort-key prefix of one stack's hooks (by immutable stack id), under [`hooks_pk`].
pub fn stack_hook_prefix(stack_id: &str) -> String {
    format!("STACK#{stack_id}#")
}

/// Sort key of an organization's team item, under [`org_pk`].
pub fn team_sk(team: &str) -> String {
    format!("TEAM#{team}")
}
/// Sort-key prefix of an organization's teams.
pub const TEAM_PREFIX: &str = "TEAM#";
/// Sort key of a team membership under [`org_pk`] (`TEAMMEMBER#<team>#<user>`).
pub fn team_member_sk(team: &str, user: &str) -> String {
    format!("TEAMMEMBER#{team}#{user}")
}
/// Sort-key prefix of one team's members under [`org_pk`].
pub fn team_members_prefix(team: &str) -> String {
    format!("TEAMMEMBER#{team}#")
}
/// Sort key of a user's membership of a team, under [`user_pk`] (`TEAM#<org>#<team>`), so one
/// query finds a user's teams in an organization.
pub fn user_team_sk(org: &str, team: &str) -> String {
    format!("TEAM#{org}#{team}")
}
/// Sort-key prefix of a user's teams in one organization, under [`user_pk`].
pub fn user_teams_prefix(org: &str) -> String {
    format!("TEAM#{org}#")
}
/// Sort key of a team's permission on a stack, under [`stack_id_pk`], so one query finds every
/// team's permission on a stack.
pub fn stack_team_sk(team: &str) -> String {
    format!("TEAMPERM#{team}")
}
/// Sort-key prefix of the team permissions of a stack, under [`stack_id_pk`].
pub const STACK_TEAM_PREFIX: &str = "TEAMPERM#";
/// Sort key of a team's grant on one stack under [`org_pk`] (`TEAMSTACK#<team>#<stack id>`), so
/// a team's stacks are listed (and removed with the team) without scanning stacks.
pub fn team_stack_sk(team: &str, stack_id: &str) -> String {
    format!("TEAMSTACK#{team}#{stack_id}")
}
/// Sort-key prefix of one team's stack grants under [`org_pk`].
pub fn team_stacks_prefix(team: &str) -> String {
    format!("TEAMSTACK#{team}#")
}
/// Sort key of a user's direct permission on a stack (a collaborator), under [`stack_id_pk`].
pub fn stack_user_sk(user: &str) -> String {
    format!("USERPERM#{user}")
}
/// Sort-key prefix of a stack's collaborators, under [`stack_id_pk`].
pub const STACK_USER_PREFIX: &str = "USERPERM#";
/// Sort key of a personal token's listing item under [`user_pk`], or of an organization
/// token's under [`org_pk`] (`TOKEN#<id>`; the item holds the token hash).
pub fn owner_token_sk(id: &str) -> String {
    format!("TOKEN#{id}")
}
/// Sort-key prefix of the tokens listed under a user or an organization.
pub const OWNER_TOKEN_PREFIX: &str = "TOKEN#";
/// Sort key of a team token's listing item under [`org_pk`] (`TEAMTOKEN#<team>#<id>`).
pub fn team_token_sk(team: &str, id: &str) -> String {
    format!("TEAMTOKEN#{team}#{id}")
}
/// Sort-key prefix of one team's tokens under [`org_pk`].
pub fn team_tokens_prefix(team: &str) -> String {
    format!("TEAMTOKEN#{team}#")
}
/// Sort key claiming an organization token's name under [`org_pk`], so names stay unique per
/// organization (created and deleted in the token's transactions).
pub fn org_token_name_sk(name: &str) -> String {
    format!("TOKENNAME#{name}")
}
/// Sort key claiming a team token's name under [`org_pk`] (unique per team).
pub fn team_token_name_sk(team: &str, name: &str) -> String {
    format!("TEAMTOKENNAME#{team}#{name}")
}
/// Key prefixes (`ForAllValues:StringLike` patterns on `dynamodb:LeadingKeys`) of the
/// bookkeeping items that every token-authenticated function may write even when its route
/// only reads: a token's last-used time, audit entries (a decryption or a refused call is
/// recorded by read-only routes too) and rate-limit buckets. infra/ grants `PutItem` and
/// `UpdateItem` on exactly these.
pub const BOOKKEEPING_KEY_PREFIXES: &[&str] = &["TOKEN#*", "AUDIT#*", "RATE#*"];

/// Partition prefix of the rate-limit buckets (`service::ratelimit`).
pub const RATE_PREFIX: &str = "RATE#";
/// Partition of an organization's audit log: entries sorted by time (`service::audit`).
pub fn audit_pk(org: &str) -> String {
    format!("AUDIT#{org}")
}
/// Partition of an organization's event-stream connections and of its fan-out state.
pub fn sockets_pk(org: &str) -> String {
    format!("WS#{org}")
}
/// Sort-key prefix of a connection under its organization.
pub const SOCKET_PREFIX: &str = "C#";
/// Sort key of a connection under its organization.
pub fn socket_sk(connection: &str) -> String {
    format!("{SOCKET_PREFIX}{connection}")
}
/// Sort key of an organization's fan-out state (how far every caught-up connection got).
pub const FANOUT_SK: &str = "FANOUT";
/// Partition of a connection's own item (its organization, for `$disconnect`).
pub fn socket_pk(connection: &str) -> String {
    format!("WSC#{connection}")
}
/// Sort key of a connection's own item.
pub const SOCKET_SK: &str = "C";
/// Partition of the connections watching one update (its engine events go to them).
pub fn watchers_pk(update_id: &UpdateId) -> String {
    format!("WSU#{update_id}")
}
