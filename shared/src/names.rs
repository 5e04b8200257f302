//! Validated names at the edge: organizations, projects, stacks and stack tags, with the rules
//! the Pulumi service enforces (and the messages the CLI's own validation uses).

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;

fn valid_chars(s: &str, extra: &[char]) -> bool {
    s.chars().all(|c| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || extra.contains(&c)
    })
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $chars_msg:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks the name: 1 to
            #[doc = stringify!($max)]
            /// characters from `[A-Za-z0-9-_.]`.
            pub fn parse(s: &str) -> Result<Self, Error> {
                if s.is_empty() {
                    return Err(Error::BadRequest(format!("{} name must not be empty", $what)));
                }
                if s.len() > $max {
                    return Err(Error::BadRequest(format!(
                        "{} name too long (max length {} characters)", $what, $max
                    )));
                }
                if !valid_chars(s, &[]) {
                    return Err(Error::BadRequest($chars_msg.to_string()));
                }
                // `.` and `..` are path segments, not names (URLs, S3 keys, files).
                if s.chars().all(|c| c == '.') {
                    return Err(Error::BadRequest(format!(
                        "{} name must not consist of periods only", $what
                    )));
                }
                Ok($name(s.to_string()))
            }
            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Ids of stored objects: random (128 bits, hex) when we make them, checked when they arrive
/// in a path or a token, and distinct types so a stack id cannot be passed as an update id.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id.
            pub fn generate() -> Self {
                $name(hex::encode(rand::random::<[u8; 16]>()))
            }
            /// Checks an id that came with a request: 1 to 64 characters from
            /// `[A-Za-z0-9-_]`. Anything else names nothing we store, so it is a 404.
            pub fn parse(s: &str) -> Result<Self, Error> {
                let ok = !s.is_empty()
                    && s.len() <= 64
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                match ok {
                    true => Ok($name(s.to_string())),
                    false => Err(Error::NotFound(format!("{} '{}' not found", $what, s))),
                }
            }
            /// An id read back from our own storage, where only ids we made are written.
            pub fn from_stored(s: impl Into<String>) -> Self {
                $name(s.into())
            }
            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// The immutable id of a stack (it survives renames; every item of the stack hangs off it).
    StackId, "stack"
);
id_type!(
    /// The id of an update (and of the preview, refresh or destroy it may be).
    UpdateId, "update"
);

name_type!(
    /// An organization (or user) name.
    OrgName, "organization", 100,
    "organization names may only contain alphanumerics, hyphens, underscores, or periods"
);
name_type!(
    /// A project name (the CLI already replaces other characters with `-`).
    ProjectName, "project", 100,
    "project names may only contain alphanumerics, hyphens, underscores, or periods"
);
name_type!(
    /// A stack name within a project.
    StackName, "stack", 100,
    "stack names may only contain alphanumerics, hyphens, underscores, or periods"
);
name_type!(
    /// A user name (login).
    UserName, "user", 100,
    "user names may only contain alphanumerics, hyphens, underscores, or periods"
);
name_type!(
    /// A team name within an organization.
    TeamName, "team", 100,
    "team names may only contain alphanumerics, hyphens, underscores, or periods"
);

/// A fully qualified stack: `org/project/stack`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StackRef {
    /// The owning organization.
    pub org: OrgName,
    /// The project.
    pub project: ProjectName,
    /// The stack.
    pub stack: StackName,
}

impl fmt::Display for StackRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.org, self.project, self.stack)
    }
}

/// Longest stack tag name.
pub const MAX_TAG_NAME: usize = 40;
/// Longest stack tag value.
pub const MAX_TAG_VALUE: usize = 256;

/// Most tags on one stack: the CLI sets about ten of its own (`pulumi:*`, `vcs:*`, `gitHub:*`)
/// on every update; the rest are the user's.
pub const MAX_TAGS: usize = 200;

/// Validates stack tags with the service's rules: names of 1..=40 characters from
/// `[A-Za-z0-9-_.:]`, values of at most 256 bytes, at most [`MAX_TAGS`] tags.
pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), Error> {
    if tags.len() > MAX_TAGS {
        return Err(Error::BadRequest(format!(
            "a stack has at most {MAX_TAGS} tags, this request sets {}",
            tags.len()
        )));
    }
    for (name, value) in tags {
        if name.is_empty() {
            return Err(Error::BadRequest(format!("invalid stack tag {name:?}")));
        }
        if name.len() > MAX_TAG_NAME {
            return Err(Error::BadRequest(format!(
                "stack tag {name:?} is too long (max length {MAX_TAG_NAME} characters)"
            )));
        }
        if !valid_chars(name, &[':']) {
            return Err(Error::BadRequest(
                "stack tag names may only contain alphanumerics, hyphens, underscores, periods, or colons"
                    .into(),
            ));
        }
        if value.len() > MAX_TAG_VALUE {
            return Err(Error::BadRequest(format!(
                "stack tag {name:?} value is too long (max length {MAX_TAG_VALUE} characters)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_follow_service_rules() {
        assert!(StackName::parse("dev").is_ok());
        assert!(StackName::parse("my_stack-1.prod").is_ok());
        assert!(StackName::parse(&"a".repeat(100)).is_ok());
        for bad in ["", "a/b", "with space", "ünï", "a:b", ".", "..", "..."] {
            assert!(matches!(StackName::parse(bad), Err(Error::BadRequest(_))), "{bad:?}");
            assert!(OrgName::parse(bad).is_err() && ProjectName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(StackName::parse(".hidden").is_ok() && StackName::parse("a..b").is_ok());
        let long = StackName::parse(&"a".repeat(101)).unwrap_err().to_string();
        assert_eq!(long, "stack name too long (max length 100 characters)");
    }

    #[test]
    fn tags_follow_service_rules() {
        let ok: BTreeMap<_, _> =
            [("pulumi:project".to_string(), "x".to_string()), ("a.b-c_d".into(), "".into())].into();
        assert!(validate_tags(&ok).is_ok());
        for bad in ["tag!", "something with spaces", "😄", "foo***bar"] {
            let tags: BTreeMap<_, _> = [(bad.to_string(), "v".to_string())].into();
            assert_eq!(
                validate_tags(&tags).unwrap_err().to_string(),
                "stack tag names may only contain alphanumerics, hyphens, underscores, periods, or colons"
            );
        }
        let long: BTreeMap<_, _> = [("v".repeat(41), "x".to_string())].into();
        assert!(validate_tags(&long).unwrap_err().to_string().contains("max length 40"));
        let long_value: BTreeMap<_, _> = [("n".to_string(), "v".repeat(257))].into();
        assert!(validate_tags(&long_value).unwrap_err().to_string().contains("max length 256"));
        let many: BTreeMap<_, _> =
            (0..=MAX_TAGS).map(|i| (format!("t{i}"), String::new())).collect();
        assert!(validate_tags(&many).unwrap_err().to_string().contains("at most 200 tags"));
    }
}
