//! The route table: the single source of truth for every API route (docs/ARCHITECTURE.md, The
//! route table). Lambda binaries, the emulator's router, the SAM template, IAM and the sample
//! events all come from it.
//!
//! Each route is its own `static` so that a function binary referring to one route links only
//! that route's handler.

use http::Method;

use super::handlers::{audit, identity, orgs, secrets, stacks, teams, tokens, updates, webhooks};
use super::{Auth, Needs, Permission, Route};
use crate::handler;
use crate::service::access::StackPermission;

/// `GET /api/user`.
pub static USER_GET: Route = Route {
    name: "user-get",
    method: Method::GET,
    path: "/api/user",
    auth: Auth::User,
    permission: Permission::Token,
    needs: Needs::META_READ,
    handler: handler!(identity::get_user),
};

/// `GET /api/user/organizations/default`.
pub static USER_DEFAULT_ORG: Route = Route {
    name: "user-default-org",
    method: Method::GET,
    path: "/api/user/organizations/default",
    auth: Auth::User,
    permission: Permission::Token,
    needs: Needs::META_READ,
    handler: handler!(identity::default_org),
};

/// `GET /api/capabilities`.
pub static CAPABILITIES_GET: Route = Route {
    name: "capabilities-get",
    method: Method::GET,
    path: "/api/capabilities",
    auth: Auth::User,
    permission: Permission::Token,
    needs: Needs::META_READ,
    handler: handler!(identity::capabilities),
};

/// `GET /api/user/stacks`.
pub static USER_STACKS_LIST: Route = Route {
    name: "user-stacks-list",
    method: Method::GET,
    path: "/api/user/stacks",
    auth: Auth::User,
    permission: Permission::Token,
    needs: Needs::META_READ,
    handler: handler!(stacks::list),
};

/// `HEAD /api/stacks/{org}/{project}`.
pub static PROJECT_HEAD: Route = Route {
    name: "project-head",
    method: Method::HEAD,
    path: "/api/stacks/{org}/{project}",
    auth: Auth::User,
    permission: Permission::OrgMember,
    needs: Needs::META_READ,
    handler: handler!(stacks::project_exists),
};

/// `POST /api/stacks/{org}/{project}`.
pub static STACK_CREATE: Route = Route {
    name: "stack-create",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}",
    auth: Auth::User,
    permission: Permission::OrgMember,
    needs: Needs::META_WRITE_EVENTS,
    handler: handler!(stacks::create),
};

/// `GET /api/stacks/{org}/{project}/{stack}`.
pub static STACK_GET: Route = Route {
    name: "stack-get",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(stacks::get),
};

/// `DELETE /api/stacks/{org}/{project}/{stack}`.
pub static STACK_DELETE: Route = Route {
    name: "stack-delete",
    method: Method::DELETE,
    path: "/api/stacks/{org}/{project}/{stack}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_BLOB_WRITE_EVENTS,
    handler: handler!(stacks::delete),
};

/// `PATCH /api/stacks/{org}/{project}/{stack}/tags`.
pub static STACK_TAGS_UPDATE: Route = Route {
    name: "stack-tags-update",
    method: Method::PATCH,
    path: "/api/stacks/{org}/{project}/{stack}/tags",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs::META_WRITE,
    handler: handler!(stacks::update_tags),
};

/// `GET /api/stacks/{org}/{project}/{stack}/export`.
pub static STACK_EXPORT: Route = Route {
    name: "stack-export",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/export",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_BLOB_READ,
    handler: handler!(stacks::export),
};

/// `POST /api/stacks/{org}/{project}/{stack}/encrypt`.
pub static STACK_ENCRYPT: Route = Route {
    name: "stack-encrypt",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/encrypt",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Write,
    },
    handler: handler!(secrets::encrypt),
};

/// `POST /api/stacks/{org}/{project}/{stack}/decrypt`.
pub static STACK_DECRYPT: Route = Route {
    name: "stack-decrypt",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/decrypt",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs {
        meta: super::Access::Read,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Read,
    },
    handler: handler!(secrets::decrypt),
};

/// `POST /api/stacks/{org}/{project}/{stack}/batch-encrypt`.
pub static STACK_BATCH_ENCRYPT: Route = Route {
    name: "stack-batch-encrypt",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/batch-encrypt",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Write,
    },
    handler: handler!(secrets::batch_encrypt),
};

