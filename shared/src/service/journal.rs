//! Journal replay (docs/PROTOCOL-NOTES.md, Journal): rebuilds a deployment from a base
//! deployment plus the journal entries the CLI sends with `PATCH .../journalentries` when the
//! update was started with `journalVersion: 1`.
//!
//! The rules follow Pulumi's `JournalReplayer` (`pkg/backend/journal.go`) one for one; the
//! places where this implementation is deliberately stricter or more forward-compatible are
//! marked "Divergence" below. Resources, operations, snippets and secrets providers stay
//! `serde_json::Value`s so fields this server does not know about survive the round trip;
//! only the entry envelope is typed.
//!
//! The CLI allocates `sequenceID`s before it encrypts an entry and enqueues it, so entries of
//! steps that run in parallel can reach the batcher (and therefore the server) slightly out of
//! order, even across batches. [`Replayer::apply`] therefore applies entries strictly in
//! `sequenceID` order, buffering any that arrive after a gap until the gap is filled, and
//! ignores sequence IDs it has already seen so that retried batches are harmless.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only journal entry format version this module understands.
pub const JOURNAL_ENTRY_VERSION: i64 = 1;
/// Deployment schema version used when no feature needs the newer schema.
pub const DEPLOYMENT_VERSION_CURRENT: i64 = 3;
/// Deployment schema version used (with a `features` list) when any feature is in use.
pub const DEPLOYMENT_VERSION_LATEST: i64 = 4;

/// Type token of the root stack resource; children of the root keep an unqualified type.
const ROOT_STACK_TYPE: &str = "pulumi:pulumi:Stack";
use super::urn::{format as format_urn, parse as parse_urn, DELIMITER as URN_NAME_DELIMITER};
/// Separator between the parent and own type in a qualified URN type.
const URN_TYPE_DELIMITER: char = '$';
/// The ID Pulumi substitutes when a provider reference has an empty ID.
const UNKNOWN_PROVIDER_ID: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

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

/// Schema version, sorted features and the deployment object, as `generate` returns them.
type Generated = (i64, Vec<String>, Map<String, Value>);

/// Replay state for one update: the base deployment plus everything recorded by the entries
/// applied so far. Each entry costs O(1) (plus the size of the values it carries), so a whole
/// journal replays in linear time; [`Replayer::snapshot`] is linear in the deployment size.
///
/// The state is resumable: it serializes (serde) with everything applied up to
/// [`Replayer::last_sequence`], so a replay can stop, be stored, and continue later from the
/// next sequence ID with exactly the result an uninterrupted replay gives (incremental
/// materialisation, `service::materialise`). Entries held back after a gap are not part of
/// it: whoever resumes reads every entry after `last_sequence` again anyway. A deserialized
/// state must pass [`Replayer::check_resumed`] before use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replayer {
    /// The base deployment (a `DeploymentV3` object), including its `resources`.
    base: Map<String, Value>,
    /// Number of resources in `base`, cached for index validation.
    base_len: usize,
    /// Operation IDs whose new resource must be dropped.
    to_remove: HashSet<i64>,
    /// Base indexes to drop.
    to_delete_in_snapshot: HashSet<usize>,
    /// Base indexes to replace with a new state (refresh and outputs entries).
    to_replace_in_snapshot: HashMap<usize, Value>,
    /// Base indexes to mark `delete: true`.
    mark_as_deletion: HashSet<usize>,
    /// Base indexes to mark `pendingReplacement: true`.
    mark_as_pending_replacement: HashSet<usize>,
    /// Operation ID -> position in `new_resources`.
    operation_to_index: HashMap<i64, usize>,
    /// Operations begun but not finished, with their `operation` if the begin carried one.
    /// A BTreeMap so pending operations come out in operation order; Go iterates a map here,
    /// so its order is random and any fixed order is as good.
    incomplete: BTreeMap<i64, Option<Value>>,
    /// Whether any applied entry was part of a refresh (prunes dangling references).
    has_refresh: bool,
    /// Whether any applied entry needed byte strings.
    requires_byte_string: bool,
    /// Resources produced by this update, in the order they were produced.
    new_resources: Vec<Value>,
    /// Extensions recorded by `extension-parameterize` entries.
    extensions: Map<String, Value>,
    /// Highest sequence ID applied; every lower one has been applied too.
    last_sequence: i64,
    /// Entries that arrived after a gap, waiting for the missing sequence IDs.
    #[serde(skip)]
    buffered: BTreeMap<i64, JournalEntry>,
}

impl Replayer {
    /// Starts a replay on top of `base`, the stack's deployment when the update started (what
    /// `GET .../export` returned, i.e. `UntypedDeployment.deployment`). `null` counts as the
    /// empty deployment, as for a stack that was never updated.
    pub fn new(base: Value) -> Result<Self, JournalError> {
        let base = match base {
            Value::Null => Map::new(),
            other => validate_deployment(other, "base deployment")?,
        };
        let base_len = resources_of(&base).len();
        Ok(Self {
            base,
            base_len,
            to_remove: HashSet::new(),
            to_delete_in_snapshot: HashSet::new(),
            to_replace_in_snapshot: HashMap::new(),
            mark_as_deletion: HashSet::new(),
            mark_as_pending_replacement: HashSet::new(),
            operation_to_index: HashMap::new(),
            incomplete: BTreeMap::new(),
            has_refresh: false,
            requires_byte_string: false,
            new_resources: Vec::new(),
            extensions: Map::new(),
            last_sequence: 0,
            buffered: BTreeMap::new(),
        })
    }

    /// The highest sequence ID applied so far (0 before any); all lower ones are applied too.
    pub fn last_sequence(&self) -> i64 {
        self.last_sequence
    }

    /// Number of entries received after a gap and held back until the gap is filled. At the
    /// end of an update this should be 0; otherwise entries were lost.
    pub fn buffered(&self) -> usize {
        self.buffered.len()
    }

    /// Applies one batch of entries. Sequence IDs already applied or already buffered are
    /// ignored (a retried batch is harmless); entries after a gap are buffered until the
    /// missing ones arrive. On error, every entry before the failing one stays applied, the
    /// failing entry leaves the state untouched and is discarded, and later entries stay
    /// buffered.
    pub fn apply(&mut self, entries: &[JournalEntry]) -> Result<(), JournalError> {
        check_sequences(entries)?;
        for entry in entries {
            if self.is_new_sequence(entry.sequence_id) {
                self.buffered.insert(entry.sequence_id, entry.clone());
            }
        }
        self.drain()
    }

    /// Like [`Replayer::apply`], but takes ownership to avoid cloning the entries.
    pub fn apply_owned(&mut self, entries: Vec<JournalEntry>) -> Result<(), JournalError> {
        check_sequences(&entries)?;
        for entry in entries {
            if self.is_new_sequence(entry.sequence_id) {
                self.buffered.insert(entry.sequence_id, entry);
            }
        }
        self.drain()
    }

    /// Generates the deployment from the base and the entries applied so far, with `manifest`
    /// (`{time, magic, version}`, chosen by the caller) as its manifest. Returns the schema
    /// version (3, or 4 when a feature is used), the sorted feature list and the `DeploymentV3`
    /// object. Buffered entries after a gap are not included.
    pub fn snapshot(&self, manifest: Value) -> Result<(i64, Vec<String>, Value), JournalError> {
        let (version, features, deployment) = self.generate(manifest)?;
        Ok((version, features, Value::Object(deployment)))
    }

    /// Checks a state that was stored and read back (it comes from the blob store, so it is
    /// not trusted to be intact): every index it holds must point into its own resource lists,
    /// or a later entry or [`Replayer::snapshot`] would index out of bounds.
    pub fn check_resumed(&self) -> Result<(), JournalError> {
        let corrupt =
            |what: &str| JournalError::InvalidDeployment(format!("resumed state: {what}"));
        if self.last_sequence < 0 {
            return Err(corrupt("negative sequence"));
        }
        if self.base_len != resources_of(&self.base).len() {
            return Err(corrupt("base length does not match the base"));
        }
        let in_base = |i: &usize| *i < self.base_len;
        if !(self.to_delete_in_snapshot.iter().all(in_base)
            && self.to_replace_in_snapshot.keys().all(in_base)
            && self.mark_as_deletion.iter().all(in_base)
            && self.mark_as_pending_replacement.iter().all(in_base))
        {
            return Err(corrupt("base index out of range"));
        }
        if self.operation_to_index.values().any(|i| *i >= self.new_resources.len()) {
            return Err(corrupt("operation index out of range"));
        }
        Ok(())
    }

    /// Whether `seq` is neither applied nor buffered yet.
    fn is_new_sequence(&self, seq: i64) -> bool {
        seq > self.last_sequence && !self.buffered.contains_key(&seq)
    }

    /// Applies buffered entries for as long as they are contiguous with what was applied.
    fn drain(&mut self) -> Result<(), JournalError> {
        while let Some(entry) = self.buffered.remove(&(self.last_sequence + 1)) {
            self.add(entry)?;
            self.last_sequence += 1;
        }
        Ok(())
    }

    /// Applies one entry (journal.go `JournalReplayer.Add`). Everything is validated before
    /// anything is mutated so a rejected entry leaves the state as it was.
    fn add(&mut self, entry: JournalEntry) -> Result<(), JournalError> {
        let seq = entry.sequence_id;
        // Divergence: Go ignores the version and silently skips unknown kinds. A server that
        // negotiated journalVersion 1 must not guess at other formats, so both are errors.
        if entry.version != JOURNAL_ENTRY_VERSION {
            return Err(JournalError::UnsupportedVersion { sequence: seq, version: entry.version });
        }
        let Some(kind) = EntryKind::from_i64(entry.kind) else {
            return Err(JournalError::UnknownKind { sequence: seq, kind: entry.kind });
        };
        let requires_byte_string = entry.requires_byte_string;
        match kind {
            EntryKind::Begin => {
                if let Some(op) = &entry.operation {
                    if !op.is_object() {
                        return Err(invalid(seq, "operation", "an object"));
                    }
                }
                self.incomplete.insert(entry.operation_id, entry.operation);
            }
            EntryKind::Success => self.add_success(entry)?,
            EntryKind::Failure => {
                self.incomplete.remove(&entry.operation_id);
            }
            EntryKind::RefreshSuccess => self.add_refresh_success(entry)?,
            EntryKind::Outputs => self.add_outputs(entry)?,
            EntryKind::Write => {
                // Go stores the pointer as is, and a nil snapshot would crash generation; the
                // engine always sends one, so a missing snapshot is a malformed entry.
                let snapshot = entry
                    .new_snapshot
                    .ok_or(JournalError::MissingField { sequence: seq, field: "newSnapshot" })?;
                let base = validate_deployment(snapshot, "newSnapshot")?;
                // Indexes recorded earlier now refer to the new base, exactly as in Go; the
                // engine sends this entry before any entry that records an index.
                self.base_len = resources_of(&base).len();
                self.base = base;
            }
            EntryKind::SecretsManager => self.add_secrets_manager(entry)?,
            EntryKind::Snippets => match entry.snippets {
                // An empty list is omitted on the wire, and Go assigns the nil slice, which
                // clears the snippets.
                Some(snippets) if !snippets.is_empty() => {
                    self.base.insert("snippets".into(), Value::Array(snippets));
                }
                _ => {
                    self.base.remove("snippets");
                }
            },
            EntryKind::RebuiltBaseState => {
                // Fold everything into a new base and start over; hasRefresh and the
                // byte-string flag are deliberately kept, as in Go.
                let manifest = self.base.get("manifest").cloned().unwrap_or(Value::Null);
                let (_, _, deployment) = self.generate(manifest)?;
                self.base_len = resources_of(&deployment).len();
                self.base = deployment;
                self.to_remove.clear();
                self.to_delete_in_snapshot.clear();
                self.to_replace_in_snapshot.clear();
                self.mark_as_deletion.clear();
                self.mark_as_pending_replacement.clear();
                self.operation_to_index.clear();
                self.incomplete.clear();
                self.new_resources.clear();
                self.extensions.clear();
            }
            EntryKind::ExtensionParameterize => {
                let reference = entry
                    .extension_ref
                    .ok_or(JournalError::MissingField { sequence: seq, field: "extensionRef" })?;
                let extension = entry
                    .extension
                    .ok_or(JournalError::MissingField { sequence: seq, field: "extension" })?;
                self.extensions.insert(reference, extension);
            }
        }
        // Go records this for every entry, whatever its kind.
        if requires_byte_string {
            self.requires_byte_string = true;
        }
        Ok(())
    }

