//! Item key layout of the metadata table (DESIGN.md §5), in one place.

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
pub fn lease_sk(started: i64, stack_id: &str, update_id: &str) -> String {
    format!("{started:010}#{stack_id}#{update_id}")
}
/// Partition of the ended-updates index: one item per ended update whose scratch blobs
/// (`updates/<id>/…`) still exist, ordered by end time for the retention job.
pub const ENDED_PK: &str = "SYS#ENDED";
/// Sort key of an ended update in the ended-updates index.
pub fn ended_sk(ended: i64, stack_id: &str, update_id: &str) -> String {
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