/// `POST /api/stacks/{org}/{project}/{stack}/batch-decrypt`.
pub static STACK_BATCH_DECRYPT: Route = Route {
    name: "stack-batch-decrypt",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/batch-decrypt",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs {
        meta: super::Access::Read,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Read,
    },
    handler: handler!(secrets::batch_decrypt),
};

/// `POST /api/stacks/{org}/{project}/{stack}/decrypt/log-decryption`.
pub static STACK_LOG_DECRYPTION: Route = Route {
    name: "stack-log-decryption",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/decrypt/log-decryption",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(secrets::log_decryption),
};

/// `POST /api/stacks/{org}/{project}/{stack}/decrypt/log-batch-decryption`.
pub static STACK_LOG_BATCH_DECRYPTION: Route = Route {
    name: "stack-log-batch-decryption",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/decrypt/log-batch-decryption",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(secrets::log_batch_decryption),
};

/// `GET /api/stacks/{org}/{project}/{stack}/export/{version}`.
pub static STACK_EXPORT_VERSION: Route = Route {
    name: "stack-export-version",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/export/{version}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_BLOB_READ,
    handler: handler!(stacks::export_version),
};

/// `POST /api/stacks/{org}/{project}/{stack}/import`.
pub static STACK_IMPORT: Route = Route {
    name: "stack-import",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/import",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs::META_BLOB_WRITE_EVENTS,
    handler: handler!(stacks::import),
};

/// `GET /api/stacks/{org}/{project}/{stack}/updates`.
pub static STACK_HISTORY: Route = Route {
    name: "stack-history",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/updates",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(stacks::history),
};

/// `GET /api/stacks/{org}/{project}/{stack}/updates/latest`.
pub static STACK_HISTORY_LATEST: Route = Route {
    name: "stack-history-latest",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/updates/latest",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(stacks::history_latest),
};

/// `GET /api/stacks/{org}/{project}/{stack}/updates/{version}`.
pub static STACK_HISTORY_VERSION: Route = Route {
    name: "stack-history-version",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/updates/{version}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(stacks::history_version),
};

/// `POST /api/stacks/{org}/{project}/{stack}/{kind}`.
pub static UPDATE_CREATE: Route = Route {
    name: "update-create",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs::META_WRITE,
    handler: handler!(updates::create),
};

/// `POST /api/stacks/{org}/{project}/{stack}/{kind}/{update}`.
pub static UPDATE_START: Route = Route {
    name: "update-start",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs::META_BLOB_WRITE_EVENTS,
    handler: handler!(updates::start),
};

/// `GET /api/stacks/{org}/{project}/{stack}/{kind}/{update}`.
pub static UPDATE_STATUS: Route = Route {
    name: "update-status",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(updates::status),
};

/// `POST /api/stacks/{org}/{project}/{stack}/{kind}/{update}/renew_lease`.
pub static UPDATE_RENEW_LEASE: Route = Route {
    name: "update-renew-lease",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/renew_lease",
    auth: Auth::Lease,
    permission: Permission::Lease,
    needs: Needs::META_WRITE,
    handler: handler!(updates::renew_lease),
};

/// `PATCH /api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpoint`.
pub static UPDATE_CHECKPOINT: Route = Route {
    name: "update-checkpoint",
    method: Method::PATCH,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpoint",
    auth: Auth::Lease,
    permission: Permission::Lease,
    needs: Needs::META_BLOB_WRITE,
    handler: handler!(updates::checkpoint),
};

/// `POST /api/stacks/{org}/{project}/{stack}/{kind}/{update}/events/batch`.
pub static UPDATE_EVENTS_BATCH: Route = Route {
    name: "update-events-batch",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/events/batch",
    auth: Auth::Lease,
    permission: Permission::Lease,
    needs: Needs::META_BLOB_WRITE,
    handler: handler!(updates::events_batch),
};

/// `GET /api/stacks/{org}/{project}/{stack}/{kind}/{update}/events`.
pub static UPDATE_EVENTS_LIST: Route = Route {
    name: "update-events-list",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/events",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_BLOB_READ,
    handler: handler!(updates::events_list),
};

/// `POST /api/stacks/{org}/{project}/{stack}/{kind}/{update}/complete`.
pub static UPDATE_COMPLETE: Route = Route {
    name: "update-complete",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/complete",
    auth: Auth::LeaseAnyState,
    permission: Permission::Lease,
    needs: Needs::META_BLOB_WRITE_EVENTS,
    handler: handler!(updates::complete),
};

