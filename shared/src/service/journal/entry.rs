//! The journal entry envelope as the CLI sends it, and what can be wrong with one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JOURNAL_ENTRY_VERSION;

/// The kinds of journal entry (`apitype.JournalEntryKind`). The wire carries the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// An operation started; it stays pending until a success/failure for its operation ID.
    Begin,
    /// An operation finished and may add, remove or mark resources.
    Success,
    /// An operation failed; only its pending operation is dropped.
    Failure,
    /// A non-persisted refresh finished: the refreshed state replaces the old one in place.
    RefreshSuccess,
    /// Outputs were registered for a resource already written by an earlier entry.
    Outputs,
    /// The base deployment is replaced wholesale (sent once, at the start of execution).
    Write,
    /// The secrets provider of the deployment.
    SecretsManager,
    /// The engine rebuilt its base state (after a refresh): fold everything into a new base.
    RebuiltBaseState,
    /// An extension parameterization blob to store in `extensions`.
    ExtensionParameterize,
    /// The complete snippet list of the deployment.
    Snippets,
}

impl EntryKind {
    /// The kind for a wire value, or `None` for a kind this server does not know.
    pub fn from_i64(kind: i64) -> Option<Self> {
        Some(match kind {
            0 => Self::Begin,
            1 => Self::Success,
            2 => Self::Failure,
            3 => Self::RefreshSuccess,
            4 => Self::Outputs,
            5 => Self::Write,
            6 => Self::SecretsManager,
            7 => Self::RebuiltBaseState,
            8 => Self::ExtensionParameterize,
            9 => Self::Snippets,
            _ => return None,
        })
    }

    /// The wire value of this kind.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Begin => 0,
            Self::Success => 1,
            Self::Failure => 2,
            Self::RefreshSuccess => 3,
            Self::Outputs => 4,
            Self::Write => 5,
            Self::SecretsManager => 6,
            Self::RebuiltBaseState => 7,
            Self::ExtensionParameterize => 8,
            Self::Snippets => 9,
        }
    }
}

fn default_entry_version() -> i64 {
    JOURNAL_ENTRY_VERSION
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One journal entry as sent by the CLI (`apitype.JournalEntry`). `*Old` fields are indexes
/// into the base deployment's `resources`; `*New` fields are operation IDs of resources
/// produced earlier in this update. Absent optional fields deserialize as `None`/`false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Entry format version; always 1 today (assumed when absent).
    #[serde(default = "default_entry_version")]
    pub version: i64,
    /// Entry kind as its wire integer; see [`EntryKind`].
    pub kind: i64,
    /// Strictly increasing per update, starting at 1.
    #[serde(rename = "sequenceID")]
    pub sequence_id: i64,
    /// The operation this entry belongs to (0 for `write` and `secrets-manager`).
    #[serde(rename = "operationID", default)]
    pub operation_id: i64,
    /// Base index of a resource to drop (or to replace, for refresh/outputs entries).
    /// Serialized as `null` when unset, as the CLI does.
    #[serde(default)]
    pub remove_old: Option<i64>,
    /// Operation ID of a new resource to drop (or to replace, for refresh/outputs entries).
    /// Serialized as `null` when unset, as the CLI does.
    #[serde(default)]
    pub remove_new: Option<i64>,
    /// Base index of a resource to mark `pendingReplacement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_replacement_old: Option<i64>,
    /// Operation ID of a new resource to mark `pendingReplacement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_replacement_new: Option<i64>,
    /// Base index of a resource to mark `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_old: Option<i64>,
    /// Operation ID of a new resource to mark `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_new: Option<i64>,
    /// The resource state (`ResourceV3`) this entry produces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// The pending operation (`OperationV2`) a `begin` entry records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Value>,
    /// True when the entry is part of a refresh.
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_refresh: bool,
    /// The secrets provider (`{type, state}`) of a `secrets-manager` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_provider: Option<Value>,
    /// The complete snippet list of a `snippets` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippets: Option<Vec<Value>>,
    /// The new base deployment (`DeploymentV3`) of a `write` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_snapshot: Option<Value>,
    /// Key of an `extension-parameterize` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_ref: Option<String>,
    /// Value (`{name, version, value}`) of an `extension-parameterize` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Value>,
    /// True when serialising this entry needed byte strings (non-UTF-8 data, possibly hidden
    /// inside secrets), which gates the deployment on the `byteString` feature.
    #[serde(default, skip_serializing_if = "is_false")]
    pub requires_byte_string: bool,
}

impl Default for JournalEntry {
    /// An empty version-1 `begin` entry with sequence ID 0; callers fill in what they need.
    fn default() -> Self {
        Self {
            version: JOURNAL_ENTRY_VERSION,
            kind: EntryKind::Begin.as_i64(),
            sequence_id: 0,
            operation_id: 0,
            remove_old: None,
            remove_new: None,
            pending_replacement_old: None,
            pending_replacement_new: None,
            delete_old: None,
            delete_new: None,
            state: None,
            operation: None,
            is_refresh: false,
            secrets_provider: None,
            snippets: None,
            new_snapshot: None,
            extension_ref: None,
            extension: None,
            requires_byte_string: false,
        }
    }
}

/// Why a journal could not be replayed. All of these are client errors (4xx): the journal
/// does not fit the base deployment or is malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JournalError {
    /// The base deployment (or a `write` entry's snapshot) has the wrong shape.
    #[error("invalid deployment: {0}")]
    InvalidDeployment(String),
    /// A sequence ID is zero or negative.
    #[error("journal entry has invalid sequence ID {0}")]
    InvalidSequence(i64),
    /// An entry has a format version other than 1.
    #[error("journal entry {sequence} has unsupported version {version}")]
    UnsupportedVersion {
        /// Sequence ID of the entry.
        sequence: i64,
        /// Its version.
        version: i64,
    },
    /// An entry has a kind outside 0..=9.
    #[error("journal entry {sequence} has unknown kind {kind}")]
    UnknownKind {
        /// Sequence ID of the entry.
        sequence: i64,
        /// Its kind.
        kind: i64,
    },
    /// A `*Old` field points outside the base deployment's resources.
    #[error("journal entry {sequence}: base resource index {index} out of range (base has {len})")]
    BaseIndexOutOfRange {
        /// Sequence ID of the entry.
        sequence: i64,
        /// The offending index.
        index: i64,
        /// Number of resources in the base.
        len: usize,
    },
    /// A `*New` field names an operation that produced no resource in this update.
    #[error("journal entry {sequence}: operation {operation} produced no resource")]
    UnknownOperation {
        /// Sequence ID of the entry.
        sequence: i64,
        /// The offending operation ID.
        operation: i64,
    },
    /// A field required by the entry's kind is missing.
    #[error("journal entry {sequence}: missing {field}")]
    MissingField {
        /// Sequence ID of the entry.
        sequence: i64,
        /// The JSON name of the field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("journal entry {sequence}: {field} must be {expected}")]
    InvalidField {
        /// Sequence ID of the entry.
        sequence: i64,
        /// The JSON name of the field.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// Two resources claim the same alias, so URN references cannot be normalised.
    #[error("two resources ('{first}' and '{second}') have the same alias: '{alias}'")]
    DuplicateAlias {
        /// The alias.
        alias: String,
        /// The first resource claiming it.
        first: String,
        /// The second resource claiming it.
        second: String,
    },
}
