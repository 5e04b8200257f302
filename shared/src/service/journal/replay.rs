//! Applying entries, in sequence order, to a resumable replay state.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::entry::{EntryKind, JournalEntry, JournalError};
use super::resource::{self, Resource};
use super::snapshot::{set_flag, validate_deployment, Encoded, Generated, Snapshot};
use super::JOURNAL_ENTRY_VERSION;

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
    /// The base deployment (a `DeploymentV3` object) without its `resources`.
    pub(super) base: Map<String, Value>,
    /// The base deployment's resources, as text (`journal::resource`).
    pub(super) base_resources: Vec<Resource>,
    /// Operation IDs whose new resource must be dropped.
    pub(super) to_remove: HashSet<i64>,
    /// Base indexes to drop.
    pub(super) to_delete_in_snapshot: HashSet<usize>,
    /// Base indexes to replace with a new state (refresh and outputs entries).
    pub(super) to_replace_in_snapshot: HashMap<usize, Resource>,
    /// Base indexes to mark `delete: true`.
    pub(super) mark_as_deletion: HashSet<usize>,
    /// Base indexes to mark `pendingReplacement: true`.
    pub(super) mark_as_pending_replacement: HashSet<usize>,
    /// Operation ID -> position in `new_resources`.
    pub(super) operation_to_index: HashMap<i64, usize>,
    /// Operations begun but not finished, with their `operation` if the begin carried one.
    /// A BTreeMap so pending operations come out in operation order; Go iterates a map here,
    /// so its order is random and any fixed order is as good.
    pub(super) incomplete: BTreeMap<i64, Option<Value>>,
    /// Whether any applied entry was part of a refresh (prunes dangling references).
    pub(super) has_refresh: bool,
    /// Whether any applied entry needed byte strings.
    pub(super) requires_byte_string: bool,
    /// Resources produced by this update, in the order they were produced.
    pub(super) new_resources: Vec<Resource>,
    /// Extensions recorded by `extension-parameterize` entries.
    pub(super) extensions: Map<String, Value>,
    /// Highest sequence ID applied; every lower one has been applied too.
    pub(super) last_sequence: i64,
    /// Entries that arrived after a gap, waiting for the missing sequence IDs.
    #[serde(skip)]
    pub(super) buffered: BTreeMap<i64, JournalEntry>,
}

impl Replayer {
    /// Starts a replay on top of `base`, the stack's deployment when the update started (what
    /// `GET .../export` returned, i.e. `UntypedDeployment.deployment`). `null` counts as the
    /// empty deployment, as for a stack that was never updated.
    pub fn new(base: Value) -> Result<Self, JournalError> {
        let mut base = match base {
            Value::Null => Map::new(),
            other => validate_deployment(other, "base deployment")?,
        };
        let base_resources = resource::take_resources(&mut base)?;
        Ok(Self::on(base, base_resources))
    }

    /// [`Replayer::new`] on a deployment given as JSON text (as it is stored): its resources
    /// stay the text they are, never parsed into trees.
    pub fn from_text(base: &str) -> Result<Self, JournalError> {
        let (base, base_resources) = resource::split_text(base)?;
        Ok(Self::on(base, base_resources))
    }