/// `POST /api/stacks/{org}/{project}/{stack}/{kind}/{update}/cancel`.
pub static UPDATE_CANCEL: Route = Route {
    name: "update-cancel",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/cancel",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Write),
    needs: Needs::META_BLOB_WRITE_EVENTS,
    handler: handler!(updates::cancel),
};

/// `PATCH /api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpointverbatim`.
pub static UPDATE_CHECKPOINT_VERBATIM: Route = Route {
    name: "update-checkpoint-verbatim",
    method: Method::PATCH,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpointverbatim",
    auth: Auth::Lease,
    permission: Permission::Lease,
    needs: Needs::META_BLOB_WRITE,
    handler: handler!(updates::checkpoint_verbatim),
};

/// `PATCH /api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpointdelta`.
pub static UPDATE_CHECKPOINT_DELTA: Route = Route {
    name: "update-checkpoint-delta",
    method: Method::PATCH,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/checkpointdelta",
    auth: Auth::Lease,
    permission: Permission::Lease,
    needs: Needs::META_BLOB_WRITE,
    handler: handler!(updates::checkpoint_delta),
};

/// `PATCH /api/stacks/{org}/{project}/{stack}/{kind}/{update}/journalentries`.
pub static UPDATE_JOURNAL_ENTRIES: Route = Route {
    name: "update-journal-entries",
    method: Method::PATCH,
    path: "/api/stacks/{org}/{project}/{stack}/{kind}/{update}/journalentries",
    auth: Auth::Lease,
    permission: Permission::Lease,
    // Queue: long journals ask job-update-materialise for snapshots.
    needs: Needs::META_BLOB_WRITE_EVENTS,
    handler: handler!(updates::journal_entries),
};

/// `POST /api/stacks/{org}/{project}/{stack}/rename`.
pub static STACK_RENAME: Route = Route {
    name: "stack-rename",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/rename",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    // Queue: a rename may end an abandoned update, whose webhook deliveries it queues.
    needs: Needs::META_BLOB_WRITE_EVENTS,
    handler: handler!(stacks::rename),
};

/// `POST /api/orgs/{org}/hooks`.
pub static ORG_HOOK_CREATE: Route = Route {
    name: "org-hook-create",
    method: Method::POST,
    path: "/api/orgs/{org}/hooks",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Write,
    },
    handler: handler!(webhooks::org_create),
};

/// `GET /api/orgs/{org}/hooks`.
pub static ORG_HOOK_LIST: Route = Route {
    name: "org-hook-list",
    method: Method::GET,
    path: "/api/orgs/{org}/hooks",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_READ,
    handler: handler!(webhooks::org_list),
};

/// `GET /api/orgs/{org}/hooks/{hook}`.
pub static ORG_HOOK_GET: Route = Route {
    name: "org-hook-get",
    method: Method::GET,
    path: "/api/orgs/{org}/hooks/{hook}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_READ,
    handler: handler!(webhooks::org_get),
};

/// `PATCH /api/orgs/{org}/hooks/{hook}`.
pub static ORG_HOOK_UPDATE: Route = Route {
    name: "org-hook-update",
    method: Method::PATCH,
    path: "/api/orgs/{org}/hooks/{hook}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Write,
    },
    handler: handler!(webhooks::org_update),
};

/// `DELETE /api/orgs/{org}/hooks/{hook}`.
pub static ORG_HOOK_DELETE: Route = Route {
    name: "org-hook-delete",
    method: Method::DELETE,
    path: "/api/orgs/{org}/hooks/{hook}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(webhooks::org_delete),
};

/// `POST /api/stacks/{org}/{project}/{stack}/hooks`.
pub static STACK_HOOK_CREATE: Route = Route {
    name: "stack-hook-create",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/hooks",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Write,
    },
    handler: handler!(webhooks::stack_create),
};

/// `GET /api/stacks/{org}/{project}/{stack}/hooks`.
pub static STACK_HOOK_LIST: Route = Route {
    name: "stack-hook-list",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/hooks",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_READ,
    handler: handler!(webhooks::stack_list),
};