    fn add_success(&mut self, entry: JournalEntry) -> Result<(), JournalError> {
        let seq = entry.sequence_id;
        if let Some(state) = &entry.state {
            check_resource(seq, state)?;
        }
        // The entry's own state is indexed before its other fields are looked at, so they may
        // refer to the entry's own operation.
        let own = entry.state.as_ref().map(|_| (entry.operation_id, self.new_resources.len()));
        let remove_old = self.old_index(seq, entry.remove_old)?;
        let delete_old = self.old_index(seq, entry.delete_old)?;
        let pending_old = self.old_index(seq, entry.pending_replacement_old)?;
        // Only validated here: removal of a new resource is resolved at generation time.
        self.new_index(seq, entry.remove_new, own)?;
        let delete_new = self.new_index(seq, entry.delete_new, own)?;
        let pending_new = self.new_index(seq, entry.pending_replacement_new, own)?;

        self.incomplete.remove(&entry.operation_id);
        if let Some(state) = entry.state {
            self.operation_to_index.insert(entry.operation_id, self.new_resources.len());
            self.new_resources.push(state);
        }
        if let Some(i) = remove_old {
            self.to_delete_in_snapshot.insert(i);
        }
        // Removal of a new resource is resolved at generation time, as in Go.
        if let Some(op) = entry.remove_new {
            self.to_remove.insert(op);
        }
        if let Some(i) = delete_old {
            self.mark_as_deletion.insert(i);
        }
        if let Some(i) = delete_new {
            set_flag(&mut self.new_resources[i], "delete");
        }
        if let Some(i) = pending_old {
            self.mark_as_pending_replacement.insert(i);
        }
        if let Some(i) = pending_new {
            set_flag(&mut self.new_resources[i], "pendingReplacement");
        }
        if entry.is_refresh {
            self.has_refresh = true;
        }
        Ok(())
    }

    fn add_refresh_success(&mut self, entry: JournalEntry) -> Result<(), JournalError> {
        let seq = entry.sequence_id;
        if let Some(state) = &entry.state {
            check_resource(seq, state)?;
        }
        let remove_old = self.old_index(seq, entry.remove_old)?;
        let remove_new = self.new_index(seq, entry.remove_new, None)?;

        self.incomplete.remove(&entry.operation_id);
        self.has_refresh = true;
        if let Some(i) = remove_old {
            match &entry.state {
                // The resource no longer exists.
                None => {
                    self.to_delete_in_snapshot.insert(i);
                }
                // Non-persisted refreshes update the resource in place to keep its position.
                Some(state) => {
                    self.to_replace_in_snapshot.insert(i, state.clone());
                }
            }
        }
        if let (Some(i), Some(op)) = (remove_new, entry.remove_new) {
            match entry.state {
                None => {
                    self.to_remove.insert(op);
                }
                Some(state) => self.new_resources[i] = state,
            }
        }
        Ok(())
    }

    fn add_outputs(&mut self, entry: JournalEntry) -> Result<(), JournalError> {
        let seq = entry.sequence_id;
        // Without a state an outputs entry changes nothing, as in Go.
        let Some(state) = entry.state else { return Ok(()) };
        check_resource(seq, &state)?;
        let remove_old = self.old_index(seq, entry.remove_old)?;
        let remove_new = self.new_index(seq, entry.remove_new, None)?;
        if let Some(i) = remove_new {
            self.new_resources[i] = state.clone();
        }
        if let Some(i) = remove_old {
            self.to_replace_in_snapshot.insert(i, state);
        }
        Ok(())
    }

    fn add_secrets_manager(&mut self, entry: JournalEntry) -> Result<(), JournalError> {
        let seq = entry.sequence_id;
        // Divergence: Go dereferences a missing provider (a crash when the base has one, a
        // no-op otherwise). Keeping the base's provider is the safe reading of both.
        let Some(provider) = entry.secrets_provider else { return Ok(()) };
        let Some(new) = provider.as_object() else {
            return Err(invalid(seq, "secretsProvider", "an object"));
        };
        // Reuse the existing provider when type and state are unchanged so that secrets are
        // not re-keyed on every update. Go compares the raw state bytes; JSON equality is
        // the same test without caring about whitespace or key order.
        if let Some(Value::Object(current)) = self.base.get("secrets_providers") {
            let same_type = current.get("type") == new.get("type");
            let same_state = non_null(current.get("state")) == non_null(new.get("state"));
            if same_type && same_state {
                return Ok(());
            }
        }
        self.base.insert("secrets_providers".into(), provider);
        Ok(())
    }

    /// Validates a `*Old` index against the current base.
    fn old_index(&self, seq: i64, index: Option<i64>) -> Result<Option<usize>, JournalError> {
        let Some(index) = index else { return Ok(None) };
        // Divergence: Go keys a map by the index and silently ignores indexes that match no
        // base resource. Such an index means the client's base is not ours, so reject it.
        match usize::try_from(index) {
            Ok(i) if i < self.base_len => Ok(Some(i)),
            _ => {
                Err(JournalError::BaseIndexOutOfRange { sequence: seq, index, len: self.base_len })
            }
        }
    }

    /// Resolves a `*New` operation ID to its position in `new_resources`. `own` is the
    /// (operation, position) of the state the entry itself is about to add, if any. Positions
    /// only ever come from pushes into `new_resources` (and are cleared with it), so callers
    /// may index with them once the entry's own state has been pushed.
    fn new_index(
        &self,
        seq: i64,
        operation: Option<i64>,
        own: Option<(i64, usize)>,
    ) -> Result<Option<usize>, JournalError> {
        let Some(operation) = operation else { return Ok(None) };
        if let Some((own_op, own_index)) = own {
            if own_op == operation {
                return Ok(Some(own_index));
            }
        }
        // Divergence: Go reads a missing map entry as position 0 and so edits (or drops) an
        // unrelated resource, or crashes on an empty list. Reject the entry instead.
        match self.operation_to_index.get(&operation) {
            Some(&i) => Ok(Some(i)),
            None => Err(JournalError::UnknownOperation { sequence: seq, operation }),
        }
    }

    /// journal.go `GenerateDeployment`.
    fn generate(&self, manifest: Value) -> Result<Generated, JournalError> {
        let byte_string = self.requires_byte_string;
        let mut features = BTreeSet::new();

        // New resources first, in production order, minus those removed later in the update.
        let removed: HashSet<usize> = self
            .to_remove
            .iter()
            .filter_map(|op| self.operation_to_index.get(op).copied())
            .collect();
        let base_resources = resources_of(&self.base);
        let mut resources = Vec::with_capacity(self.new_resources.len() + base_resources.len());
        for (i, res) in self.new_resources.iter().enumerate() {
            if !removed.contains(&i) {
                apply_features(res, byte_string, &mut features);
                resources.push(res.clone());
            }
        }

        // Then the base resources this update did not remove. A replacement state wins over
        // the delete/pendingReplacement marks (the Go code sets the marks on the copy it then
        // discards).
        for (i, res) in base_resources.iter().enumerate() {
            if self.to_delete_in_snapshot.contains(&i) {
                continue;
            }
            let res = match self.to_replace_in_snapshot.get(&i) {
                Some(state) => state.clone(),
                None => {
                    let mut res = res.clone();
                    if self.mark_as_pending_replacement.contains(&i) {
                        set_flag(&mut res, "pendingReplacement");
                    }
                    if self.mark_as_deletion.contains(&i) {
                        set_flag(&mut res, "delete");
                    }
                    res
                }
            };
            apply_features(&res, byte_string, &mut features);
            resources.push(res);
        }

        // Operations still in flight, then the base's pending creates: those need a human to
        // resolve, so they are never dropped. Other base pending operations are dropped.
        let mut operations = Vec::new();
        for op in self.incomplete.values().flatten() {
            apply_features(op.get("resource").unwrap_or(&Value::Null), byte_string, &mut features);
            operations.push(op.clone());
        }
        if let Some(Value::Array(pending)) = self.base.get("pending_operations") {
            for op in pending {
                if op.get("type").and_then(Value::as_str) == Some("creating") {
                    let resource = op.get("resource").unwrap_or(&Value::Null);
                    apply_features(resource, byte_string, &mut features);
                    operations.push(op.clone());
                }
            }
        }

        // Features are computed before this pruning, as in Go.
        if self.has_refresh {
            rebuild_dependencies(&mut resources);
        }

        // Divergence: Go builds a fresh DeploymentV3 and so drops top-level keys it does not
        // know. Carrying unknown base keys forward keeps state written by newer CLIs intact.
        let mut deployment = Map::new();
        for (key, value) in &self.base {
            if !matches!(
                key.as_str(),
                "manifest"
                    | "secrets_providers"
                    | "resources"
                    | "pending_operations"
                    | "metadata"
                    | "snippets"
                    | "extensions"
            ) {
                deployment.insert(key.clone(), value.clone());
            }
        }
        deployment.insert("manifest".into(), manifest);
        if let Some(sp) = non_null(self.base.get("secrets_providers")) {
            deployment.insert("secrets_providers".into(), sp.clone());
        }
        if !resources.is_empty() {
            deployment.insert("resources".into(), Value::Array(resources));
        }
        if !operations.is_empty() {
            deployment.insert("pending_operations".into(), Value::Array(operations));
        }
        // Go's metadata is a struct, so it is always present (`{}` when empty).
        let metadata = non_null(self.base.get("metadata")).cloned();
        deployment.insert("metadata".into(), metadata.unwrap_or_else(|| Value::Object(Map::new())));
        if let Some(Value::Array(snippets)) = self.base.get("snippets") {
            if !snippets.is_empty() {
                features.insert("snippets-prototype");
                deployment.insert("snippets".into(), Value::Array(snippets.clone()));
            }
        }
        // The base's extensions win over ones recorded in this update (Go copies the base's
        // map over the recorded one).
        let mut extensions = self.extensions.clone();
        if let Some(Value::Object(base_extensions)) = self.base.get("extensions") {
            for (key, value) in base_extensions {
                extensions.insert(key.clone(), value.clone());
            }
        }
        if !extensions.is_empty() {
            deployment.insert("extensions".into(), Value::Object(extensions));
        }

        normalize_urn_references(&mut deployment)?;

        let version = if features.is_empty() {
            DEPLOYMENT_VERSION_CURRENT
        } else {
            DEPLOYMENT_VERSION_LATEST
        };
        Ok((version, features.into_iter().map(String::from).collect(), deployment))
    }
}

/// Rejects a batch holding a sequence ID below 1 before any of it is buffered, so a bad batch
/// changes nothing. (Go's journaler records such entries as errors.)
fn check_sequences(entries: &[JournalEntry]) -> Result<(), JournalError> {
    match entries.iter().find(|e| e.sequence_id <= 0) {
        Some(e) => Err(JournalError::InvalidSequence(e.sequence_id)),
        None => Ok(()),
    }
}

fn invalid(sequence: i64, field: &'static str, expected: &'static str) -> JournalError {
    JournalError::InvalidField { sequence, field, expected }
}

