//! Metadata store port, shaped like one DynamoDB table with `pk`/`sk` keys.
//!
//! Items are flat maps of typed attributes. Anything structured (tag maps, config) is stored
//! as a JSON string attribute by the domain layer; conditions only look at top-level
//! attributes, exactly as DynamoDB condition expressions would.

use std::collections::BTreeMap;

use async_trait::async_trait;

/// One attribute value. A deliberately small subset of DynamoDB's types.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// String (`S`).
    S(String),
    /// Integer number (`N`); we never store fractions.
    N(i64),
    /// Binary (`B`).
    B(Vec<u8>),
    /// Boolean (`BOOL`).
    Bool(bool),
}

impl Value {
    /// The string, if this is an `S`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::S(s) => Some(s),
            _ => None,
        }
    }
    /// The number, if this is an `N`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::N(n) => Some(*n),
            _ => None,
        }
    }
    /// The bytes, if this is a `B`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::B(b) => Some(b),
            _ => None,
        }
    }
    /// The flag, if this is a `BOOL`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Name of the TTL attribute (epoch seconds). Items whose TTL lies in the past are invisible to
/// `get` and `query` on every adapter, even before the backing store physically removes them
/// (DynamoDB may take up to two days). Conditions, however, still see such items on DynamoDB, so
/// domain logic must never rely on TTL expiry for mutual exclusion: use explicit expiry
/// attributes in conditions instead.
pub const TTL_ATTR: &str = "ttl";

/// The partition-key attribute of the DynamoDB table (a string). With [`SORT_KEY_ATTR`] and
/// [`TTL_ATTR`] this is the table's whole schema, defined once: `init` provisions it and the
/// SAM template declares it from these constants.
pub const PARTITION_KEY_ATTR: &str = "pk";
/// The sort-key attribute of the DynamoDB table (a string).
pub const SORT_KEY_ATTR: &str = "sk";

/// One stored item: its key plus attributes (never containing `pk`/`sk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// All other attributes.
    pub attrs: BTreeMap<String, Value>,
}

impl Item {
    /// A new item with no attributes.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Item { pk: pk.into(), sk: sk.into(), attrs: BTreeMap::new() }
    }
    /// Builder-style attribute setter.
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.attrs.insert(name.to_string(), value);
        self
    }
    /// Sets an attribute.
    pub fn set(&mut self, name: &str, value: Value) {
        self.attrs.insert(name.to_string(), value);
    }
    /// A string attribute.
    pub fn s(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }
    /// A number attribute.
    pub fn n(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(Value::as_i64)
    }
    /// A boolean attribute.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.attrs.get(name).and_then(Value::as_bool)
    }
    /// A binary attribute.
    pub fn b(&self, name: &str) -> Option<&[u8]> {
        self.attrs.get(name).and_then(Value::as_bytes)
    }
    /// Whether the item's TTL has passed at `now` (epoch seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        matches!(self.n(TTL_ATTR), Some(t) if t <= now)
    }
}

/// A condition on the current state of one item, evaluated atomically with the write.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The item does not exist (`attribute_not_exists(pk)`).
    NotExists,
    /// The item exists (`attribute_exists(pk)`).
    Exists,
    /// The attribute exists and equals the value.
    Equals(String, Value),
    /// The attribute is absent.
    AttrNotExists(String),
    /// The attribute exists and is strictly less than the value (same type).
    LessThan(String, Value),
    /// The attribute exists and is greater than or equal to the value (same type).
    AtLeast(String, Value),
    /// Both hold.
    And(Box<Condition>, Box<Condition>),
    /// Either holds.
    Or(Box<Condition>, Box<Condition>),
}