/// `GET /api/stacks/{org}/{project}/{stack}/hooks/{hook}`.
pub static STACK_HOOK_GET: Route = Route {
    name: "stack-hook-get",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/hooks/{hook}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_READ,
    handler: handler!(webhooks::stack_get),
};

/// `PATCH /api/stacks/{org}/{project}/{stack}/hooks/{hook}`.
pub static STACK_HOOK_UPDATE: Route = Route {
    name: "stack-hook-update",
    method: Method::PATCH,
    path: "/api/stacks/{org}/{project}/{stack}/hooks/{hook}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Write,
    },
    handler: handler!(webhooks::stack_update),
};

/// `DELETE /api/stacks/{org}/{project}/{stack}/hooks/{hook}`.
pub static STACK_HOOK_DELETE: Route = Route {
    name: "stack-hook-delete",
    method: Method::DELETE,
    path: "/api/stacks/{org}/{project}/{stack}/hooks/{hook}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_WRITE,
    handler: handler!(webhooks::stack_delete),
};

/// `GET /api/orgs/{org}/hooks/{hook}/deliveries`.
pub static ORG_HOOK_DELIVERIES: Route = Route {
    name: "org-hook-deliveries",
    method: Method::GET,
    path: "/api/orgs/{org}/hooks/{hook}/deliveries",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_READ,
    handler: handler!(webhooks::org_deliveries),
};

/// `POST /api/orgs/{org}/hooks/{hook}/deliveries/{delivery}/redeliver`.
pub static ORG_HOOK_REDELIVER: Route = Route {
    name: "org-hook-redeliver",
    method: Method::POST,
    path: "/api/orgs/{org}/hooks/{hook}/deliveries/{delivery}/redeliver",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs {
        meta: super::Access::Read,
        blobs: super::Access::None,
        queue: super::Access::Write,
        keys: super::Access::None,
    },
    handler: handler!(webhooks::org_redeliver),
};

/// `POST /api/orgs/{org}/hooks/{hook}/ping`.
pub static ORG_HOOK_PING: Route = Route {
    name: "org-hook-ping",
    method: Method::POST,
    path: "/api/orgs/{org}/hooks/{hook}/ping",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Read,
    },
    handler: handler!(webhooks::org_ping),
};

/// `GET /api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries`.
pub static STACK_HOOK_DELIVERIES: Route = Route {
    name: "stack-hook-deliveries",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_READ,
    handler: handler!(webhooks::stack_deliveries),
};

/// `POST /api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries/{delivery}/redeliver`.
pub static STACK_HOOK_REDELIVER: Route = Route {
    name: "stack-hook-redeliver",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/hooks/{hook}/deliveries/{delivery}/redeliver",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs {
        meta: super::Access::Read,
        blobs: super::Access::None,
        queue: super::Access::Write,
        keys: super::Access::None,
    },
    handler: handler!(webhooks::stack_redeliver),
};

/// `POST /api/stacks/{org}/{project}/{stack}/hooks/{hook}/ping`.
pub static STACK_HOOK_PING: Route = Route {
    name: "stack-hook-ping",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/hooks/{hook}/ping",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs {
        meta: super::Access::Write,
        blobs: super::Access::None,
        queue: super::Access::None,
        keys: super::Access::Read,
    },
    handler: handler!(webhooks::stack_ping),
};

/// `GET /api/orgs/{org}`.
pub static ORG_GET: Route = Route {
    name: "org-get",
    method: Method::GET,
    path: "/api/orgs/{org}",
    auth: Auth::User,
    permission: Permission::OrgMember,
    needs: Needs::META_READ,
    handler: handler!(orgs::get),
};

/// `PATCH /api/orgs/{org}`.
pub static ORG_UPDATE: Route = Route {
    name: "org-update",
    method: Method::PATCH,
    path: "/api/orgs/{org}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(orgs::update),
};

/// `GET /api/orgs/{org}/members`.
pub static ORG_MEMBERS_LIST: Route = Route {
    name: "org-members-list",
    method: Method::GET,
    path: "/api/orgs/{org}/members",
    auth: Auth::User,
    permission: Permission::OrgMember,
    needs: Needs::META_READ,
    handler: handler!(orgs::list_members),
};

/// `POST /api/orgs/{org}/members/{user}`.
pub static ORG_MEMBER_ADD: Route = Route {
    name: "org-member-add",
    method: Method::POST,
    path: "/api/orgs/{org}/members/{user}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(orgs::set_member),
};

