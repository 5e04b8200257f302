//! [`MetadataStore`] on one DynamoDB table with string keys `pk`/`sk`.
//!
//! Conditions become condition expressions evaluated by DynamoDB atomically with the write;
//! transactions become `TransactWriteItems`. Reads are strongly consistent. Items past their
//! TTL are hidden from `get` and `query` here, because DynamoDB deletes them only eventually.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use super::readable;
use crate::ports::metadata::{
    Condition, Item, MetaError, MetadataStore, Page, Query, SortKey, TransactOp, Update, Value,
};

use crate::ports::metadata::{PARTITION_KEY_ATTR as PK, SORT_KEY_ATTR as SK};

/// The DynamoDB metadata store.
#[derive(Debug, Clone)]
pub struct DynamoMeta {
    client: Client,
    table: String,
}

impl DynamoMeta {
    /// A store on `table`, which must have string keys `pk` (hash) and `sk` (range).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoMeta { client, table: table.into() }
    }
}

type AttrMap = HashMap<String, AttributeValue>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// DynamoDB's ValidationException means the request itself was unacceptable (item over
/// 400 KB, key too long, …): that is `Invalid`, not an outage.
fn store_error<E: std::error::Error + ProvideErrorMetadata>(err: E) -> MetaError {
    if err.code() == Some("ValidationException") {
        MetaError::Invalid(readable(&err))
    } else {
        MetaError::Unavailable(readable(&err))
    }
}

/// DynamoDB rejects empty strings in key attributes with a validation error; say so clearly
/// instead of passing that through as an outage.
fn check_key(pk: &str, sk: &str) -> Result<(), MetaError> {
    if pk.is_empty() || sk.is_empty() {
        Err(MetaError::Invalid("pk and sk must not be empty".to_string()))
    } else {
        Ok(())
    }
}

fn to_av(value: &Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.to_string()),
        Value::B(b) => AttributeValue::B(Blob::new(b.clone())),
        Value::Bool(b) => AttributeValue::Bool(*b),
    }
}

fn from_av(name: &str, av: AttributeValue) -> Result<Value, MetaError> {
    match av {
        AttributeValue::S(s) => Ok(Value::S(s)),
        AttributeValue::N(n) => n.parse::<i64>().map(Value::N).map_err(|_| {
            MetaError::Unavailable(format!("attribute {name} holds a non-integer number {n:?}"))
        }),
        AttributeValue::B(b) => Ok(Value::B(b.into_inner())),
        AttributeValue::Bool(b) => Ok(Value::Bool(b)),
        // Someone wrote the table with another tool; refuse rather than silently drop data.
        other => Err(MetaError::Unavailable(format!(
            "attribute {name} has an unsupported DynamoDB type: {other:?}"
        ))),
    }
}

fn key_map(pk: &str, sk: &str) -> AttrMap {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk.to_string())),
        (SK.to_string(), AttributeValue::S(sk.to_string())),
    ])
}

fn to_map(item: &Item) -> Result<AttrMap, MetaError> {
    check_key(&item.pk, &item.sk)?;
    if let Some(name) = item.attrs.keys().find(|n| n.is_empty() || *n == PK || *n == SK) {
        return Err(MetaError::Invalid(format!("attribute name {name:?} is not allowed")));
    }
    let mut map = key_map(&item.pk, &item.sk);
    for (name, value) in &item.attrs {
        map.insert(name.clone(), to_av(value));
    }
    Ok(map)
}

fn key_string(map: &mut AttrMap, name: &str) -> Result<String, MetaError> {
    match map.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        other => Err(MetaError::Unavailable(format!(
            "item key attribute {name} is not a string: {other:?}"
        ))),
    }
}

fn from_map(mut map: AttrMap) -> Result<Item, MetaError> {
    let pk = key_string(&mut map, PK)?;
    let sk = key_string(&mut map, SK)?;
    let mut attrs = BTreeMap::new();
    for (name, av) in map {
        let value = from_av(&name, av)?;
        attrs.insert(name, value);
    }
    Ok(Item { pk, sk, attrs })
}