impl Condition {
    /// `self AND other`.
    pub fn and(self, other: Condition) -> Condition {
        Condition::And(Box::new(self), Box::new(other))
    }
    /// `self OR other`.
    pub fn or(self, other: Condition) -> Condition {
        Condition::Or(Box::new(self), Box::new(other))
    }
    /// Evaluates the condition against the current item (None = absent). Adapters that cannot
    /// push conditions into the store (the embedded one) use this inside their transaction.
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match self {
            Condition::NotExists => current.is_none(),
            Condition::Exists => current.is_some(),
            Condition::Equals(name, v) => current.and_then(|i| i.attrs.get(name)) == Some(v),
            Condition::AttrNotExists(name) => current.and_then(|i| i.attrs.get(name)).is_none(),
            Condition::LessThan(name, v) => match current.and_then(|i| i.attrs.get(name)) {
                Some(a) => std::mem::discriminant(a) == std::mem::discriminant(v) && a < v,
                None => false,
            },
            Condition::AtLeast(name, v) => match current.and_then(|i| i.attrs.get(name)) {
                Some(a) => std::mem::discriminant(a) == std::mem::discriminant(v) && a >= v,
                None => false,
            },
            Condition::And(a, b) => a.holds(current) && b.holds(current),
            Condition::Or(a, b) => a.holds(current) || b.holds(current),
        }
    }
}

/// Sort-key restriction of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    /// Every sort key of the partition.
    All,
    /// Sort keys starting with the prefix.
    BeginsWith(String),
    /// Sort keys between the two bounds, both inclusive.
    Between(String, String),
}

/// A query over one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The partition.
    pub pk: String,
    /// Which sort keys.
    pub sk: SortKey,
    /// Ascending (true) or descending sort-key order.
    pub ascending: bool,
    /// At most this many items in the page (adapters may return fewer).
    pub limit: usize,
    /// Continue strictly after this sort key (from `Page::next`).
    pub after: Option<String>,
}

impl Query {
    /// All items of a partition whose sort key starts with `prefix`, ascending.
    pub fn prefix(pk: impl Into<String>, prefix: impl Into<String>, limit: usize) -> Self {
        Query {
            pk: pk.into(),
            sk: SortKey::BeginsWith(prefix.into()),
            ascending: true,
            limit,
            after: None,
        }
    }
}

/// One page of query results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The items, in the requested order.
    pub items: Vec<Item>,
    /// The sort key to continue after, when more items may follow.
    pub next: Option<String>,
}

/// One operation of a transactional write.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactOp {
    /// Put (replace) the item, if the condition holds.
    Put(Item, Option<Condition>),
    /// Delete the item, if the condition holds.
    Delete { pk: String, sk: String, condition: Option<Condition> },
    /// Only check a condition on an item.
    Check { pk: String, sk: String, condition: Condition },
}

/// An atomic change to one item's attributes that needs no read first (DynamoDB's `UpdateItem`
/// with `SET` and `ADD`): counters, sequence numbers and rate-limit buckets take one write
/// instead of a read and a conditional write. An absent item is created with just the key and
/// these attributes; a TTL-expired item not yet removed is changed like a live one (as
/// conditions see it, see [`TTL_ATTR`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Partition key.
    pub pk: String,
    /// Sort key.
    pub sk: String,
    /// Attributes replaced (or created) with these values.
    pub set: BTreeMap<String, Value>,
    /// Numbers added to these attributes (an absent one counts as 0; a non-number is invalid).
    pub add: BTreeMap<String, i64>,
    /// Applied only if this holds on the current item.
    pub condition: Option<Condition>,
}