/// `PATCH /api/orgs/{org}/members/{user}`.
pub static ORG_MEMBER_UPDATE: Route = Route {
    name: "org-member-update",
    method: Method::PATCH,
    path: "/api/orgs/{org}/members/{user}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(orgs::set_member),
};

/// `DELETE /api/orgs/{org}/members/{user}`.
pub static ORG_MEMBER_REMOVE: Route = Route {
    name: "org-member-remove",
    method: Method::DELETE,
    path: "/api/orgs/{org}/members/{user}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(orgs::remove_member),
};

/// `GET /api/orgs/{org}/teams`.
pub static ORG_TEAMS_LIST: Route = Route {
    name: "org-teams-list",
    method: Method::GET,
    path: "/api/orgs/{org}/teams",
    auth: Auth::User,
    permission: Permission::OrgMember,
    needs: Needs::META_READ,
    handler: handler!(teams::list),
};

/// `POST /api/orgs/{org}/teams/pulumi`.
pub static ORG_TEAM_CREATE: Route = Route {
    name: "org-team-create",
    method: Method::POST,
    path: "/api/orgs/{org}/teams/pulumi",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(teams::create),
};

/// `GET /api/orgs/{org}/teams/{team}`.
pub static ORG_TEAM_GET: Route = Route {
    name: "org-team-get",
    method: Method::GET,
    path: "/api/orgs/{org}/teams/{team}",
    auth: Auth::User,
    permission: Permission::OrgMember,
    needs: Needs::META_READ,
    handler: handler!(teams::get),
};

/// `PATCH /api/orgs/{org}/teams/{team}`.
pub static ORG_TEAM_UPDATE: Route = Route {
    name: "org-team-update",
    method: Method::PATCH,
    path: "/api/orgs/{org}/teams/{team}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(teams::update),
};

/// `DELETE /api/orgs/{org}/teams/{team}`.
pub static ORG_TEAM_DELETE: Route = Route {
    name: "org-team-delete",
    method: Method::DELETE,
    path: "/api/orgs/{org}/teams/{team}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(teams::delete),
};

/// `GET /api/stacks/{org}/{project}/{stack}/teams`.
pub static STACK_TEAMS_LIST: Route = Route {
    name: "stack-teams-list",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/teams",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Read),
    needs: Needs::META_READ,
    handler: handler!(teams::stack_teams),
};

/// `GET /api/stacks/{org}/{project}/{stack}/collaborators`.
pub static STACK_COLLABORATORS_LIST: Route = Route {
    name: "stack-collaborators-list",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/collaborators",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_READ,
    handler: handler!(orgs::list_collaborators),
};

/// `POST /api/stacks/{org}/{project}/{stack}/collaborators`.
pub static STACK_COLLABORATOR_SET: Route = Route {
    name: "stack-collaborator-set",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}/{stack}/collaborators",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_WRITE,
    handler: handler!(orgs::set_collaborator),
};

/// `DELETE /api/stacks/{org}/{project}/{stack}/collaborators/{user}`.
pub static STACK_COLLABORATOR_REMOVE: Route = Route {
    name: "stack-collaborator-remove",
    method: Method::DELETE,
    path: "/api/stacks/{org}/{project}/{stack}/collaborators/{user}",
    auth: Auth::User,
    permission: Permission::Stack(StackPermission::Admin),
    needs: Needs::META_WRITE,
    handler: handler!(orgs::remove_collaborator),
};

/// `GET /api/user/tokens`.
pub static USER_TOKENS_LIST: Route = Route {
    name: "user-tokens-list",
    method: Method::GET,
    path: "/api/user/tokens",
    auth: Auth::User,
    permission: Permission::Token,
    needs: Needs::META_READ,
    handler: handler!(tokens::user_list),
};

/// `POST /api/user/tokens`.
pub static USER_TOKEN_CREATE: Route = Route {
    name: "user-token-create",
    method: Method::POST,
    path: "/api/user/tokens",
    auth: Auth::User,
    permission: Permission::Token,
    needs: Needs::META_WRITE,
    handler: handler!(tokens::user_create),
};

/// `DELETE /api/user/tokens/{tokenId}`.
pub static USER_TOKEN_DELETE: Route = Route {
    name: "user-token-delete",
    method: Method::DELETE,
    path: "/api/user/tokens/{tokenId}",
    auth: Auth::User,
    permission: Permission::Token,
    needs: Needs::META_WRITE,
    handler: handler!(tokens::user_delete),
};

