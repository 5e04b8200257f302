//! Wire types of the Pulumi service API (docs/PROTOCOL-NOTES.md, Endpoints), mirroring
//! `sdk/go/common/apitype`.
//! Field names are exactly the JSON names the CLI uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /api/user` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceUser {
    /// User id.
    pub id: String,
    /// Login; must be non-empty or the CLI rejects the response.
    pub github_login: String,
    /// Display name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Organizations the user belongs to.
    pub organizations: Vec<ServiceUserOrg>,
    /// Linked identities (none here).
    pub identities: Vec<String>,
    /// Whether the user administers the whole service.
    pub site_admin: bool,
    /// Whether the user signed in with multi-factor authentication (not tracked here).
    #[serde(rename = "hasMFA")]
    pub has_mfa: bool,
    /// Whether an organization manages the account (SCIM; never here).
    pub is_org_managed: bool,
    /// Whether several organizations manage the account (never here).
    pub is_managed_by_multi_org: bool,
    /// The token used for this call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_info: Option<TokenInfo>,
}

/// One organization in [`ServiceUser`] (Pulumi Cloud's `OrganizationSummaryWithRole`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceUserOrg {
    /// Organization name.
    pub name: String,
    /// Organization login; must be non-empty.
    pub github_login: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// The caller's role in it: `admin` or `member`.
    pub role: String,
}

/// Which token authenticated a call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TokenInfo {
    /// Token name.
    pub name: String,
    /// The organization of an organization or team token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The team of a team token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// `GET /api/user/organizations/default` response: Go field names, no json tags.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DefaultOrg {
    /// The default organization.
    #[serde(rename = "GitHubLogin")]
    pub github_login: String,
    /// Messages to show.
    #[serde(rename = "Messages")]
    pub messages: Vec<serde_json::Value>,
}

/// One capability of `GET /api/capabilities`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Capability {
    /// Capability name.
    pub capability: String,
    /// Capability version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Capability configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<serde_json::Value>,
}

/// `GET /api/capabilities` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Capabilities {
    /// Advertised capabilities.
    pub capabilities: Vec<Capability>,
}

/// `POST /api/stacks/{org}/{project}` request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreateStackRequest {
    /// The new stack's name.
    pub stack_name: String,
    /// Initial tags.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    /// Teams to grant access (Pulumi Cloud feature).
    #[serde(default)]
    pub teams: Option<Vec<String>>,
    /// Initial deployment (an `UntypedDeployment`).
    #[serde(default)]
    pub state: Option<serde_json::Value>,
    /// ESC remote config.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

/// What `GET /api/stacks/{org}/{project}/{stack}` returns while an update runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OperationStatus {
    /// Update kind.
    pub kind: String,
    /// Who started it.
    pub author: String,
    /// When (Unix seconds).
    pub started: i64,
}

/// `GET /api/stacks/{org}/{project}/{stack}` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stack {
    /// Immutable stack id.
    pub id: String,
    /// Organization.
    pub org_name: String,
    /// Project.
    pub project_name: String,
    /// Stack.
    pub stack_name: String,
    /// The running operation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_operation: Option<OperationStatus>,
    /// The running (or last) update id; empty when never updated.
    pub active_update: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Current version (0 = never updated).
    pub version: i64,
}

/// One entry of `GET /api/user/stacks`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct StackSummary {
    /// Immutable stack id.
    pub id: String,
    /// Organization.
    pub org_name: String,
    /// Project; must be non-empty.
    pub project_name: String,
    /// Stack.
    pub stack_name: String,
    /// End of the last update (Unix seconds); 0 while one runs; absent if never updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_update: Option<i64>,
    /// Resources in the current deployment; absent if never updated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_count: Option<i64>,
}

/// `GET /api/user/stacks` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ListStacksResponse {
    /// This page.
    pub stacks: Vec<StackSummary>,
    /// Present while more pages follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
}
