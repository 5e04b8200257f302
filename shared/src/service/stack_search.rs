//! Stack search for the console (our own route, `GET /api/orgs/{org}/search/stacks`: Pulumi
//! Cloud's console asks a grid endpoint shaped after its UI component): an organization's
//! stacks the caller may read, by words of their names, project, stack name, tags and how their
//! last update went, sorted and a page at a time. Reads the stack items only (one query per 100
//! stacks), so it answers at once after an update, without waiting for an index.

use std::cmp::Ordering;

use super::stacks::Stack;
use crate::app::App;
use crate::error::{Error, Result};
use crate::service::access::OrgAccess;
use crate::service::identity::Principal;

/// How a stack's last update went, as the search filters and shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// An update is running now.
    InProgress,
    /// The update that made the current version succeeded.
    Succeeded,
    /// It failed (or was cancelled).
    Failed,
    /// The stack was never updated.
    Never,
}

impl Status {
    /// Every status, in the order the parameter documents them.
    pub const ALL: [Status; 4] =
        [Status::Succeeded, Status::Failed, Status::InProgress, Status::Never];

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Status::InProgress => "in-progress",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Never => "never",
        }
    }

    /// The status a `status` parameter names; a 400 naming the choices otherwise.
    pub fn parse(name: &str) -> Result<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
            Error::BadRequest(format!("no status {name:?}; statuses are {}", known.join(", ")))
        })
    }

    /// A stack's status from its item (None: last updated before results were kept there).
    pub fn of(stack: &Stack) -> Option<Status> {
        if stack.active_update.is_some() {
            return Some(Status::InProgress);
        }
        match stack.last_result.as_deref() {
            Some("failed") => Some(Status::Failed),
            Some(_) => Some(Status::Succeeded),
            None if stack.version == 0 => Some(Status::Never),
            None => None,
        }
    }
}

/// A tag condition: the tag is set, or set to this value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTest {
    /// The tag's name (`pulumi:project`, `env`).
    pub name: String,
    /// The value it must have; None: any.
    pub value: Option<String>,
}

impl TagTest {
    /// `name=value` (the value exact) or `name` (set to anything), as `pulumi stack ls
    /// --tag-filter` writes them. Names may hold `:` (`pulumi:project`), so `=` separates.
    pub fn parse(text: &str) -> Result<TagTest> {
        let (name, value) = match text.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (text, None),
        };
        if name.is_empty() {
            return Err(Error::BadRequest(format!(
                "tag {text:?} names no tag; write name or name=value"
            )));
        }
        Ok(TagTest { name: name.to_string(), value })
    }
}

/// What stacks to find: each condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Words each contained (ignoring case) in the project, the stack's name or a tag value.
    pub words: Vec<String>,
    /// Contained (ignoring case) in the project.
    pub project: Option<String>,
    /// Contained (ignoring case) in the stack's name.
    pub name: Option<String>,
    /// Every tag condition.
    pub tags: Vec<TagTest>,
    /// One of these statuses (empty: any).
    pub statuses: Vec<Status>,
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

impl Filter {
    /// Whether `stack`, whose last update went `status`, is one to find.
    pub fn matches(&self, stack: &Stack, status: Status) -> bool {
        let word = |w: &String| {
            contains(&stack.project, w)
                || contains(&stack.stack, w)
                || stack.tags.values().any(|v| contains(v, w))
        };
        self.words.iter().all(word)
            && self.project.as_deref().is_none_or(|p| contains(&stack.project, p))
            && self.name.as_deref().is_none_or(|n| contains(&stack.stack, n))
            && self.tags.iter().all(|t| match (stack.tags.get(&t.name), &t.value) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
            && (self.statuses.is_empty() || self.statuses.contains(&status))
    }
}

/// What to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Project, then stack name.
    Name,
    /// When the last update ended (never updated: oldest).
    LastUpdate,
    /// How many resources the current version has.
    ResourceCount,
}

impl Sort {
    /// The sort a `sort` parameter names; a 400 naming the choices otherwise.
    pub fn parse(name: &str) -> Result<Sort> {
        match name {
            "name" => Ok(Sort::Name),
            "lastUpdate" => Ok(Sort::LastUpdate),
            "resourceCount" => Ok(Sort::ResourceCount),
            _ => Err(Error::BadRequest(format!(
                "cannot sort by {name:?}; sort by name, lastUpdate or resourceCount"
            ))),
        }
    }

    /// Ascending unless said: names A to Z, the newest and largest first.
    pub fn ascending_by_default(self) -> bool {
        self == Sort::Name
    }

    /// The order of two stacks: by the sort's value in the direction asked, ties by project
    /// and stack name A to Z.
    fn order(self, a: &Stack, b: &Stack, ascending: bool) -> Ordering {
        let names = |s: &Stack| (s.project.to_lowercase(), s.stack.to_lowercase());
        let first = match self {
            Sort::Name => names(a).cmp(&names(b)),
            Sort::LastUpdate => a.last_update.unwrap_or(0).cmp(&b.last_update.unwrap_or(0)),
            Sort::ResourceCount => {
                a.resource_count.unwrap_or(0).cmp(&b.resource_count.unwrap_or(0))
            }
        };
        let first = if ascending { first } else { first.reverse() };
        first.then_with(|| names(a).cmp(&names(b)))
    }
}

/// One search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to find.
    pub filter: Filter,
    /// The sort and whether ascending.
    pub sort: (Sort, bool),
    /// The page, from 0.
    pub page: usize,
    /// Stacks per page.
    pub size: usize,
}