/// `GET /api/orgs/{org}/tokens`.
pub static ORG_TOKENS_LIST: Route = Route {
    name: "org-tokens-list",
    method: Method::GET,
    path: "/api/orgs/{org}/tokens",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_READ,
    handler: handler!(tokens::org_list),
};

/// `POST /api/orgs/{org}/tokens`.
pub static ORG_TOKEN_CREATE: Route = Route {
    name: "org-token-create",
    method: Method::POST,
    path: "/api/orgs/{org}/tokens",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(tokens::org_create),
};

/// `DELETE /api/orgs/{org}/tokens/{tokenId}`.
pub static ORG_TOKEN_DELETE: Route = Route {
    name: "org-token-delete",
    method: Method::DELETE,
    path: "/api/orgs/{org}/tokens/{tokenId}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(tokens::org_delete),
};

/// `GET /api/orgs/{org}/teams/{team}/tokens`.
pub static TEAM_TOKENS_LIST: Route = Route {
    name: "team-tokens-list",
    method: Method::GET,
    path: "/api/orgs/{org}/teams/{team}/tokens",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_READ,
    handler: handler!(tokens::team_list),
};

/// `POST /api/orgs/{org}/teams/{team}/tokens`.
pub static TEAM_TOKEN_CREATE: Route = Route {
    name: "team-token-create",
    method: Method::POST,
    path: "/api/orgs/{org}/teams/{team}/tokens",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(tokens::team_create),
};

/// `DELETE /api/orgs/{org}/teams/{team}/tokens/{tokenId}`.
pub static TEAM_TOKEN_DELETE: Route = Route {
    name: "team-token-delete",
    method: Method::DELETE,
    path: "/api/orgs/{org}/teams/{team}/tokens/{tokenId}",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_WRITE,
    handler: handler!(tokens::team_delete),
};

/// `GET /api/orgs/{org}/auditlogs`: organization admins read the audit log.
pub static ORG_AUDITLOGS_LIST: Route = Route {
    name: "org-auditlogs-list",
    method: Method::GET,
    path: "/api/orgs/{org}/auditlogs",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_READ,
    handler: handler!(audit::list),
};

/// `GET /api/orgs/{org}/auditlogs/export`: the same, as CSV.
pub static ORG_AUDITLOGS_EXPORT: Route = Route {
    name: "org-auditlogs-export",
    method: Method::GET,
    path: "/api/orgs/{org}/auditlogs/export",
    auth: Auth::User,
    permission: Permission::OrgAdmin,
    needs: Needs::META_READ,
    handler: handler!(audit::export),
};