/// A condition expression with its placeholder maps. Every attribute name goes through a
/// `#n` placeholder (many plausible names such as `status` or `ttl` are reserved words) and
/// every value through a `:v` placeholder.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// How tightly a rendered expression binds: DynamoDB rejects redundant parentheses
/// ("The expression has redundant parentheses"), so they are added only where precedence
/// (NOT > AND > OR) needs them: around an OR inside an AND.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prec {
    Atom,
    And,
    Or,
}

impl Expr {
    /// Renders a condition; the placeholders accumulate in `self`.
    fn render(&mut self, c: &Condition) -> String {
        self.render_prec(c).0
    }

    fn render_prec(&mut self, c: &Condition) -> (String, Prec) {
        match c {
            Condition::NotExists => (format!("attribute_not_exists({PK})"), Prec::Atom),
            Condition::Exists => (format!("attribute_exists({PK})"), Prec::Atom),
            Condition::Equals(a, v) => {
                let n = self.name(a);
                let v = self.value(to_av(v));
                (format!("{n} = {v}"), Prec::Atom)
            }
            Condition::AttrNotExists(a) => {
                (format!("attribute_not_exists({})", self.name(a)), Prec::Atom)
            }
            Condition::LessThan(a, v) => {
                let n = self.name(a);
                match v {
                    // DynamoDB cannot order booleans; false < true is the only true case.
                    Value::Bool(true) => {
                        let f = self.value(AttributeValue::Bool(false));
                        (format!("{n} = {f}"), Prec::Atom)
                    }
                    Value::Bool(false) => {
                        (format!("attribute_exists({n}) AND attribute_not_exists({n})"), Prec::And)
                    }
                    _ => (self.ordered(&n, "<", v), Prec::And),
                }
            }
            Condition::AtLeast(a, v) => {
                let n = self.name(a);
                match v {
                    // DynamoDB cannot order booleans; everything is at least false.
                    Value::Bool(false) => {
                        let t = self.value(AttributeValue::S("BOOL".to_string()));
                        (format!("attribute_type({n}, {t})"), Prec::Atom)
                    }
                    Value::Bool(true) => {
                        let t = self.value(AttributeValue::Bool(true));
                        (format!("{n} = {t}"), Prec::Atom)
                    }
                    _ => (self.ordered(&n, ">=", v), Prec::And),
                }
            }
            Condition::And(a, b) => {
                let a = self.operand_of_and(a);
                let b = self.operand_of_and(b);
                (format!("{a} AND {b}"), Prec::And)
            }
            Condition::Or(a, b) => {
                let a = self.render_prec(a).0;
                let b = self.render_prec(b).0;
                (format!("{a} OR {b}"), Prec::Or)
            }
        }
    }

    /// `n <op> v` for a string, number or binary `v`. The port compares only values of the
    /// same type, so the stored attribute's type is pinned rather than left to DynamoDB's
    /// cross-type comparison rules.
    fn ordered(&mut self, n: &str, op: &str, v: &Value) -> String {
        let ty = match v {
            Value::S(_) => "S",
            Value::N(_) => "N",
            _ => "B",
        };
        let t = self.value(AttributeValue::S(ty.to_string()));
        let v = self.value(to_av(v));
        format!("attribute_type({n}, {t}) AND {n} {op} {v}")
    }

    fn operand_of_and(&mut self, c: &Condition) -> String {
        match self.render_prec(c) {
            (text, Prec::Or) => format!("({text})"),
            (text, _) => text,
        }
    }