    fn on(base: Map<String, Value>, base_resources: Vec<Resource>) -> Self {
        Self {
            base,
            base_resources,
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
        }
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
    /// (`{time, magic, version}`, chosen by the caller) as its manifest. Buffered entries after a gap are not included.
    pub fn snapshot(&self, manifest: Value) -> Result<Snapshot, JournalError> {
        self.clone().into_snapshot(manifest)
    }

    /// [`Replayer::snapshot`] of a replay that is over: the resources move into the deployment
    /// instead of being copied.
    pub fn into_snapshot(self, manifest: Value) -> Result<Snapshot, JournalError> {
        let Encoded { version, features, deployment } = self.into_encoded(manifest)?;
        Ok(Snapshot { version, features, deployment: resource::to_tree(&deployment)? })
    }

    /// [`Replayer::into_snapshot`] with the deployment as JSON text, ready to store: the
    /// resources are copied into it as the text they are kept as, never parsed or encoded.
    pub fn into_encoded(mut self, manifest: Value) -> Result<Encoded, JournalError> {
        self.generate(manifest)?.encode()
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
        if self.base.contains_key("resources") {
            return Err(corrupt("resources inside the base"));
        }
        let in_base = |i: &usize| *i < self.base_resources.len();
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
                let mut base = validate_deployment(snapshot, "newSnapshot")?;
                // Indexes recorded earlier now refer to the new base, exactly as in Go; the
                // engine sends this entry before any entry that records an index.
                self.base_resources = resource::take_resources(&mut base)?;
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
                // From a clone: an entry that fails must leave the state as it was.
                let Generated { deployment, resources, .. } = self.clone().generate(manifest)?;
                self.base = deployment;
                self.base_resources = resources;
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
        let state = entry.state.as_ref().map(|state| own_text(seq, state)).transpose()?;
        // The entry's own state is indexed before its other fields are looked at, so they may
        // refer to the entry's own operation.
        let own = state.as_ref().map(|_| (entry.operation_id, self.new_resources.len()));
        let remove_old = self.old_index(seq, entry.remove_old)?;
        let delete_old = self.old_index(seq, entry.delete_old)?;
        let pending_old = self.old_index(seq, entry.pending_replacement_old)?;
        // Only validated here: removal of a new resource is resolved at generation time.
        self.new_index(seq, entry.remove_new, own)?;
        let delete_new = self.new_index(seq, entry.delete_new, own)?;
        let pending_new = self.new_index(seq, entry.pending_replacement_new, own)?;

        self.incomplete.remove(&entry.operation_id);
        if let Some(state) = state {
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
            resource::edit(&mut self.new_resources[i], |obj| set_flag(obj, "delete"))?;
        }
        if let Some(i) = pending_old {
            self.mark_as_pending_replacement.insert(i);
        }
        if let Some(i) = pending_new {
            resource::edit(&mut self.new_resources[i], |obj| set_flag(obj, "pendingReplacement"))?;
        }
        if entry.is_refresh {
            self.has_refresh = true;
        }
        Ok(())
    }

    fn add_refresh_success(&mut self, entry: JournalEntry) -> Result<(), JournalError> {
        let seq = entry.sequence_id;
        let state = entry.state.as_ref().map(|state| own_text(seq, state)).transpose()?;
        let remove_old = self.old_index(seq, entry.remove_old)?;
        let remove_new = self.new_index(seq, entry.remove_new, None)?;

        self.incomplete.remove(&entry.operation_id);
        self.has_refresh = true;
        if let Some(i) = remove_old {
            match &state {
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
            match state {
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
        let state = own_text(seq, &state)?;
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
            Ok(i) if i < self.base_resources.len() => Ok(Some(i)),
            _ => Err(JournalError::BaseIndexOutOfRange {
                sequence: seq,
                index,
                len: self.base_resources.len(),
            }),
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
}

/// Rejects a batch holding a sequence ID below 1 before any of it is buffered, so a bad batch
/// changes nothing. (Go's journaler records such entries as errors.)
pub(super) fn check_sequences(entries: &[JournalEntry]) -> Result<(), JournalError> {
    match entries.iter().find(|e| e.sequence_id <= 0) {
        Some(e) => Err(JournalError::InvalidSequence(e.sequence_id)),
        None => Ok(()),
    }
}

pub(super) fn invalid(sequence: i64, field: &'static str, expected: &'static str) -> JournalError {
    JournalError::InvalidField { sequence, field, expected }
}

/// An entry's resource state as the text the replay keeps; it must be a JSON object
/// (`ResourceV3`).
fn own_text(seq: i64, state: &Value) -> Result<Resource, JournalError> {
    if !state.is_object() {
        return Err(invalid(seq, "state", "an object"));
    }
    resource::to_text(state)
}

/// Treats JSON `null` like an absent field, as Go's pointer/slice fields do.
pub(super) fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}