impl Update {
    /// An update of the item `pk`/`sk` that changes nothing yet.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Update {
            pk: pk.into(),
            sk: sk.into(),
            set: BTreeMap::new(),
            add: BTreeMap::new(),
            condition: None,
        }
    }
    /// Builder-style `SET name = value`.
    pub fn set(mut self, name: &str, value: Value) -> Self {
        self.set.insert(name.to_string(), value);
        self
    }
    /// Builder-style `ADD name delta`.
    pub fn add(mut self, name: &str, delta: i64) -> Self {
        *self.add.entry(name.to_string()).or_insert(0) += delta;
        self
    }
    /// Builder-style condition.
    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// The shape rules every adapter enforces the same way (DynamoDB's): something to change,
    /// never the key, and no attribute both set and added.
    pub fn check(&self) -> Result<(), MetaError> {
        if self.set.is_empty() && self.add.is_empty() {
            return Err(MetaError::Invalid("an update must set or add an attribute".into()));
        }
        for name in self.set.keys().chain(self.add.keys()) {
            if name.is_empty() || name == PARTITION_KEY_ATTR || name == SORT_KEY_ATTR {
                return Err(MetaError::Invalid(format!("attribute name {name:?} is not allowed")));
            }
        }
        if let Some(name) = self.add.keys().find(|n| self.set.contains_key(*n)) {
            return Err(MetaError::Invalid(format!("attribute {name:?} is both set and added")));
        }
        Ok(())
    }

    /// Applies the change to the current item (None = absent): what the store writes. Adapters
    /// that cannot push updates into the store (the embedded one) use this in their
    /// transaction, after checking [`Update::check`] and the condition.
    pub fn apply(&self, current: Option<Item>) -> Result<Item, MetaError> {
        let mut item = current.unwrap_or_else(|| Item::new(self.pk.clone(), self.sk.clone()));
        for (name, value) in &self.set {
            item.set(name, value.clone());
        }
        for (name, delta) in &self.add {
            let now = match item.attrs.get(name) {
                None => 0,
                Some(Value::N(n)) => *n,
                Some(_) => {
                    return Err(MetaError::Invalid(format!(
                        "cannot add to attribute {name:?}: it is not a number"
                    )))
                }
            };
            let sum = now.checked_add(*delta).ok_or_else(|| {
                MetaError::Invalid(format!("adding {delta} to attribute {name:?} overflows"))
            })?;
            item.set(name, Value::N(sum));
        }
        Ok(item)
    }
}

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A condition (or one condition of a transaction) did not hold; nothing was written.
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled because another one was writing one of its items at the
    /// same time (DynamoDB's `TransactionConflict`); nothing was written. Read again and retry,
    /// as after a failed condition, but it says nothing about the conditions themselves.
    #[error("transaction cancelled by a concurrent one: {0}")]
    Contended(String),
    /// The request was malformed for the store (e.g. too many transaction items).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The store could not be reached or failed.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// The function was built without this port: its route or job table entry does not declare
    /// it (see `adapters::undeclared`). A table bug, never a transient failure.
    #[error("{0}")]
    Undeclared(String),
}

/// Most operations a single transaction may hold (DynamoDB's limit).
pub const MAX_TRANSACT_OPS: usize = 100;

impl TransactOp {
    /// The key the operation touches.
    pub fn key(&self) -> (&str, &str) {
        match self {
            TransactOp::Put(item, _) => (&item.pk, &item.sk),
            TransactOp::Delete { pk, sk, .. } | TransactOp::Check { pk, sk, .. } => (pk, sk),
        }
    }
}

/// The shape rules every adapter enforces the same way (DynamoDB's): 1 to
/// [`MAX_TRANSACT_OPS`] operations, each on a distinct key.
pub fn check_transaction(ops: &[TransactOp]) -> Result<(), MetaError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACT_OPS {
        return Err(MetaError::Invalid(format!(
            "a transaction holds 1 to {MAX_TRANSACT_OPS} operations, not {}",
            ops.len()
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        let (pk, sk) = op.key();
        if !keys.insert((pk, sk)) {
            return Err(MetaError::Invalid(format!(
                "a transaction touches {pk}/{sk} more than once"
            )));
        }
    }
    Ok(())
}

/// The metadata store: one table, strongly consistent reads.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Reads one item (None when absent or TTL-expired).
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, MetaError>;
    /// Writes (replaces) one item if the condition holds.
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), MetaError>;
    /// Deletes one item if the condition holds. Deleting an absent item without a condition
    /// succeeds.
    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<Condition>,
    ) -> Result<(), MetaError>;
    /// Applies all operations or none (at most [`MAX_TRANSACT_OPS`], each on a distinct key).
    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), MetaError>;
    /// Reads one page of a partition.
    async fn query(&self, query: Query) -> Result<Page, MetaError>;
    /// Applies an [`Update`] atomically if its condition holds; returns the item as written.
    async fn update(&self, update: Update) -> Result<Item, MetaError>;
}