    fn name(&mut self, attr: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| a.as_str() == attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    /// The maps as the SDK wants them: DynamoDB rejects empty maps, so empty means None.
    fn into_maps(self) -> (Option<HashMap<String, String>>, Option<AttrMap>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }
}

/// A rendered condition: expression plus its placeholder maps.
struct Rendered {
    text: String,
    names: Option<HashMap<String, String>>,
    values: Option<AttrMap>,
}

fn render(condition: &Condition) -> Rendered {
    let mut expr = Expr::default();
    let text = expr.render(condition);
    let (names, values) = expr.into_maps();
    Rendered { text, names, values }
}

/// Where a query starts, given `after` and the sort-key range.
enum Start {
    /// From the beginning of the range.
    Beginning,
    /// Strictly after this sort key, which lies inside the range.
    After(String),
    /// Nothing can follow `after` within the range.
    Nothing,
}

/// DynamoDB rejects an ExclusiveStartKey outside the key condition's range ("starting key is
/// outside query boundaries"), so a cursor outside the range is resolved here.
fn start_for(sk: &SortKey, ascending: bool, after: Option<&str>) -> Start {
    let Some(after) = after else { return Start::Beginning };
    // Stored sort keys are never empty, so every key follows "" and none precedes it.
    if after.is_empty() {
        return if ascending { Start::Beginning } else { Start::Nothing };
    }
    // Where `after` lies relative to the range: below it, inside, or above it.
    let position = match sk {
        SortKey::All => std::cmp::Ordering::Equal,
        SortKey::BeginsWith(p) if after.starts_with(p.as_str()) => std::cmp::Ordering::Equal,
        SortKey::BeginsWith(p) => after.cmp(p.as_str()),
        SortKey::Between(lo, _) if after < lo.as_str() => std::cmp::Ordering::Less,
        SortKey::Between(_, hi) if after > hi.as_str() => std::cmp::Ordering::Greater,
        SortKey::Between(..) => std::cmp::Ordering::Equal,
    };
    match (position, ascending) {
        (std::cmp::Ordering::Equal, _) => Start::After(after.to_string()),
        (std::cmp::Ordering::Less, true) | (std::cmp::Ordering::Greater, false) => Start::Beginning,
        _ => Start::Nothing,
    }
}

impl DynamoMeta {
    fn put_op(&self, item: &Item, condition: Option<&Condition>) -> Result<Put, MetaError> {
        let mut b = Put::builder().table_name(&self.table).set_item(Some(to_map(item)?));
        if let Some(c) = condition {
            let r = render(c);
            b = b
                .condition_expression(r.text)
                .set_expression_attribute_names(r.names)
                .set_expression_attribute_values(r.values);
        }
        b.build().map_err(|e| MetaError::Invalid(e.to_string()))
    }

    fn delete_op(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<&Condition>,
    ) -> Result<Delete, MetaError> {
        check_key(pk, sk)?;
        let mut b = Delete::builder().table_name(&self.table).set_key(Some(key_map(pk, sk)));
        if let Some(c) = condition {
            let r = render(c);
            b = b
                .condition_expression(r.text)
                .set_expression_attribute_names(r.names)
                .set_expression_attribute_values(r.values);
        }
        b.build().map_err(|e| MetaError::Invalid(e.to_string()))
    }

    fn check_op(
        &self,
        pk: &str,
        sk: &str,
        condition: &Condition,
    ) -> Result<ConditionCheck, MetaError> {
        check_key(pk, sk)?;
        let r = render(condition);
        ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(pk, sk)))
            .condition_expression(r.text)
            .set_expression_attribute_names(r.names)
            .set_expression_attribute_values(r.values)
            .build()
            .map_err(|e| MetaError::Invalid(e.to_string()))
    }
}