/// A search's answer: how many stacks match, and the page's, each with its status.
#[derive(Debug, Clone)]
pub struct Found {
    /// Matches on every page.
    pub total: usize,
    /// This page's stacks, in order.
    pub stacks: Vec<(Stack, Status)>,
}

/// The stacks of `org` the caller may read that `request` finds.
pub async fn search(
    app: &App,
    principal: &Principal,
    org: &str,
    request: &Request,
) -> Result<Found> {
    let meta = app.ports.meta.as_ref();
    let mut access = OrgAccess::resolve(meta, principal, org).await?;
    access.require_member()?;
    let mut matched = Vec::new();
    for stack in super::search::indexer::stacks_of(app, org).await? {
        if !access.may_read(meta, &stack).await? {
            continue;
        }
        let status = match Status::of(&stack) {
            Some(status) => status,
            // Last updated before results were kept on the stack: its latest history entry.
            None => match super::history::latest(meta, &stack.id).await? {
                Some(entry) if entry.info["result"] == "failed" => Status::Failed,
                _ => Status::Succeeded,
            },
        };
        if request.filter.matches(&stack, status) {
            matched.push((stack, status));
        }
    }
    let (sort, ascending) = request.sort;
    matched.sort_by(|(a, _), (b, _)| sort.order(a, b, ascending));
    let total = matched.len();
    let stacks = matched
        .into_iter()
        .skip(request.page.saturating_mul(request.size))
        .take(request.size)
        .collect();
    Ok(Found { total, stacks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::StackId;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn stack(project: &str, name: &str, tags: &[(&str, &str)]) -> Stack {
        Stack {
            id: StackId::from_stored(format!("{project}-{name}")),
            org: "acme".into(),
            project: project.into(),
            stack: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            version: 1,
            last_update: Some(100),
            last_result: Some("succeeded".into()),
            resource_count: Some(3),
            active_update: None,
            deployment_key: None,
            rev: 1,
            creator: None,
        }
    }

    #[test]
    fn tags_are_name_or_name_equals_value() {
        assert_eq!(
            TagTest::parse("env=prod").unwrap(),
            TagTest { name: "env".into(), value: Some("prod".into()) }
        );
        assert_eq!(
            TagTest::parse("pulumi:project").unwrap(),
            TagTest { name: "pulumi:project".into(), value: None }
        );
        assert_eq!(TagTest::parse("a=b=c").unwrap().value.as_deref(), Some("b=c"));
        assert_eq!(TagTest::parse("owner=").unwrap().value.as_deref(), Some(""));
        assert!(matches!(TagTest::parse("=x"), Err(Error::BadRequest(_))));
        assert!(matches!(TagTest::parse(""), Err(Error::BadRequest(_))));
    }

    #[test]
    fn every_condition_must_hold() {
        let s =
            stack("Web-Site", "prod-eu", &[("env", "production"), ("pulumi:project", "Web-Site")]);
        let f = |filter: Filter| filter.matches(&s, Status::Succeeded);
        assert!(f(Filter::default()));
        assert!(f(Filter { words: vec!["site".into(), "EU".into()], ..Filter::default() }));
        assert!(f(Filter { words: vec!["production".into()], ..Filter::default() }), "tag values");
        assert!(!f(Filter { words: vec!["site".into(), "us".into()], ..Filter::default() }));
        assert!(f(Filter {
            project: Some("web".into()),
            name: Some("PROD".into()),
            ..Filter::default()
        }));
        assert!(!f(Filter { project: Some("prod".into()), ..Filter::default() }));
        let tag = |t: &str| TagTest::parse(t).unwrap();
        assert!(f(Filter {
            tags: vec![tag("env=production"), tag("pulumi:project")],
            ..Filter::default()
        }));
        assert!(
            !f(Filter { tags: vec![tag("env=prod")], ..Filter::default() }),
            "values are exact"
        );
        assert!(!f(Filter { tags: vec![tag("team")], ..Filter::default() }));
        assert!(f(Filter {
            statuses: vec![Status::Failed, Status::Succeeded],
            ..Filter::default()
        }));
        assert!(!f(Filter { statuses: vec![Status::Failed], ..Filter::default() }));
    }

    #[test]
    fn statuses_come_from_the_stack_item() {
        let mut s = stack("p", "s", &[]);
        assert_eq!(Status::of(&s), Some(Status::Succeeded));
        s.last_result = Some("failed".into());
        assert_eq!(Status::of(&s), Some(Status::Failed));
        s.active_update = Some(crate::names::UpdateId::from_stored("u"));
        assert_eq!(Status::of(&s), Some(Status::InProgress));
        let mut fresh = stack("p", "s", &[]);
        (fresh.version, fresh.last_result) = (0, None);
        assert_eq!(Status::of(&fresh), Some(Status::Never));
        fresh.version = 4;
        assert_eq!(Status::of(&fresh), None, "older stacks are looked up");
        for status in Status::ALL {
            assert_eq!(Status::parse(status.name()).unwrap(), status);
        }
        assert!(Status::parse("ok").is_err());
    }

    proptest! {
        /// Any tag text parses into the name before the first `=` and the rest, or is a 400.
        #[test]
        fn any_tag_text_parses_or_is_a_400(text in "[a-z:=\\-ö ]{0,20}") {
            match TagTest::parse(&text) {
                Ok(t) => {
                    let back = match &t.value { Some(v) => format!("{}={v}", t.name), None => t.name.clone() };
                    prop_assert_eq!(back, text);
                    prop_assert!(!t.name.is_empty() && !t.name.contains('='));
                }
                Err(Error::BadRequest(_)) => prop_assert!(text.is_empty() || text.starts_with('=')),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
