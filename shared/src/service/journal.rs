//! Journal replay (PROTOCOL.md §6): rebuilds a deployment from a base deployment plus the
//! journal entries the CLI sends with `PATCH .../journalentries` when the update was started
//! with `journalVersion: 1`.
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
/// Prefix shared by every valid URN.
const URN_PREFIX: &str = "urn:pulumi:";
/// Separator between URN parts and between a provider reference's URN and ID.
const URN_NAME_DELIMITER: &str = "::";
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

/// Replay state for one update: the base deployment plus everything recorded by the entries
/// applied so far. Each entry costs O(1) (plus the size of the values it carries), so a whole
/// journal replays in linear time; [`Replayer::snapshot`] is linear in the deployment size.
#[derive(Debug, Clone)]
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
        for entry in entries {
            if self.is_new_sequence(entry.sequence_id)? {
                self.buffered.insert(entry.sequence_id, entry.clone());
            }
        }
        self.drain()
    }

    /// Like [`Replayer::apply`], but takes ownership to avoid cloning the entries.
    pub fn apply_owned(&mut self, entries: Vec<JournalEntry>) -> Result<(), JournalError> {
        for entry in entries {
            if self.is_new_sequence(entry.sequence_id)? {
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

    /// Rejects invalid sequence IDs and reports whether `seq` is not yet applied or buffered.
    fn is_new_sequence(&self, seq: i64) -> Result<bool, JournalError> {
        if seq <= 0 {
            return Err(JournalError::InvalidSequence(seq));
        }
        Ok(seq > self.last_sequence && !self.buffered.contains_key(&seq))
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
            _ => Err(JournalError::BaseIndexOutOfRange { sequence: seq, index, len: self.base_len }),
        }
    }

    /// Resolves a `*New` operation ID to its position in `new_resources`. `own` is the
    /// (operation, position) of the state the entry itself is about to add, if any.
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
    fn generate(
        &self,
        manifest: Value,
    ) -> Result<(i64, Vec<String>, Map<String, Value>), JournalError> {
        let byte_string = self.requires_byte_string;
        let mut features = BTreeSet::new();

        // New resources first, in production order, minus those removed later in the update.
        let removed: HashSet<usize> =
            self.to_remove.iter().filter_map(|op| self.operation_to_index.get(op).copied()).collect();
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

        let version =
            if features.is_empty() { DEPLOYMENT_VERSION_CURRENT } else { DEPLOYMENT_VERSION_LATEST };
        Ok((version, features.into_iter().map(String::from).collect(), deployment))
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
    list.iter()
        .filter(|u| u.as_str().is_some_and(|u| referenceable.contains(u)))
        .cloned()
        .collect()
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

/// The parts of a valid URN `urn:pulumi:<stack>::<project>::<qualified type>::<name>`.
struct UrnParts<'a> {
    stack: &'a str,
    project: &'a str,
    qualified_type: &'a str,
    name: &'a str,
}

/// Splits a URN the way Go's `urn.URN` accessors do; `None` when it is not a valid URN
/// (where Go would panic).
fn parse_urn(urn: &str) -> Option<UrnParts<'_>> {
    let rest = urn.strip_prefix(URN_PREFIX)?;
    if urn.matches(URN_NAME_DELIMITER).count() < 3 {
        return None;
    }
    let mut parts = rest.splitn(4, URN_NAME_DELIMITER);
    Some(UrnParts {
        stack: parts.next()?,
        project: parts.next()?,
        qualified_type: parts.next()?,
        name: parts.next()?,
    })
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
    format!("{URN_PREFIX}{stack}{URN_NAME_DELIMITER}{project}{URN_NAME_DELIMITER}{typ}{URN_NAME_DELIMITER}{name}")
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