#[async_trait]
impl MetadataStore for DynamoMeta {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, MetaError> {
        check_key(pk, sk)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        match out.item {
            Some(map) => {
                let item = from_map(map)?;
                Ok((!item.is_expired(now())).then_some(item))
            }
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), MetaError> {
        let op = self.put_op(&item, condition.as_ref())?;
        let result = self
            .client
            .put_item()
            .table_name(op.table_name)
            .set_item(Some(op.item))
            .set_condition_expression(op.condition_expression)
            .set_expression_attribute_names(op.expression_attribute_names)
            .set_expression_attribute_values(op.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => Err(MetaError::ConditionFailed),
                other => Err(store_error(other)),
            },
        }
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Option<Condition>,
    ) -> Result<(), MetaError> {
        let op = self.delete_op(pk, sk, condition.as_ref())?;
        let result = self
            .client
            .delete_item()
            .table_name(op.table_name)
            .set_key(Some(op.key))
            .set_condition_expression(op.condition_expression)
            .set_expression_attribute_names(op.expression_attribute_names)
            .set_expression_attribute_values(op.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                DeleteItemError::ConditionalCheckFailedException(_) => {
                    Err(MetaError::ConditionFailed)
                }
                other => Err(store_error(other)),
            },
        }
    }

    async fn transact(&self, ops: Vec<TransactOp>) -> Result<(), MetaError> {
        // DynamoDB rejects these too, but as a generic ValidationException.
        crate::ports::metadata::check_transaction(&ops)?;
        let mut items = Vec::with_capacity(ops.len());
        for op in &ops {
            let item = match op {
                TransactOp::Put(item, c) => {
                    TransactWriteItem::builder().put(self.put_op(item, c.as_ref())?)
                }
                TransactOp::Delete { pk, sk, condition } => TransactWriteItem::builder()
                    .delete(self.delete_op(pk, sk, condition.as_ref())?),
                TransactOp::Check { pk, sk, condition } => {
                    TransactWriteItem::builder().condition_check(self.check_op(pk, sk, condition)?)
                }
            };
            items.push(item.build());
        }
        let result =
            self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(tc) => {
                    let by_condition = tc
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed"));
                    // Some emulators leave the structured reasons out and only list them in the
                    // message ("… [ConditionalCheckFailed, None]").
                    let in_message =
                        tc.message().is_some_and(|m| m.contains("ConditionalCheckFailed"));
                    if by_condition || in_message {
                        Err(MetaError::ConditionFailed)
                    } else {
                        // E.g. TransactionConflict: a concurrent transaction; cancelled, so
                        // nothing was written.
                        Err(MetaError::Contended(readable(&tc)))
                    }
                }
                other => Err(store_error(other)),
            },
        }
    }

    async fn update(&self, update: Update) -> Result<Item, MetaError> {
        update.check()?;
        check_key(&update.pk, &update.sk)?;
        // `SET #a = :x, … ADD #b :y, …` plus the condition, all through one placeholder set.
        let mut expr = Expr::default();
        let mut clauses = Vec::new();
        let sets: Vec<String> = update
            .set
            .iter()
            .map(|(name, v)| format!("{} = {}", expr.name(name), expr.value(to_av(v))))
            .collect();
        if !sets.is_empty() {
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        let adds: Vec<String> = update
            .add
            .iter()
            .map(|(name, d)| {
                format!("{} {}", expr.name(name), expr.value(AttributeValue::N(d.to_string())))
            })
            .collect();
        if !adds.is_empty() {
            clauses.push(format!("ADD {}", adds.join(", ")));
        }
        let condition = update.condition.as_ref().map(|c| expr.render(c));
        let (names, values) = expr.into_maps();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(&update.pk, &update.sk)))
            .update_expression(clauses.join(" "))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes {
                Some(map) => from_map(map),
                None => Err(MetaError::Unavailable("UpdateItem returned no attributes".into())),
            },
            Err(e) => match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => {
                    Err(MetaError::ConditionFailed)
                }
                other => Err(store_error(other)),
            },
        }
    }

    async fn query(&self, query: Query) -> Result<Page, MetaError> {
        if query.pk.is_empty() {
            return Err(MetaError::Invalid("pk must not be empty".to_string()));
        }
        if query.limit == 0 {
            return Err(MetaError::Invalid("query limit must be at least 1".to_string()));
        }
        let empty = Page { items: Vec::new(), next: None };
        let mut values: AttrMap =
            HashMap::from([(":pk".to_string(), AttributeValue::S(query.pk.clone()))]);
        // Empty strings are invalid key values in DynamoDB, so empty bounds are rewritten to
        // the equivalent condition without them (stored sort keys are never empty).
        let key_condition = match &query.sk {
            SortKey::All => "pk = :pk".to_string(),
            SortKey::BeginsWith(p) if p.is_empty() => "pk = :pk".to_string(),
            SortKey::BeginsWith(p) => {
                values.insert(":p".to_string(), AttributeValue::S(p.clone()));
                "pk = :pk AND begins_with(sk, :p)".to_string()
            }
            // DynamoDB rejects an inverted range as well.
            SortKey::Between(lo, hi) if lo > hi => {
                return Err(MetaError::Invalid(format!(
                    "sort-key range {lo:?}..={hi:?} is empty (lower bound above upper)"
                )));
            }
            SortKey::Between(_, hi) if hi.is_empty() => return Ok(empty),
            SortKey::Between(lo, hi) if lo.is_empty() => {
                values.insert(":hi".to_string(), AttributeValue::S(hi.clone()));
                "pk = :pk AND sk <= :hi".to_string()
            }
            SortKey::Between(lo, hi) => {
                values.insert(":lo".to_string(), AttributeValue::S(lo.clone()));
                values.insert(":hi".to_string(), AttributeValue::S(hi.clone()));
                "pk = :pk AND sk BETWEEN :lo AND :hi".to_string()
            }
        };
        let mut start_key = match start_for(&query.sk, query.ascending, query.after.as_deref()) {
            Start::Beginning => None,
            Start::After(sk) => Some(key_map(&query.pk, &sk)),
            Start::Nothing => return Ok(empty),
        };

        let now = now();
        let mut items = Vec::new();
        // DynamoDB applies Limit before we drop TTL-expired items (and stops at 1 MB), so keep
        // reading until the page is full or the partition range is exhausted.
        loop {
            let remaining = query.limit - items.len();
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(query.ascending)
                .consistent_read(true)
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(store_error)?;
            for map in out.items.unwrap_or_default() {
                let item = from_map(map)?;
                if !item.is_expired(now) {
                    items.push(item);
                }
            }
            let Some(mut last) = out.last_evaluated_key else {
                return Ok(Page { items, next: None });
            };
            if items.len() >= query.limit {
                let next = key_string(&mut last, SK)?;
                return Ok(Page { items, next: Some(next) });
            }
            start_key = Some(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_conditions_with_placeholders() {
        let c = Condition::Equals("status".into(), Value::S("running".into())).and(
            Condition::AttrNotExists("lease".into())
                .or(Condition::LessThan("expires".into(), Value::N(10))),
        );
        let r = render(&c);
        assert_eq!(
            r.text,
            "#n0 = :v0 AND (attribute_not_exists(#n1) OR \
             attribute_type(#n2, :v1) AND #n2 < :v2)"
        );
        let or_of_ands = Condition::Exists.and(Condition::Exists).or(Condition::NotExists);
        assert_eq!(
            render(&or_of_ands).text,
            "attribute_exists(pk) AND attribute_exists(pk) OR attribute_not_exists(pk)"
        );
        let names = r.names.unwrap();
        assert_eq!(names["#n0"], "status");
        assert_eq!(names["#n2"], "expires");
        assert_eq!(r.values.unwrap()[":v2"], AttributeValue::N("10".into()));
        let r = render(&Condition::NotExists);
        assert_eq!(r.text, "attribute_not_exists(pk)");
        assert!(r.names.is_none() && r.values.is_none());
    }

    #[test]
    fn cursor_outside_the_range_is_resolved_locally() {
        let p = SortKey::BeginsWith("V#".into());
        assert!(matches!(start_for(&p, true, Some("A")), Start::Beginning));
        assert!(matches!(start_for(&p, true, Some("V#3")), Start::After(_)));
        assert!(matches!(start_for(&p, true, Some("Z")), Start::Nothing));
        assert!(matches!(start_for(&p, false, Some("A")), Start::Nothing));
        assert!(matches!(start_for(&p, false, Some("Z")), Start::Beginning));
        let b = SortKey::Between("b".into(), "d".into());
        assert!(matches!(start_for(&b, true, Some("a")), Start::Beginning));
        assert!(matches!(start_for(&b, true, Some("d")), Start::After(_)));
        assert!(matches!(start_for(&b, false, Some("e")), Start::Beginning));
        assert!(matches!(start_for(&b, false, Some("a")), Start::Nothing));
        assert!(matches!(start_for(&SortKey::All, false, Some("")), Start::Nothing));
    }

    #[test]
    fn values_round_trip() {
        for v in [Value::S("x".into()), Value::N(-7), Value::B(vec![0, 1]), Value::Bool(true)] {
            assert_eq!(from_av("a", to_av(&v)).unwrap(), v);
        }
        assert!(from_av("a", AttributeValue::N("1.5".into())).is_err());
    }
}