/// Resource states must be JSON objects (`ResourceV3`).
fn check_resource(seq: i64, state: &Value) -> Result<(), JournalError> {
    if state.is_object() {
        Ok(())
    } else {
        Err(invalid(seq, "state", "an object"))
    }
}

/// Treats JSON `null` like an absent field, as Go's pointer/slice fields do.
fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// Checks that `v` is a `DeploymentV3`-shaped object, as far as replay relies on it.
fn validate_deployment(v: Value, what: &str) -> Result<Map<String, Value>, JournalError> {
    let Value::Object(map) = v else {
        return Err(JournalError::InvalidDeployment(format!("{what} is not an object")));
    };
    match map.get("resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(resources)) => {
            if !resources.iter().all(Value::is_object) {
                return Err(JournalError::InvalidDeployment(format!(
                    "{what}: every resource must be an object"
                )));
            }
        }
        Some(_) => {
            return Err(JournalError::InvalidDeployment(format!("{what}: resources is not a list")))
        }
    }
    match map.get("pending_operations") {
        None | Some(Value::Null) | Some(Value::Array(_)) => Ok(map),
        Some(_) => Err(JournalError::InvalidDeployment(format!(
            "{what}: pending_operations is not a list"
        ))),
    }
}

/// The `resources` of a validated deployment (empty when absent or null).
fn resources_of(deployment: &Map<String, Value>) -> &[Value] {
    match deployment.get("resources") {
        Some(Value::Array(resources)) => resources,
        _ => &[],
    }
}

/// Sets a boolean marker (`delete`, `pendingReplacement`) on a resource object.
fn set_flag(resource: &mut Value, key: &str) {
    if let Some(obj) = resource.as_object_mut() {
        obj.insert(key.to_string(), Value::Bool(true));
    }
}

fn non_empty_str(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

/// pkg/resource/stack `ApplyFeatures`: which v4 features a resource needs. `byteString`
/// cannot be seen in the (encrypted) resource, so it comes from the entries' flag, and, as
/// in Go, is only recorded when there is at least one resource or operation to look at.
fn apply_features(res: &Value, byte_string: bool, features: &mut BTreeSet<&'static str>) {
    if byte_string {
        features.insert("byteString");
    }
    let Some(obj) = res.as_object() else { return };
    if obj.get("refreshBeforeUpdate") == Some(&Value::Bool(true)) {
        features.insert("refreshBeforeUpdate");
    }
    if non_empty_str(obj.get("viewOf")) {
        features.insert("views");
    }
    if obj.get("resourceHooks").and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
        features.insert("hooks");
    }
    if obj.get("taint") == Some(&Value::Bool(true)) {
        features.insert("taint");
    }
    if obj.get("replaceWith").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
        features.insert("replaceWith");
    }
    if non_empty_str(obj.get("extensionRef")) {
        features.insert("extensionParameterization");
    }
    if non_empty_str(obj.get("snippetID")) {
        features.insert("snippets-prototype");
    }
}

/// Keeps the elements of a URN list that are in `referenceable`; non-strings cannot be.
fn filter_urns(list: &[Value], referenceable: &HashSet<String>) -> Vec<Value> {
    list.iter().filter(|u| u.as_str().is_some_and(|u| referenceable.contains(u))).cloned().collect()
}

/// Replaces (or, when it became empty, removes) a field: Go's `omitempty` drops empty lists,
/// maps and strings on output.
fn set_or_remove(obj: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Null => true,
        _ => false,
    };
    if empty {
        obj.remove(key);
    } else {
        obj.insert(key.to_string(), value);
    }
}

/// journal.go `rebuildDependencies` + `undangleParentResources`: after a refresh removed
/// resources, drop references to URNs that do not precede the referring resource, then fix
/// parents that point at no resource at all.
fn rebuild_dependencies(resources: &mut [Value]) {
    let mut referenceable: HashSet<String> = HashSet::with_capacity(resources.len());
    for res in resources.iter_mut() {
        let Some(obj) = res.as_object_mut() else { continue };
        if let Some(Value::Array(deps)) = obj.get("dependencies") {
            if !deps.is_empty() {
                let kept = filter_urns(deps, &referenceable);
                set_or_remove(obj, "dependencies", Value::Array(kept));
            }
        }
        if let Some(Value::Object(prop_deps)) = obj.get("propertyDependencies") {
            if !prop_deps.is_empty() {
                // Keys whose list ends up empty disappear, as in Go, which only creates a key
                // when it appends a surviving URN.
                let mut kept = Map::new();
                for (key, deps) in prop_deps {
                    let list = deps.as_array().map(|d| filter_urns(d, &referenceable));
                    if let Some(list) = list.filter(|l| !l.is_empty()) {
                        kept.insert(key.clone(), Value::Array(list));
                    }
                }
                set_or_remove(obj, "propertyDependencies", Value::Object(kept));
            }
        }
        if let Some(Value::Array(replace_with)) = obj.get("replaceWith") {
            if !replace_with.is_empty() {
                let kept = filter_urns(replace_with, &referenceable);
                set_or_remove(obj, "replaceWith", Value::Array(kept));
            }
        }
        let deleted_with_ok = obj
            .get("deletedWith")
            .and_then(Value::as_str)
            .is_some_and(|u| referenceable.contains(u));
        if !deleted_with_ok {
            obj.remove("deletedWith");
        }
        if let Some(urn) = obj.get("urn").and_then(Value::as_str) {
            referenceable.insert(urn.to_string());
        }
    }

    // undangleParentResources. Go looks the missing parent up in a map of the parents of
    // resources in the list; since the parent is not in the list it is never found there, so
    // in effect a dangling parent is cleared (the resource moves to the root), not replaced
    // by its grandparent as the comment in journal.go suggests. Mirrored literally.
    let undeleted = referenceable;
    let mut available_parents: HashMap<String, String> = HashMap::new();
    for res in resources.iter_mut() {
        let Some(obj) = res.as_object_mut() else { continue };
        let parent = obj.get("parent").and_then(Value::as_str).unwrap_or("").to_string();
        if !undeleted.contains(&parent) {
            let replacement = available_parents.get(&parent).cloned().unwrap_or_default();
            set_or_remove(obj, "parent", Value::String(replacement));
        }
        if let Some(urn) = obj.get("urn").and_then(Value::as_str) {
            // Go records the parent as it was before the fix-up above.
            available_parents.insert(urn.to_string(), parent);
        }
    }
}

/// The resource's own type: the last `$`-separated element of the qualified type.
fn own_type(qualified_type: &str) -> &str {
    qualified_type.rsplit(URN_TYPE_DELIMITER).next().unwrap_or(qualified_type)
}

/// Go `urn.New`: children of the root stack keep an unqualified type.
fn new_urn(stack: &str, project: &str, parent_type: &str, base_type: &str, name: &str) -> String {
    let typ = if !parent_type.is_empty() && parent_type != ROOT_STACK_TYPE {
        format!("{parent_type}{URN_TYPE_DELIMITER}{base_type}")
    } else {
        base_type.to_string()
    };
    format_urn(stack, project, &typ, name)
}

/// Go `providers.validateURN`: a valid URN whose own type is `pulumi:providers:<name>`.
fn is_provider_urn(urn: &str) -> bool {
    let Some(parts) = parse_urn(urn) else { return false };
    let typ = own_type(parts.qualified_type);
    typ.strip_prefix("pulumi:providers:").is_some_and(|name| !name.is_empty())
}

/// apitype `DeploymentV3.NormalizeURNReferences`: rewrite every URN reference that names an
/// alias to the aliased resource's current URN (one level, as in Go), re-derive the URNs of
/// children whose parent changed URN, and drop `aliases` from the output.
fn normalize_urn_references(deployment: &mut Map<String, Value>) -> Result<(), JournalError> {
    let mut aliased: HashMap<String, String> = HashMap::new();
    if let Some(Value::Array(resources)) = deployment.get("resources") {
        for res in resources {
            let urn = res.get("urn").and_then(Value::as_str).unwrap_or("");
            if let Some(Value::Array(aliases)) = res.get("aliases") {
                for alias in aliases.iter().filter_map(Value::as_str) {
                    if let Some(other) = aliased.get(alias) {
                        if other != urn {
                            return Err(JournalError::DuplicateAlias {
                                alias: alias.to_string(),
                                first: other.clone(),
                                second: urn.to_string(),
                            });
                        }
                    }
                    aliased.insert(alias.to_string(), urn.to_string());
                }
            }
            // If the parent changed URN, this resource's URN changes too.
            let parent = res.get("parent").and_then(Value::as_str).unwrap_or("");
            let Some(new_parent) = aliased.get(parent) else { continue };
            let (Some(parent_parts), Some(own)) = (parse_urn(new_parent), parse_urn(urn)) else {
                // Go would panic on a malformed URN here; leave the reference alone instead.
                continue;
            };
            if parent_parts.qualified_type != ROOT_STACK_TYPE {
                let renamed = new_urn(
                    own.stack,
                    own.project,
                    parent_parts.qualified_type,
                    own_type(own.qualified_type),
                    own.name,
                );
                aliased.insert(urn.to_string(), renamed);
            }
        }
    }

    let fix = |v: &mut Value| {
        if let Some(new) = v.as_str().and_then(|u| aliased.get(u)) {
            *v = Value::String(new.clone());
        }
    };
    if let Some(Value::Array(resources)) = deployment.get_mut("resources") {
        for res in resources.iter_mut() {
            let Some(obj) = res.as_object_mut() else { continue };
            for key in ["urn", "parent", "deletedWith", "viewOf"] {
                if let Some(v) = obj.get_mut(key) {
                    fix(v);
                }
            }
            if let Some(Value::String(provider)) = obj.get_mut("provider") {
                if let Some(fixed) = fix_provider(provider, &aliased) {
                    *provider = fixed;
                }
            }
            if let Some(Value::Array(deps)) = obj.get_mut("dependencies") {
                deps.iter_mut().for_each(fix);
            }
            if let Some(Value::Object(prop_deps)) = obj.get_mut("propertyDependencies") {
                for deps in prop_deps.values_mut() {
                    if let Value::Array(deps) = deps {
                        deps.iter_mut().for_each(fix);
                    }
                }
            }
            // Once references are normalised, aliases are not written out.
            obj.remove("aliases");
        }
    }
    if let Some(Value::Array(snippets)) = deployment.get_mut("snippets") {
        for snippet in snippets.iter_mut() {
            if let Some(Value::Object(references)) = snippet.get_mut("references") {
                references.values_mut().for_each(fix);
            }
        }
    }
    Ok(())
}