/// Every route, in the order documentation lists them.
pub static ROUTES: &[&Route] = &[
    &USER_GET,
    &USER_DEFAULT_ORG,
    &CAPABILITIES_GET,
    &USER_STACKS_LIST,
    &PROJECT_HEAD,
    &STACK_CREATE,
    &STACK_GET,
    &STACK_DELETE,
    &STACK_TAGS_UPDATE,
    &STACK_EXPORT,
    &STACK_ENCRYPT,
    &STACK_DECRYPT,
    &STACK_BATCH_ENCRYPT,
    &STACK_BATCH_DECRYPT,
    &STACK_LOG_DECRYPTION,
    &STACK_LOG_BATCH_DECRYPTION,
    &STACK_EXPORT_VERSION,
    &STACK_IMPORT,
    &STACK_HISTORY,
    &STACK_HISTORY_LATEST,
    &STACK_HISTORY_VERSION,
    &UPDATE_CREATE,
    &UPDATE_START,
    &UPDATE_STATUS,
    &UPDATE_RENEW_LEASE,
    &UPDATE_CHECKPOINT,
    &UPDATE_EVENTS_BATCH,
    &UPDATE_EVENTS_LIST,
    &UPDATE_COMPLETE,
    &UPDATE_CANCEL,
    &UPDATE_CHECKPOINT_VERBATIM,
    &UPDATE_CHECKPOINT_DELTA,
    &UPDATE_JOURNAL_ENTRIES,
    &STACK_RENAME,
    &ORG_HOOK_CREATE,
    &ORG_HOOK_LIST,
    &ORG_HOOK_GET,
    &ORG_HOOK_UPDATE,
    &ORG_HOOK_DELETE,
    &STACK_HOOK_CREATE,
    &STACK_HOOK_LIST,
    &STACK_HOOK_GET,
    &STACK_HOOK_UPDATE,
    &STACK_HOOK_DELETE,
    &ORG_HOOK_DELIVERIES,
    &ORG_HOOK_REDELIVER,
    &ORG_HOOK_PING,
    &STACK_HOOK_DELIVERIES,
    &STACK_HOOK_REDELIVER,
    &STACK_HOOK_PING,
    &ORG_GET,
    &ORG_UPDATE,
    &ORG_MEMBERS_LIST,
    &ORG_MEMBER_ADD,
    &ORG_MEMBER_UPDATE,
    &ORG_MEMBER_REMOVE,
    &ORG_TEAMS_LIST,
    &ORG_TEAM_CREATE,
    &ORG_TEAM_GET,
    &ORG_TEAM_UPDATE,
    &ORG_TEAM_DELETE,
    &STACK_TEAMS_LIST,
    &STACK_COLLABORATORS_LIST,
    &STACK_COLLABORATOR_SET,
    &STACK_COLLABORATOR_REMOVE,
    &USER_TOKENS_LIST,
    &USER_TOKEN_CREATE,
    &USER_TOKEN_DELETE,
    &ORG_TOKENS_LIST,
    &ORG_TOKEN_CREATE,
    &ORG_TOKEN_DELETE,
    &TEAM_TOKENS_LIST,
    &TEAM_TOKEN_CREATE,
    &TEAM_TOKEN_DELETE,
    &ORG_AUDITLOGS_LIST,
    &ORG_AUDITLOGS_EXPORT,
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::api::Router;

    #[test]
    fn the_table_builds_a_router_and_names_are_unique() {
        assert!(Router::new(ROUTES).is_ok());
        let names: HashSet<_> = ROUTES.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), ROUTES.len());
    }

    /// The declared permission must fit the route: lease routes are bound to their update,
    /// organization permissions need `{org}`, stack permissions the whole stack path, and a
    /// route changing anything never asks for less than write on a stack.
    #[test]
    fn every_route_declares_a_permission_that_fits_its_path() {
        for r in ROUTES {
            let has = |p: &str| r.path.contains(&format!("{{{p}}}"));
            match (r.auth, r.permission) {
                (Auth::Public, Permission::Public) => {}
                (Auth::Lease | Auth::LeaseAnyState, Permission::Lease) => {}
                (Auth::User, Permission::Token) => {}
                (Auth::User, Permission::OrgMember | Permission::OrgAdmin) => {
                    assert!(has("org"), "{}: org permission without {{org}}", r.name);
                }
                (Auth::User, Permission::Stack(p)) => {
                    assert!(has("org") && has("project") && has("stack"), "{}", r.name);
                    assert!(p > StackPermission::None, "{}: stack permission none", r.name);
                }
                (auth, permission) => {
                    panic!("{}: permission {permission:?} does not fit auth {auth:?}", r.name)
                }
            }
            if r.method == Method::DELETE {
                if let Permission::Stack(p) = r.permission {
                    assert!(
                        p >= StackPermission::Write,
                        "{}: deletes with read permission",
                        r.name
                    );
                }
                assert!(
                    r.permission != Permission::OrgMember,
                    "{}: members may not delete",
                    r.name
                );
            }
        }
    }

    #[test]
    fn every_route_and_job_has_a_function_binary() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
        for route in ROUTES {
            let file = dir.join(format!("{}.rs", route.name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("missing function binary {}", file.display()));
            let static_name = route.name.to_uppercase().replace('-', "_");
            assert!(
                text.contains(&format!("routes::{static_name}")),
                "{} serves another route",
                file.display()
            );
        }
        let jobs = crate::jobs::table::JOBS;
        for job in jobs {
            let file = dir.join(format!("{}.rs", job.name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("missing function binary {}", file.display()));
            let static_name = job.name.to_uppercase().replace('-', "_");
            assert!(
                text.contains(&format!("table::{static_name}")) && text.contains("run_job"),
                "{} runs another job",
                file.display()
            );
        }
        let bins = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            bins,
            ROUTES.len() + jobs.len(),
            "functions/src/bin has binaries for routes or jobs not in the tables"
        );
    }
}