/// Rewrites the URN half of a provider reference `<urn>::<id>`. Returns `None` to leave the
/// reference untouched when it does not parse (Go would panic). As in Go, an empty ID comes
/// back as the unknown-ID placeholder.
fn fix_provider(provider: &str, aliased: &HashMap<String, String>) -> Option<String> {
    if provider.is_empty() {
        return None;
    }
    let split = provider.rfind(URN_NAME_DELIMITER)?;
    let (urn, id) = (&provider[..split], &provider[split + URN_NAME_DELIMITER.len()..]);
    if !is_provider_urn(urn) {
        return None;
    }
    let urn = aliased.get(urn).map(String::as_str).unwrap_or(urn);
    if !is_provider_urn(urn) {
        return None;
    }
    let id = if id.is_empty() { UNKNOWN_PROVIDER_ID } else { id };
    Some(format!("{urn}{URN_NAME_DELIMITER}{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    // ---- helpers -------------------------------------------------------------------------

    fn urn(name: &str) -> String {
        format!("urn:pulumi:dev::proj::pkg:m:typ::{name}")
    }

    fn res(name: &str) -> Value {
        json!({"urn": urn(name), "custom": true, "type": "pkg:m:typ", "id": format!("id-{name}")})
    }

    fn with(mut resource: Value, key: &str, value: Value) -> Value {
        resource.as_object_mut().unwrap().insert(key.to_string(), value);
        resource
    }

    fn res_deps(name: &str, deps: &[&str]) -> Value {
        let deps: Vec<String> = deps.iter().map(|d| urn(d)).collect();
        with(res(name), "dependencies", json!(deps))
    }

    fn manifest() -> Value {
        json!({"time": "2026-01-01T00:00:00Z", "magic": "abc", "version": "v3.999.0"})
    }

    fn deployment(resources: Vec<Value>) -> Value {
        json!({"manifest": manifest(), "metadata": {}, "resources": resources})
    }

    fn operation(resource: &Value, kind: &str) -> Value {
        json!({"resource": resource, "type": kind})
    }

    /// Builds journals with automatically increasing sequence IDs, like the engine does.
    #[derive(Default)]
    struct Journal {
        entries: Vec<JournalEntry>,
    }

    impl Journal {
        fn push(
            &mut self,
            kind: EntryKind,
            op: i64,
            f: impl FnOnce(&mut JournalEntry),
        ) -> &mut Self {
            let mut entry = JournalEntry {
                kind: kind.as_i64(),
                sequence_id: self.entries.len() as i64 + 1,
                operation_id: op,
                ..JournalEntry::default()
            };
            f(&mut entry);
            self.entries.push(entry);
            self
        }
        fn begin(&mut self, op: i64, operation: Option<Value>) -> &mut Self {
            self.push(EntryKind::Begin, op, |e| e.operation = operation)
        }
        fn success(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
            self.push(EntryKind::Success, op, f)
        }
        fn failure(&mut self, op: i64) -> &mut Self {
            self.push(EntryKind::Failure, op, |_| {})
        }
        fn refresh(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
            self.push(EntryKind::RefreshSuccess, op, f)
        }
        fn outputs(&mut self, op: i64, f: impl FnOnce(&mut JournalEntry)) -> &mut Self {
            self.push(EntryKind::Outputs, op, f)
        }
        /// Same step on base resource `index` producing `state`.
        fn same_old(&mut self, op: i64, index: i64, state: Value) -> &mut Self {
            self.begin(op, None).success(op, |e| {
                e.state = Some(state);
                e.remove_old = Some(index);
            })
        }
        fn create(&mut self, op: i64, state: Value) -> &mut Self {
            let begin = operation(&state, "creating");
            self.begin(op, Some(begin)).success(op, |e| e.state = Some(state))
        }
        fn update_old(&mut self, op: i64, index: i64, state: Value) -> &mut Self {
            let begin = operation(&state, "updating");
            self.begin(op, Some(begin)).success(op, |e| {
                e.state = Some(state);
                e.remove_old = Some(index);
            })
        }
        fn delete_old(&mut self, op: i64, index: i64, old: &Value) -> &mut Self {
            self.begin(op, Some(operation(old, "deleting"))).success(op, |e| {
                e.remove_old = Some(index);
            })
        }
    }

    fn replay(base: Value, entries: &[JournalEntry]) -> (i64, Vec<String>, Value) {
        let mut replayer = Replayer::new(base).unwrap();
        replayer.apply(entries).unwrap();
        replayer.snapshot(manifest()).unwrap()
    }

    fn resources(d: &Value) -> Vec<Value> {
        d.get("resources").and_then(Value::as_array).cloned().unwrap_or_default()
    }

    fn urns(d: &Value) -> Vec<String> {
        resources(d).iter().map(|r| r["urn"].as_str().unwrap().to_string()).collect()
    }

    fn pending(d: &Value) -> Vec<(String, String)> {
        d.get("pending_operations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|op| {
                let urn = op["resource"]["urn"].as_str().unwrap().to_string();
                (urn, op["type"].as_str().unwrap().to_string())
            })
            .collect()
    }

    // ---- entry envelope ------------------------------------------------------------------

    #[test]
    fn entry_wire_format_round_trips() {
        let wire = json!({
            "version": 1, "kind": 1, "sequenceID": 7, "operationID": 3,
            "removeOld": 2, "removeNew": null, "deleteNew": 1,
            "state": res("a"), "isRefresh": true, "requiresByteString": true
        });
        let entry: JournalEntry = serde_json::from_value(wire).unwrap();
        assert_eq!(entry.kind, 1);
        assert_eq!(entry.sequence_id, 7);
        assert_eq!(entry.operation_id, 3);
        assert_eq!(entry.remove_old, Some(2));
        assert_eq!(entry.remove_new, None);
        assert_eq!(entry.delete_new, Some(1));
        assert!(entry.is_refresh && entry.requires_byte_string);
        let back = serde_json::to_value(&entry).unwrap();
        // removeOld/removeNew are always written (null when unset); the rest only when set.
        assert_eq!(back["removeNew"], Value::Null);
        assert!(back.get("pendingReplacementOld").is_none());
        assert!(back.get("operation").is_none());
        assert_eq!(back["deleteNew"], 1);

        // Only kind and sequenceID are required; everything else tolerates absence.
        let minimal: JournalEntry =
            serde_json::from_value(json!({"kind": 0, "sequenceID": 1})).unwrap();
        assert_eq!(minimal.version, 1);
        assert_eq!(minimal.operation_id, 0);
        assert_eq!(minimal.state, None);
        assert_eq!(EntryKind::from_i64(9), Some(EntryKind::Snippets));
        assert_eq!(EntryKind::from_i64(10), None);
        for k in 0..=9 {
            assert_eq!(EntryKind::from_i64(k).unwrap().as_i64(), k);
        }
    }

    #[test]
    fn empty_and_null_bases_generate_an_empty_v3_deployment() {
        for base in [Value::Null, json!({"manifest": manifest()})] {
            let (version, features, d) = replay(base, &[]);
            assert_eq!(version, 3);
            assert!(features.is_empty());
            assert_eq!(d, json!({"manifest": manifest(), "metadata": {}}));
        }
        assert!(matches!(Replayer::new(json!([1])), Err(JournalError::InvalidDeployment(_))));
        assert!(Replayer::new(json!({"resources": {}})).is_err());
        assert!(Replayer::new(json!({"resources": [1]})).is_err());
    }

    // ---- ports of pkg/backend/journaler_snapshot_test.go ---------------------------------

    #[test]
    fn recording_create_success() {
        let mut j = Journal::default();
        j.begin(1, Some(operation(&res("a"), "creating")));
        let mut r = Replayer::new(deployment(vec![])).unwrap();
        r.apply(&j.entries).unwrap();
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert!(resources(&d).is_empty());
        assert_eq!(pending(&d), vec![(urn("a"), "creating".to_string())]);

        j.success(1, |e| e.state = Some(res("a")));
        r.apply(&j.entries).unwrap();
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(urns(&d), vec![urn("a")]);
        assert!(pending(&d).is_empty());
    }

    #[test]
    fn recording_create_failure() {
        let mut j = Journal::default();
        j.begin(1, Some(operation(&res("a"), "creating")));
        // The engine attaches the state to failures too; replay must ignore it.
        j.push(EntryKind::Failure, 1, |e| e.state = Some(res("a")));
        let (_, _, d) = replay(deployment(vec![]), &j.entries);
        assert!(resources(&d).is_empty());
        assert!(pending(&d).is_empty());
    }

    #[test]
    fn recording_update_success_and_failure() {
        let old = with(res("a"), "inputs", json!({"key": "old"}));
        let new = with(res("a"), "inputs", json!({"key": "new"}));
        let mut j = Journal::default();
        j.begin(1, Some(operation(&new, "updating")));
        let mut r = Replayer::new(deployment(vec![old.clone()])).unwrap();
        r.apply(&j.entries).unwrap();
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(resources(&d), vec![old.clone()]);
        assert_eq!(d["pending_operations"][0]["resource"]["inputs"]["key"], "new");
        assert_eq!(d["pending_operations"][0]["type"], "updating");

        let mut ok = Journal { entries: j.entries.clone() };
        ok.success(1, |e| {
            e.state = Some(new.clone());
            e.remove_old = Some(0);
        });
        let (_, _, d) = replay(deployment(vec![old.clone()]), &ok.entries);
        assert_eq!(resources(&d), vec![new.clone()]);
        assert!(pending(&d).is_empty());

        let mut failed = Journal { entries: j.entries.clone() };
        failed.failure(1);
        let (_, _, d) = replay(deployment(vec![old.clone()]), &failed.entries);
        assert_eq!(resources(&d), vec![old]);
        assert!(pending(&d).is_empty());
    }

    #[test]
    fn recording_delete_success_and_failure() {
        let a = res("a");
        let mut j = Journal::default();
        j.begin(1, Some(operation(&a, "deleting")));
        let (_, _, d) = replay(deployment(vec![a.clone()]), &j.entries);
        assert_eq!(urns(&d), vec![urn("a")]);
        assert_eq!(pending(&d), vec![(urn("a"), "deleting".to_string())]);

        let mut ok = Journal { entries: j.entries.clone() };
        ok.success(1, |e| e.remove_old = Some(0));
        let (_, _, d) = replay(deployment(vec![a.clone()]), &ok.entries);
        assert!(d.get("resources").is_none(), "empty resources are omitted, as in Go");
        assert!(pending(&d).is_empty());

        let mut failed = Journal { entries: j.entries };
        failed.failure(1);
        let (_, _, d) = replay(deployment(vec![a]), &failed.entries);
        assert_eq!(urns(&d), vec![urn("a")]);
        assert!(pending(&d).is_empty());
    }

    #[test]
    fn recording_read_success_and_failure() {
        // No previous resource.
        let b = with(with(res("b"), "external", json!(true)), "id", json!("some-b"));
        let mut j = Journal::default();
        j.begin(1, Some(operation(&b, "reading")));
        j.success(1, |e| e.state = Some(b.clone()));
        let (_, _, d) = replay(deployment(vec![]), &j.entries);
        assert_eq!(resources(&d), vec![b.clone()]);
        assert!(pending(&d).is_empty());

        // Previous resource: success replaces it, failure keeps it.
        let old = with(res("c"), "inputs", json!({"key": "old"}));
        let new = with(res("c"), "inputs", json!({"key": "new"}));
        let mut ok = Journal::default();
        ok.begin(1, Some(operation(&new, "reading"))).success(1, |e| {
            e.state = Some(new.clone());
            e.remove_old = Some(0);
        });
        let (_, _, d) = replay(deployment(vec![old.clone()]), &ok.entries);
        assert_eq!(resources(&d), vec![new.clone()]);

        let mut failed = Journal::default();
        failed.begin(1, Some(operation(&new, "reading"))).failure(1);
        let (_, _, d) = replay(deployment(vec![old.clone()]), &failed.entries);
        assert_eq!(resources(&d), vec![old]);
        assert!(pending(&d).is_empty());
    }

    #[test]
    fn same_steps_identical_failed_and_with_empty_dependencies() {
        let a = res("a");
        let mut j = Journal::default();
        j.same_old(1, 0, a.clone());
        let (_, _, d) = replay(deployment(vec![a.clone()]), &j.entries);
        assert_eq!(resources(&d), vec![a.clone()]);

        // A failed same leaves the base resource in place.
        let mut failed = Journal::default();
        failed.begin(1, None).failure(1);
        let (_, _, d) = replay(deployment(vec![a.clone()]), &failed.entries);
        assert_eq!(resources(&d), vec![a]);
        assert!(pending(&d).is_empty(), "a begin without operation is never pending");
    }

    #[test]
    fn sames_with_dependency_changes() {
        // Base: a, b(->a). The program now registers b first without deps, then a(->b).
        let a = res("a");
        let b = res_deps("b", &["a"]);
        let base = deployment(vec![a.clone(), b.clone()]);
        let mut j = Journal::default();
        j.same_old(1, 1, res("b"));
        let (_, _, d) = replay(base.clone(), &j.entries);
        assert_eq!(urns(&d), vec![urn("b"), urn("a")]);
        assert!(d["resources"][0].get("dependencies").is_none());
        assert!(d["resources"][1].get("dependencies").is_none());

        j.same_old(2, 0, res_deps("a", &["b"]));
        let (_, _, d) = replay(base, &j.entries);
        assert_eq!(urns(&d), vec![urn("b"), urn("a")]);
        assert_eq!(d["resources"][1]["dependencies"], json!([urn("b")]));
    }

    #[test]
    fn vexing_deployment() {
        // Base a, b(->a), c(->a,b), d(->c), e(->c). The engine then runs:
        // same b (no deps), create-replacement c'(->b), replace (no journal entries),
        // update d'(->c').
        let a = res("a");
        let b = res_deps("b", &["a"]);
        let c = res_deps("c", &["a", "b"]);
        let d = res_deps("d", &["c"]);
        let e = res_deps("e", &["c"]);
        let base = deployment(vec![a, b, c, d, e]);

        let mut j = Journal::default();
        j.same_old(1, 1, res("b"));
        let c_prime = res_deps("c", &["b"]);
        j.begin(2, Some(operation(&c_prime, "creating"))).success(2, |en| {
            en.state = Some(c_prime.clone());
            en.delete_old = Some(2);
        });
        j.update_old(4, 3, res_deps("d", &["c"]));

        let (_, _, out) = replay(base, &j.entries);
        let rs = resources(&out);
        assert_eq!(rs.len(), 6);
        assert_eq!(urns(&out), ["b", "c", "d", "a", "c", "e"].map(urn).to_vec());
        assert!(rs[0].get("dependencies").is_none());
        assert_eq!(rs[1]["dependencies"], json!([urn("b")]));
        assert_eq!(rs[2]["dependencies"], json!([urn("c")]));
        assert!(rs[3].get("dependencies").is_none());
        // The old c is kept after a, pending deletion, with its dependencies.
        assert_eq!(rs[4]["delete"], true);
        assert_eq!(rs[4]["dependencies"], json!([urn("a"), urn("b")]));
        assert!(rs[1].get("delete").is_none());
        assert_eq!(rs[5]["dependencies"], json!([urn("c")]));
    }

    #[test]
    fn register_outputs() {
        // TestRegisterOutputsJournaling: same a, outputs for it, then a second same whose old
        // state is the new resource of the first (removeNew), then outputs again.
        let a = res("a");
        let a2 = with(res("a"), "outputs", json!({"hello": "world"}));
        let mut j = Journal::default();
        j.same_old(1, 0, a.clone());
        j.outputs(2, |e| {
            e.state = Some(a.clone());
            e.remove_new = Some(1);
        });
        j.begin(3, None).success(3, |e| {
            e.state = Some(a2.clone());
            e.remove_new = Some(1);
        });
        j.outputs(4, |e| {
            e.state = Some(a2.clone());
            e.remove_new = Some(3);
        });
        let (_, _, d) = replay(deployment(vec![a.clone()]), &j.entries);
        assert_eq!(resources(&d), vec![a2]);

        // Outputs for a base resource replace it in place; without a state they do nothing.
        let mut j = Journal::default();
        let b_out = with(res("b"), "outputs", json!({"x": 1}));
        j.outputs(1, |e| {
            e.state = Some(b_out.clone());
            e.remove_old = Some(1);
        });
        j.outputs(2, |e| e.remove_old = Some(0));
        let (_, _, d) = replay(deployment(vec![a.clone(), res("b"), res("c")]), &j.entries);
        assert_eq!(resources(&d), vec![a, b_out, res("c")]);
    }

    // ---- removal and marks -----------------------------------------------------------------

    #[test]
    fn remove_new_drops_a_resource_made_in_this_update() {
        // A program-based destroy: same a (new state), then delete of that new state.
        let a = res("a");
        let mut j = Journal::default();
        j.same_old(1, 0, a.clone());
        j.begin(2, Some(operation(&a, "deleting"))).success(2, |e| e.remove_new = Some(1));
        // And a resource created and deleted within the same update.
        j.create(3, res("x"));
        j.begin(4, Some(operation(&res("x"), "deleting"))).success(4, |e| e.remove_new = Some(3));
        j.create(5, res("y"));
        let (_, _, d) = replay(deployment(vec![a]), &j.entries);
        assert_eq!(urns(&d), vec![urn("y")]);
        assert!(pending(&d).is_empty());
    }

    #[test]
    fn delete_and_pending_replacement_marks() {
        let base = deployment(vec![res("a"), res("b")]);
        let mut j = Journal::default();
        // Delete-before-replace marks the base resource pending replacement.
        j.begin(1, Some(operation(&res("a"), "deleting")))
            .success(1, |e| e.pending_replacement_old = Some(0));
        // Create-replacement marks the base resource for deletion.
        j.begin(2, Some(operation(&res("b"), "creating"))).success(2, |e| {
            e.state = Some(res("b"));
            e.delete_old = Some(1);
        });
        // New resources can be marked too, including by the entry that creates them.
        j.create(3, res("n"));
        j.begin(4, None).success(4, |e| e.delete_new = Some(3));
        j.begin(5, None).success(5, |e| e.pending_replacement_new = Some(3));
        j.begin(6, None).success(6, |e| {
            e.state = Some(res("m"));
            e.delete_new = Some(6);
        });
        let (_, _, d) = replay(base, &j.entries);
        let rs = resources(&d);
        assert_eq!(urns(&d), ["b", "n", "m", "a", "b"].map(urn).to_vec());
        assert!(rs[0].get("delete").is_none());
        assert_eq!(rs[1]["delete"], true);
        assert_eq!(rs[1]["pendingReplacement"], true);
        assert_eq!(rs[2]["delete"], true);
        assert_eq!(rs[3]["pendingReplacement"], true);
        assert!(rs[3].get("delete").is_none());
        assert_eq!(rs[4]["delete"], true);
    }

    #[test]
    fn remove_pending_replace() {
        let a = with(res("a"), "pendingReplacement", json!(true));
        let mut j = Journal::default();
        j.begin(1, None).success(1, |e| e.remove_old = Some(0));
        let (_, _, d) = replay(deployment(vec![a, res("b")]), &j.entries);
        assert_eq!(urns(&d), vec![urn("b")]);
    }

    #[test]
    fn replacement_state_wins_over_marks() {
        // Refresh replaces base[0]; a later delete-mark on the same index is then ignored, as
        // in Go (the mark is set on the copy that the replacement supersedes).
        let refreshed = with(res("a"), "outputs", json!({"r": 1}));
        let mut j = Journal::default();
        j.refresh(1, |e| {
            e.state = Some(refreshed.clone());
            e.remove_old = Some(0);
        });
        j.begin(2, None).success(2, |e| {
            e.delete_old = Some(0);
            e.pending_replacement_old = Some(0);
        });
        let (_, _, d) = replay(deployment(vec![res("a")]), &j.entries);
        assert_eq!(resources(&d), vec![refreshed]);
    }

    // ---- refresh -----------------------------------------------------------------------------

    #[test]
    fn refresh_in_place_and_deleted() {
        let base = deployment(vec![res("a"), res("b"), res("c")]);
        let b2 = with(res("b"), "outputs", json!({"fresh": true}));
        let mut j = Journal::default();
        j.begin(1, None).refresh(1, |e| {
            e.state = Some(b2.clone());
            e.remove_old = Some(1);
            e.is_refresh = true;
        });
        j.begin(2, None).refresh(2, |e| {
            e.remove_old = Some(2);
            e.is_refresh = true;
        });
        let (_, _, d) = replay(base, &j.entries);
        assert_eq!(resources(&d), vec![res("a"), b2]);
        assert!(pending(&d).is_empty());
    }

    #[test]
    fn refresh_prunes_replace_with() {
        // Port of TestJournalReplayerRefreshPrunesReplaceWith.
        let dependent = with(res("dependent"), "replaceWith", json!([urn("a"), urn("b")]));
        let base = deployment(vec![res("a"), res("b"), res("unrelated"), dependent]);
        let mut j = Journal::default();
        j.refresh(1, |e| e.remove_old = Some(1));
        let (_, features, d) = replay(base, &j.entries);
        assert_eq!(urns(&d), ["a", "unrelated", "dependent"].map(urn).to_vec());
        assert_eq!(d["resources"][2]["replaceWith"], json!([urn("a")]));
        assert!(d["resources"][1].get("replaceWith").is_none());
        assert_eq!(features, vec!["replaceWith"]);
    }

    #[test]
    fn refresh_prunes_dangling_references_and_parents() {
        // gone is deleted by the refresh; child refers to it in every way possible.
        let child = json!({
            "urn": urn("child"), "custom": true, "type": "pkg:m:typ",
            "parent": urn("gone"),
            "dependencies": [urn("keep"), urn("gone")],
            "propertyDependencies": {"p": [urn("gone")], "q": [urn("keep"), urn("gone")], "r": []},
            "deletedWith": urn("gone"),
            "replaceWith": [urn("gone")],
        });
        // later refers to a resource that comes after it: also pruned (not "preceding").
        let later = with(res_deps("later", &["last"]), "parent", json!(urn("keep")));
        let gone = with(res("gone"), "parent", json!(urn("keep")));
        let base = deployment(vec![res("keep"), gone, child, later, res("last")]);
        let mut j = Journal::default();
        j.refresh(1, |e| e.remove_old = Some(1));
        let (_, features, d) = replay(base, &j.entries);
        let rs = resources(&d);
        assert_eq!(urns(&d), ["keep", "child", "later", "last"].map(urn).to_vec());
        let c = &rs[1];
        // journal.go clears a dangling parent rather than using the grandparent ("keep").
        assert!(c.get("parent").is_none());
        assert_eq!(c["dependencies"], json!([urn("keep")]));
        assert_eq!(c["propertyDependencies"], json!({"q": [urn("keep")]}));
        assert!(c.get("deletedWith").is_none());
        assert!(c.get("replaceWith").is_none());
        assert!(rs[2].get("dependencies").is_none());
        assert_eq!(rs[2]["parent"], urn("keep"));
        // Features are computed before pruning, as in Go.
        assert_eq!(features, vec!["replaceWith"]);
    }

    #[test]
    fn no_pruning_without_refresh() {
        let orphan = with(res_deps("orphan", &["missing"]), "parent", json!(urn("missing")));
        let (_, _, d) = replay(deployment(vec![orphan.clone()]), &[]);
        assert_eq!(resources(&d), vec![orphan]);
    }

    #[test]
    fn persisted_refresh_is_a_success_with_is_refresh() {
        // A persisted refresh that finds the resource gone: kind success, no state.
        let base = deployment(vec![res("a"), res_deps("b", &["a"])]);
        let mut j = Journal::default();
        j.begin(1, None).success(1, |e| {
            e.remove_old = Some(0);
            e.is_refresh = true;
        });
        let (_, _, d) = replay(base.clone(), &j.entries);
        assert_eq!(urns(&d), vec![urn("b")]);
        assert!(d["resources"][0].get("dependencies").is_none());

        // Without isRefresh nothing is pruned.
        let mut j = Journal::default();
        j.begin(1, None).success(1, |e| e.remove_old = Some(0));
        let (_, _, d) = replay(base, &j.entries);
        assert_eq!(d["resources"][0]["dependencies"], json!([urn("a")]));
    }

    #[test]
    fn refresh_of_new_resources() {
        let mut j = Journal::default();
        j.create(1, res("a")).create(2, res("b"));
        let a2 = with(res("a"), "outputs", json!({"v": 2}));
        j.refresh(3, |e| {
            e.state = Some(a2.clone());
            e.remove_new = Some(1);
        });
        j.refresh(4, |e| e.remove_new = Some(2));
        let (_, _, d) = replay(deployment(vec![]), &j.entries);
        assert_eq!(resources(&d), vec![a2]);
    }

    // ---- pending operations ------------------------------------------------------------------

    #[test]
    fn pending_operations_keep_base_creates_only() {
        let mut base = deployment(vec![res("a")]);
        base["pending_operations"] = json!([
            operation(&res("c"), "creating"),
            operation(&res("u"), "updating"),
            operation(&res("d"), "deleting"),
            operation(&res("r"), "reading"),
        ]);
        let mut j = Journal::default();
        // Begins arrive for op 5 before op 2; output is in operation order.
        j.begin(5, Some(operation(&res("five"), "updating")));
        j.begin(2, Some(operation(&res("two"), "creating")));
        j.begin(3, Some(operation(&res("three"), "deleting"))).failure(3);
        j.begin(4, None);
        let (_, _, d) = replay(base, &j.entries);
        assert_eq!(
            pending(&d),
            vec![
                (urn("two"), "creating".to_string()),
                (urn("five"), "updating".to_string()),
                (urn("c"), "creating".to_string()),
            ]
        );
    }

    // ---- write, secrets, snippets, extensions -----------------------------------------------

    #[test]
    fn write_replaces_the_base() {
        let mut j = Journal::default();
        let new_base = json!({
            "manifest": manifest(),
            "secrets_providers": {"type": "passphrase", "state": {"salt": "s"}},
            "metadata": {},
            "resources": [res("a"), res("b"), res("c")]
        });
        j.push(EntryKind::Write, 0, |e| e.new_snapshot = Some(new_base));
        // Index 2 only exists in the written base.
        j.delete_old(1, 2, &res("c"));
        let (_, _, d) = replay(deployment(vec![res("old")]), &j.entries);
        assert_eq!(urns(&d), vec![urn("a"), urn("b")]);
        assert_eq!(d["secrets_providers"]["type"], "passphrase");

        let mut bad = Journal::default();
        bad.push(EntryKind::Write, 0, |_| {});
        let mut r = Replayer::new(deployment(vec![])).unwrap();
        let err = r.apply(&bad.entries).unwrap_err();
        assert_eq!(err, JournalError::MissingField { sequence: 1, field: "newSnapshot" });

        let mut bad = Journal::default();
        bad.push(EntryKind::Write, 0, |e| e.new_snapshot = Some(json!("x")));
        let mut r = Replayer::new(deployment(vec![])).unwrap();
        assert!(matches!(r.apply(&bad.entries), Err(JournalError::InvalidDeployment(_))));
    }

    #[test]
    fn secrets_manager_equal_different_and_absent() {
        let state =
            json!({"url": "https://api.example", "owner": "o", "project": "p", "stack": "s"});
        let mut base = deployment(vec![]);
        // An extra field shows whether the base's object was kept or replaced.
        base["secrets_providers"] = json!({"type": "service", "state": state, "marker": 1});

        // Equal type and state (key order differs): the base's provider is kept.
        let same = json!({"type": "service", "state": {"stack": "s", "project": "p", "owner": "o", "url": "https://api.example"}});
        let mut j = Journal::default();
        j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(same));
        let (_, _, d) = replay(base.clone(), &j.entries);
        assert_eq!(d["secrets_providers"]["marker"], 1);

        // Different state: replaced.
        let other = json!({"type": "service", "state": {"stack": "t"}});
        let mut j = Journal::default();
        j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(other.clone()));
        let (_, _, d) = replay(base.clone(), &j.entries);
        assert_eq!(d["secrets_providers"], other);

        // Base without a provider: set.
        let (_, _, d) = replay(deployment(vec![]), &j.entries);
        assert_eq!(d["secrets_providers"], other);

        // Entry without a provider: the base's is kept.
        let mut j = Journal::default();
        j.push(EntryKind::SecretsManager, 0, |_| {});
        let (_, _, d) = replay(base.clone(), &j.entries);
        assert_eq!(d["secrets_providers"], base["secrets_providers"]);
    }

    #[test]
    fn snippets_set_and_clear() {
        let snippet = json!({
            "uuid": "u1", "name": "n", "type": "pkg:m:typ", "code": "{}",
            "descriptor": {"name": "pkg"}, "references": {"x": urn("old")}
        });
        let mut j = Journal::default();
        j.push(EntryKind::Snippets, 0, |e| e.snippets = Some(vec![snippet.clone()]));
        j.create(1, with(res("new"), "aliases", json!([urn("old")])));
        let (version, features, d) = replay(deployment(vec![]), &j.entries);
        assert_eq!(version, 4);
        assert_eq!(features, vec!["snippets-prototype"]);
        // Snippet references are normalised through aliases too.
        assert_eq!(d["snippets"][0]["references"]["x"], urn("new"));

        // An empty list on the wire is omitted and clears the snippets.
        j.push(EntryKind::Snippets, 0, |_| {});
        let (version, features, d) = replay(deployment(vec![]), &j.entries);
        assert_eq!(version, 3);
        assert!(features.is_empty());
        assert!(d.get("snippets").is_none());
    }

    #[test]
    fn extension_parameterize_round_trip() {
        // Port of TestJournalExtensionParameterizeRoundTrip.
        let ext = json!({"name": "myext", "version": "1.0.0", "value": "SGVsbG8="});
        let mut j = Journal::default();
        j.push(EntryKind::ExtensionParameterize, 1, |e| {
            e.extension_ref = Some("ref-1".into());
            e.extension = Some(ext.clone());
        });
        let (_, _, d) = replay(json!({}), &j.entries);
        assert_eq!(d["extensions"]["ref-1"], ext);
    }

    #[test]
    fn extensions_are_seeded_from_base_and_base_wins() {
        // Port of TestJournalReplayerSeedsExtensionsFromBase, plus the conflict rule.
        let base_ext = json!({"name": "base-ext", "version": "1.0.0", "value": "YmFzZWxpbmU="});
        let base = json!({"extensions": {"base-ref": base_ext, "shared": {"name": "old"}}});
        let (_, _, d) = replay(base.clone(), &[]);
        assert_eq!(d["extensions"]["base-ref"], base_ext);

        let mut j = Journal::default();
        j.push(EntryKind::ExtensionParameterize, 1, |e| {
            e.extension_ref = Some("shared".into());
            e.extension = Some(json!({"name": "new"}));
        });
        let (_, _, d) = replay(base, &j.entries);
        assert_eq!(d["extensions"]["shared"]["name"], "old");

        let mut bad = Journal::default();
        bad.push(EntryKind::ExtensionParameterize, 1, |e| e.extension = Some(json!({})));
        let mut r = Replayer::new(json!({})).unwrap();
        let err = r.apply(&bad.entries).unwrap_err();
        assert_eq!(err, JournalError::MissingField { sequence: 1, field: "extensionRef" });
    }

    // ---- rebuilt base state ------------------------------------------------------------------

    #[test]
    fn rebuilt_base_state_folds_the_journal_into_a_new_base() {
        // Refresh: b disappears, a is refreshed in place, then the engine rebuilds its base and
        // the update's indexes refer to the rebuilt base [a'].
        let base = deployment(vec![res("a"), res_deps("b", &["a"]), res_deps("c", &["b"])]);
        let a2 = with(res("a"), "outputs", json!({"refreshed": true}));
        let mut j = Journal::default();
        j.begin(1, None).refresh(1, |e| {
            e.state = Some(a2.clone());
            e.remove_old = Some(0);
        });
        j.begin(2, None).refresh(2, |e| e.remove_old = Some(1));
        j.begin(3, Some(operation(&res("p"), "updating")));
        j.push(EntryKind::RebuiltBaseState, 0, |_| {});
        let mut r = Replayer::new(base).unwrap();
        r.apply(&j.entries).unwrap();
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(urns(&d), vec![urn("a"), urn("c")]);
        // The refresh happened before the rebuild, so c's dangling dependency is pruned.
        assert!(d["resources"][1].get("dependencies").is_none());
        // The in-flight update became a base pending operation and, not being a create, is
        // dropped by the next generation.
        assert!(pending(&d).is_empty());

        // Index 1 now means c in the rebuilt base.
        j.update_old(4, 1, res("c2"));
        r.apply(&j.entries).unwrap();
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(urns(&d), vec![urn("c2"), urn("a")]);
        assert_eq!(d["resources"][1], a2);

        // Resources created before the rebuild come first in the rebuilt base.
        let mut k = Journal::default();
        k.create(1, res("n"));
        k.push(EntryKind::RebuiltBaseState, 0, |_| {});
        k.delete_old(2, 0, &res("n"));
        let (_, _, d) = replay(deployment(vec![res("x")]), &k.entries);
        assert_eq!(urns(&d), vec![urn("x")]);
    }

    #[test]
    fn rebuilt_base_state_keeps_extensions_and_creates() {
        let mut j = Journal::default();
        j.push(EntryKind::ExtensionParameterize, 1, |e| {
            e.extension_ref = Some("r".into());
            e.extension = Some(json!({"name": "e"}));
        });
        j.begin(2, Some(operation(&res("c"), "creating")));
        j.push(EntryKind::RebuiltBaseState, 0, |_| {});
        let (_, _, d) = replay(deployment(vec![]), &j.entries);
        assert_eq!(d["extensions"]["r"]["name"], "e");
        assert_eq!(pending(&d), vec![(urn("c"), "creating".to_string())]);
    }

    // ---- features ----------------------------------------------------------------------------

    #[test]
    fn features_and_version() {
        let (version, features, _) = replay(deployment(vec![res("plain")]), &[]);
        assert_eq!((version, features), (3, vec![]));

        let rs = vec![
            with(res("a"), "refreshBeforeUpdate", json!(true)),
            with(res("b"), "viewOf", json!(urn("a"))),
            with(res("c"), "resourceHooks", json!({"beforeCreate": ["h"]})),
            with(res("d"), "taint", json!(true)),
            with(res("e"), "replaceWith", json!([urn("a")])),
            with(res("f"), "extensionRef", json!("ref")),
            with(res("g"), "snippetID", json!("u1")),
            // Present but empty/false values need no feature.
            with(with(res("h"), "taint", json!(false)), "viewOf", json!("")),
        ];
        let (version, features, _) = replay(deployment(rs), &[]);
        assert_eq!(version, 4);
        assert_eq!(
            features,
            vec![
                "extensionParameterization",
                "hooks",
                "refreshBeforeUpdate",
                "replaceWith",
                "snippets-prototype",
                "taint",
                "views"
            ]
        );

        // Resources of pending operations count too.
        let mut j = Journal::default();
        j.begin(1, Some(operation(&with(res("t"), "taint", json!(true)), "creating")));
        let (version, features, _) = replay(deployment(vec![]), &j.entries);
        assert_eq!((version, features), (4, vec!["taint".to_string()]));
    }

    #[test]
    fn byte_string_feature_comes_from_the_entries() {
        // Port of TestJournalByteStringRoundTrip: the secret hides the bytes, the flag tells.
        let secret = json!({"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "abc"});
        let mut j = Journal::default();
        j.success(1, |e| {
            e.state = Some(with(res("r1"), "outputs", json!({"out": secret})));
            e.requires_byte_string = true;
        });
        let (version, features, _) = replay(deployment(vec![]), &j.entries);
        assert_eq!((version, features), (4, vec!["byteString".to_string()]));

        // As in Go, the flag is only recorded through a resource or operation.
        let mut j = Journal::default();
        j.push(EntryKind::SecretsManager, 0, |e| {
            e.secrets_provider = Some(json!({"type": "b64"}));
            e.requires_byte_string = true;
        });
        let (version, _, _) = replay(deployment(vec![]), &j.entries);
        assert_eq!(version, 3);
        let (version, _, _) = replay(deployment(vec![res("a")]), &j.entries);
        assert_eq!(version, 4);
    }

    // ---- URN normalisation -----------------------------------------------------------------

    #[test]
    fn normalize_urn_references_rewrites_aliases() {
        let prov_old = "urn:pulumi:dev::proj::pulumi:providers:aws::old";
        let prov_new = "urn:pulumi:dev::proj::pulumi:providers:aws::new";
        let provider = json!({"urn": prov_new, "custom": true, "type": "pulumi:providers:aws",
            "id": "pid", "aliases": [prov_old]});
        let target = with(res("new"), "aliases", json!([urn("old"), urn("older")]));
        let user = json!({
            "urn": urn("user"), "custom": true, "type": "pkg:m:typ",
            "provider": format!("{prov_old}::pid"),
            "dependencies": [urn("old"), urn("other")],
            "propertyDependencies": {"p": [urn("older")]},
            "deletedWith": urn("old"),
            "viewOf": urn("old"),
            "replaceWith": [urn("old")],
            "aliases": []
        });
        let (_, _, d) = replay(deployment(vec![provider, target, user]), &[]);
        let rs = resources(&d);
        assert!(rs.iter().all(|r| r.get("aliases").is_none()));
        let u = &rs[2];
        assert_eq!(u["provider"], format!("{prov_new}::pid"));
        assert_eq!(u["dependencies"], json!([urn("new"), urn("other")]));
        assert_eq!(u["propertyDependencies"]["p"], json!([urn("new")]));
        assert_eq!(u["deletedWith"], urn("new"));
        assert_eq!(u["viewOf"], urn("new"));
        // replaceWith is not normalised by Go's NormalizeURNReferences.
        assert_eq!(u["replaceWith"], json!([urn("old")]));
    }

    #[test]
    fn normalize_rederives_child_urns_of_renamed_parents() {
        let parent_old = "urn:pulumi:dev::proj::my:comp:Old::p";
        let parent_new = "urn:pulumi:dev::proj::my:comp:New::p";
        let child_old = "urn:pulumi:dev::proj::my:comp:Old$pkg:m:typ::c";
        let child_new = "urn:pulumi:dev::proj::my:comp:New$pkg:m:typ::c";
        let parent = json!({"urn": parent_new, "custom": false, "type": "my:comp:New",
            "aliases": [parent_old]});
        let child = json!({"urn": child_old, "custom": true, "type": "pkg:m:typ",
            "parent": parent_old});
        let user = json!({"urn": urn("u"), "custom": true, "type": "pkg:m:typ",
            "dependencies": [child_old]});
        let (_, _, d) = replay(deployment(vec![parent, child, user]), &[]);
        assert_eq!(d["resources"][1]["urn"], child_new);
        assert_eq!(d["resources"][1]["parent"], parent_new);
        assert_eq!(d["resources"][2]["dependencies"], json!([child_new]));

        // Children of a stack that changed URN keep their unqualified URN.
        let stack_old = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-old";
        let stack_new = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev";
        let stack = json!({"urn": stack_new, "custom": false, "type": "pulumi:pulumi:Stack",
            "aliases": [stack_old]});
        let child = with(res("c"), "parent", json!(stack_old));
        let (_, _, d) = replay(deployment(vec![stack, child]), &[]);
        assert_eq!(d["resources"][1]["urn"], urn("c"));
        assert_eq!(d["resources"][1]["parent"], stack_new);
    }

    #[test]
    fn normalize_provider_edge_cases() {
        let prov = "urn:pulumi:dev::proj::pulumi:providers:aws::p";
        let rs = vec![
            with(res("a"), "provider", json!(format!("{prov}::"))),
            with(res("b"), "provider", json!("not a reference")),
            with(res("c"), "provider", json!(format!("{}::id", urn("x")))),
        ];
        let (_, _, d) = replay(deployment(rs), &[]);
        // An empty provider ID comes back as the unknown-ID placeholder, as in Go.
        assert_eq!(d["resources"][0]["provider"], format!("{prov}::{UNKNOWN_PROVIDER_ID}"));
        // Malformed references (Go would panic) are left alone.
        assert_eq!(d["resources"][1]["provider"], "not a reference");
        assert_eq!(d["resources"][2]["provider"], format!("{}::id", urn("x")));
    }

    #[test]
    fn duplicate_alias_is_an_error() {
        let rs = vec![
            with(res("a"), "aliases", json!([urn("old")])),
            with(res("b"), "aliases", json!([urn("old")])),
        ];
        let r = Replayer::new(deployment(rs)).unwrap();
        let err = r.snapshot(manifest()).unwrap_err();
        assert!(matches!(err, JournalError::DuplicateAlias { .. }));

        // The same alias twice on the same resource is fine.
        let rs = vec![with(res("a"), "aliases", json!([urn("old"), urn("old")]))];
        assert!(Replayer::new(deployment(rs)).unwrap().snapshot(manifest()).is_ok());
    }

    // ---- pass-through ------------------------------------------------------------------------

    #[test]
    fn unknown_fields_and_base_sections_pass_through() {
        let mut base = deployment(vec![with(res("a"), "futureField", json!({"deep": [1, 2]}))]);
        base["metadata"] = json!({"integrity_error": {"error": "boom"}});
        base["secrets_providers"] = json!({"type": "b64"});
        base["futureTopLevel"] = json!(true);
        let mut j = Journal::default();
        j.create(1, with(res("n"), "anotherNewField", json!("x")));
        let (_, _, d) = replay(base, &j.entries);
        assert_eq!(d["resources"][0]["anotherNewField"], "x");
        assert_eq!(d["resources"][1]["futureField"], json!({"deep": [1, 2]}));
        assert_eq!(d["metadata"]["integrity_error"]["error"], "boom");
        assert_eq!(d["secrets_providers"], json!({"type": "b64"}));
        assert_eq!(d["futureTopLevel"], true);
        assert_eq!(d["manifest"], manifest());
    }

    // ---- sequencing and validation -----------------------------------------------------------

    #[test]
    fn duplicate_batches_are_ignored() {
        let mut j = Journal::default();
        j.create(1, res("a")).create(2, res("b"));
        let mut r = Replayer::new(deployment(vec![])).unwrap();
        r.apply(&j.entries[..2]).unwrap();
        // The first batch is retried, then overlaps the next one.
        r.apply(&j.entries[..2]).unwrap();
        r.apply(&j.entries[1..]).unwrap();
        r.apply(&j.entries).unwrap();
        assert_eq!(r.last_sequence(), 4);
        assert_eq!(r.buffered(), 0);
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(urns(&d), vec![urn("a"), urn("b")]);
    }

    #[test]
    fn out_of_order_entries_are_buffered_until_the_gap_fills() {
        let mut j = Journal::default();
        j.create(1, res("a")).create(2, res("b"));
        let e = &j.entries;
        let mut r = Replayer::new(deployment(vec![])).unwrap();
        // Within one batch, out of order.
        r.apply(&[e[1].clone(), e[0].clone()]).unwrap();
        assert_eq!(r.last_sequence(), 2);
        // Sequence 4 arrives in a batch before 3.
        r.apply(&[e[3].clone()]).unwrap();
        assert_eq!((r.last_sequence(), r.buffered()), (2, 1));
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(urns(&d), vec![urn("a")], "buffered entries are not visible yet");
        r.apply(&[e[3].clone()]).unwrap();
        assert_eq!(r.buffered(), 1, "a buffered duplicate is ignored");
        r.apply(&[e[2].clone()]).unwrap();
        assert_eq!((r.last_sequence(), r.buffered()), (4, 0));
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(urns(&d), vec![urn("a"), urn("b")]);
    }

    #[test]
    fn invalid_entries_are_rejected_without_changing_state() {
        let base = deployment(vec![res("a")]);
        let mut r = Replayer::new(base).unwrap();
        let mut j = Journal::default();
        j.create(1, res("n"));
        r.apply(&j.entries).unwrap();
        let before = r.snapshot(manifest()).unwrap();

        let bad = |f: &dyn Fn(&mut JournalEntry)| {
            let mut e = JournalEntry {
                kind: EntryKind::Success.as_i64(),
                sequence_id: 3,
                operation_id: 2,
                ..JournalEntry::default()
            };
            f(&mut e);
            e
        };
        let cases: Vec<(JournalEntry, JournalError)> = vec![
            (
                bad(&|e| {
                    e.state = Some(res("x"));
                    e.remove_old = Some(1);
                }),
                JournalError::BaseIndexOutOfRange { sequence: 3, index: 1, len: 1 },
            ),
            (
                bad(&|e| e.delete_old = Some(-1)),
                JournalError::BaseIndexOutOfRange { sequence: 3, index: -1, len: 1 },
            ),
            (
                bad(&|e| {
                    e.state = Some(res("x"));
                    e.remove_new = Some(9);
                }),
                JournalError::UnknownOperation { sequence: 3, operation: 9 },
            ),
            (
                bad(&|e| e.pending_replacement_new = Some(7)),
                JournalError::UnknownOperation { sequence: 3, operation: 7 },
            ),
            (bad(&|e| e.state = Some(json!([1]))), invalid(3, "state", "an object")),
            (bad(&|e| e.kind = 10), JournalError::UnknownKind { sequence: 3, kind: 10 }),
            (bad(&|e| e.version = 2), JournalError::UnsupportedVersion { sequence: 3, version: 2 }),
        ];
        for (entry, expected) in cases {
            let mut r2 = r.clone();
            assert_eq!(r2.apply(&[entry]).unwrap_err(), expected);
            assert_eq!(r2.last_sequence(), 2);
            assert_eq!(r2.snapshot(manifest()).unwrap(), before);
            // The rejected entry is discarded, so a corrected resend of the same ID applies.
            r2.apply(&[bad(&|e| e.state = Some(res("fixed")))]).unwrap();
            assert_eq!(r2.last_sequence(), 3);
        }

        // A batch with an invalid sequence ID is rejected as a whole.
        let good = bad(&|e| e.state = Some(res("fixed")));
        let zero = JournalEntry { sequence_id: 0, ..JournalEntry::default() };
        assert_eq!(r.apply(&[good, zero]).unwrap_err(), JournalError::InvalidSequence(0));
        assert_eq!((r.last_sequence(), r.buffered()), (2, 0));
    }

    #[test]
    fn apply_owned_matches_apply() {
        let mut j = Journal::default();
        j.create(1, res("a")).same_old(2, 0, res("b"));
        let mut a = Replayer::new(deployment(vec![res("b")])).unwrap();
        let mut b = a.clone();
        a.apply(&j.entries).unwrap();
        b.apply_owned(j.entries.clone()).unwrap();
        assert_eq!(a.snapshot(manifest()).unwrap(), b.snapshot(manifest()).unwrap());
    }

    // ---- equivalence with full checkpoints ---------------------------------------------------

    #[test]
    fn journal_replay_matches_full_checkpoints() {
        let sp = json!({"type": "service", "state": {"url": "https://api.example", "owner": "o",
            "project": "proj", "stack": "dev"}});
        let stack_urn = "urn:pulumi:dev::proj::pulumi:pulumi:Stack::proj-dev";
        let stack = json!({"urn": stack_urn, "custom": false, "type": "pulumi:pulumi:Stack"});
        let stack_out = with(stack.clone(), "outputs", json!({"bucket": "b-1"}));
        let child = |name: &str, inputs: Value| {
            json!({"urn": urn(name), "custom": true, "type": "pkg:m:typ", "id": format!("id-{name}"),
                "parent": stack_urn, "inputs": inputs, "outputs": inputs})
        };
        let a = child("a", json!({"size": 1}));
        let b = child("b", json!({"size": 2}));
        let a2 = child("a", json!({"size": 10}));

        // Update 1 on a never-updated stack: create stack, a, b; register stack outputs.
        // The CLI's last full checkpoint would be:
        let checkpoint1 = json!({
            "manifest": manifest(), "secrets_providers": sp, "metadata": {},
            "resources": [stack_out, a, b]
        });
        let empty = json!({"manifest": manifest(), "metadata": {}});
        let mut j1 = Journal::default();
        j1.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
        j1.push(EntryKind::Write, 0, |e| {
            e.new_snapshot = Some(json!({"manifest": manifest(), "secrets_providers": sp,
                "metadata": {}}));
        });
        j1.create(1, stack.clone()).create(2, a.clone()).create(3, b.clone());
        j1.outputs(4, |e| {
            e.state = Some(stack_out.clone());
            e.remove_new = Some(1);
        });
        let (v1, f1, d1) = replay(empty, &j1.entries);
        assert_eq!((v1, f1), (3, vec![]));
        assert_eq!(d1["resources"], checkpoint1["resources"]);
        assert_eq!(d1, checkpoint1);

        // Update 2 from that state: same stack, update a, delete b, outputs again.
        let checkpoint2 = json!({
            "manifest": manifest(), "secrets_providers": sp, "metadata": {},
            "resources": [stack_out, a2]
        });
        let mut j2 = Journal::default();
        j2.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
        j2.push(EntryKind::Write, 0, |e| e.new_snapshot = Some(d1.clone()));
        j2.same_old(1, 0, stack.clone());
        j2.update_old(2, 1, a2.clone());
        j2.delete_old(3, 2, &b);
        j2.outputs(4, |e| {
            e.state = Some(stack_out.clone());
            e.remove_new = Some(1);
        });
        let (_, _, d2) = replay(d1.clone(), &j2.entries);
        assert_eq!(d2["resources"], checkpoint2["resources"]);
        assert_eq!(d2, checkpoint2);

        // Replaying update 2 in small, retried, reordered batches gives the same result.
        let mut r = Replayer::new(d1).unwrap();
        for chunk in j2.entries.chunks(3).rev() {
            r.apply(chunk).unwrap();
            r.apply(chunk).unwrap();
        }
        assert_eq!(r.snapshot(manifest()).unwrap().2, checkpoint2);
    }

    // ---- scale -------------------------------------------------------------------------------

    #[test]
    fn ten_thousand_resources_replay_in_linear_time() {
        const N: i64 = 10_000;
        let started = Instant::now();
        let mut j = Journal::default();
        for i in 1..=N {
            j.create(i, res(&format!("r{i}")));
        }
        let mut r = Replayer::new(deployment(vec![])).unwrap();
        for batch in j.entries.chunks(100) {
            r.apply(batch).unwrap();
        }
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(resources(&d).len(), N as usize);

        // Second update: update every other resource and delete the rest.
        let mut j = Journal::default();
        for i in 0..N {
            if i % 2 == 0 {
                j.update_old(
                    i + 1,
                    i,
                    with(res(&format!("r{}", i + 1)), "inputs", json!({"v": 2})),
                );
            } else {
                j.delete_old(i + 1, i, &res(&format!("r{}", i + 1)));
            }
        }
        let mut r = Replayer::new(d).unwrap();
        r.apply_owned(j.entries).unwrap();
        let (_, _, d) = r.snapshot(manifest()).unwrap();
        assert_eq!(resources(&d).len(), N as usize / 2);
        // Generous bound: a quadratic replay of 40,000 entries would take far longer.
        assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    }

    // ---- resumable state (incremental materialisation) ---------------------------------------

    /// Replays `entries` in one go, and resumed from a stored state after each cut point:
    /// serialize, parse back, check, then apply the rest. Every resumed result must be
    /// byte-for-byte the uninterrupted one.
    fn assert_resumes_identically(base: &Value, entries: &[JournalEntry], cuts: &[usize]) {
        let mut full = Replayer::new(base.clone()).unwrap();
        full.apply(entries).unwrap();
        let expected = serde_json::to_vec(&full.snapshot(manifest()).unwrap()).unwrap();
        for &cut in cuts {
            let mut first = Replayer::new(base.clone()).unwrap();
            first.apply(&entries[..cut]).unwrap();
            let stored = serde_json::to_vec(&first).unwrap();
            let mut resumed: Replayer = serde_json::from_slice(&stored).unwrap();
            resumed.check_resumed().unwrap();
            assert_eq!(resumed.last_sequence(), cut as i64);
            // Batches that straddle the cut are re-read whole when resuming.
            let overlap = cut.saturating_sub(3);
            resumed.apply(&entries[overlap..]).unwrap();
            let got = serde_json::to_vec(&resumed.snapshot(manifest()).unwrap()).unwrap();
            assert!(got == expected, "resumed after {cut} of {} entries differs", entries.len());
        }
    }

    #[test]
    fn resumed_state_matches_an_uninterrupted_replay_at_every_entry() {
        // A journal touching every kind and every piece of replay state.
        let sp = json!({"type": "service", "state": {"url": "https://api.example"}});
        let base = json!({"manifest": manifest(), "metadata": {}, "resources": [
            res("a"), res("b"), res("c"), res("d"), res("e")],
            "pending_operations": [operation(&res("z"), "creating")],
            "extensions": {"base": {"name": "x"}}});
        let mut j = Journal::default();
        j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
        j.same_old(1, 0, res("a"));
        j.update_old(2, 1, with(res("b"), "inputs", json!({"f": 1.0000000000000002e-7})));
        j.delete_old(3, 2, &res("c"));
        j.create(4, res("n1"));
        // A replacement: new resource created, old one marked, then deleted.
        j.create(5, res("d"));
        j.begin(6, None).success(6, |e| e.pending_replacement_old = Some(3));
        j.begin(7, None).success(7, |e| e.delete_old = Some(3));
        j.refresh(8, |e| {
            e.remove_old = Some(4);
            e.state = Some(with(res("e"), "outputs", json!({"r": true})));
        });
        j.outputs(4, |e| {
            e.remove_new = Some(4);
            e.state = Some(with(res("n1"), "outputs", json!({"o": [1, 2.5, "x"]})));
        });
        j.begin(9, Some(operation(&res("failed"), "creating"))).failure(9);
        j.create(10, res_deps("n2", &["n1"]));
        j.begin(11, None).success(11, |e| e.delete_new = Some(10));
        j.begin(12, None).success(12, |e| e.remove_new = Some(10));
        j.push(EntryKind::Snippets, 0, |e| e.snippets = Some(vec![json!({"s": 1})]));
        j.push(EntryKind::ExtensionParameterize, 0, |e| {
            e.extension_ref = Some("ext".into());
            e.extension = Some(json!({"name": "p", "version": "1.0.0", "value": "AA=="}));
        });
        j.push(EntryKind::Success, 13, |e| {
            e.state = Some(res("bytes"));
            e.requires_byte_string = true;
        });
        // Still running when the CLI stopped: stays pending.
        j.begin(14, Some(operation(&res("inflight"), "creating")));
        j.push(EntryKind::RebuiltBaseState, 0, |_| {});
        j.create(15, res("after-rebuild"));
        j.begin(16, Some(operation(&res("last"), "updating")));
        let n = j.entries.len();
        assert_resumes_identically(&base, &j.entries, &(0..=n).collect::<Vec<_>>());
    }

    #[test]
    fn a_tampered_resumed_state_is_refused() {
        let mut j = Journal::default();
        j.create(1, res("a")).same_old(2, 0, res("b"));
        let mut r = Replayer::new(deployment(vec![res("b")])).unwrap();
        r.apply(&j.entries).unwrap();
        let good = serde_json::to_value(&r).unwrap();
        for (pointer, bad) in [
            ("/base_len", json!(7)),
            ("/operation_to_index", json!({"1": 5})),
            ("/to_delete_in_snapshot", json!([3])),
            ("/last_sequence", json!(-1)),
        ] {
            let mut v = good.clone();
            *v.pointer_mut(pointer).unwrap() = bad;
            let resumed: Replayer = serde_json::from_value(v).unwrap();
            assert!(resumed.check_resumed().is_err(), "{pointer}");
        }
        let resumed: Replayer = serde_json::from_value(good).unwrap();
        resumed.check_resumed().unwrap();
    }

    /// A fixture deployment (`checkpoint.latest`) under `tests/fixtures/pulumi/checkpoints`.
    fn fixture_deployment(name: &str) -> Value {
        let text = crate::fixtures::text(&format!("checkpoints/{name}.json"));
        let v: Value = serde_json::from_str(&text).unwrap();
        v["checkpoint"]["latest"].clone()
    }

    /// Entries an engine would send to turn `base` into `next`: a step per resource of `next`
    /// (same/update of its base entry, or a create), then deletes of what `next` dropped.
    fn steps_between(base: &Value, next: &Value) -> Journal {
        let empty = vec![];
        let old = base["resources"].as_array().unwrap_or(&empty);
        let new = next["resources"].as_array().unwrap_or(&empty);
        let index: HashMap<&str, usize> =
            old.iter().enumerate().filter_map(|(i, r)| Some((r["urn"].as_str()?, i))).collect();
        let mut j = Journal::default();
        if let Some(sp) = next.get("secrets_providers") {
            j.push(EntryKind::SecretsManager, 0, |e| e.secrets_provider = Some(sp.clone()));
        }
        let mut op = 0;
        for r in new {
            op += 1;
            match r["urn"].as_str().and_then(|u| index.get(u)) {
                Some(&i) => j.update_old(op, i as i64, r.clone()),
                None => j.create(op, r.clone()),
            };
        }
        let kept: HashSet<&str> = new.iter().filter_map(|r| r["urn"].as_str()).collect();
        for (i, r) in old.iter().enumerate() {
            if !r["urn"].as_str().is_some_and(|u| kept.contains(u)) {
                op += 1;
                j.delete_old(op, i as i64, r);
            }
        }
        j
    }

    #[test]
    fn fixture_journals_resume_identically() {
        for name in ["checkpoint-v3", "checkpoint-v4", "checkpoint-secrets"] {
            let target = fixture_deployment(name);
            let resources = target["resources"].as_array().unwrap().clone();
            assert!(resources.len() > 10, "{name}");
            // A first update from nothing, then one from the fixture that changes every
            // other resource and drops the last third.
            let empty = json!({"manifest": manifest(), "metadata": {}});
            let first = steps_between(&empty, &target).entries;
            let mut changed = target.clone();
            let keep = resources.len() * 2 / 3;
            changed["resources"] = Value::Array(
                resources[..keep]
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        if i % 2 == 0 {
                            with(r.clone(), "protect", json!(true))
                        } else {
                            r.clone()
                        }
                    })
                    .collect(),
            );
            let second = steps_between(&target, &changed).entries;
            for (base, entries) in [(&empty, &first), (&target, &second)] {
                let n = entries.len();
                // Odd cuts fall between a begin and its success (mid-operation).
                let cuts = [1, 2, 3, n / 3, n / 2 + 1, n - 2, n - 1, n];
                assert_resumes_identically(base, entries, &cuts);
            }
        }
    }

    #[test]
    fn long_generated_journal_resumes_identically() {
        const N: i64 = 3_000;
        let mut j = Journal::default();
        for i in 1..=N {
            j.create(
                i,
                with(res(&format!("r{i}")), "outputs", json!({"n": i, "f": i as f64 / 7.0})),
            );
        }
        let n = j.entries.len();
        let cuts = [999, 1000, 2001, 4000, 5999, n];
        assert_resumes_identically(&deployment(vec![]), &j.entries, &cuts);
    }
}
