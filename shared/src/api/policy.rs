//! What dispatch decides from a route's declaration, so the services below get plain values:
//! which calls the audit log records, and which organization's rate limit a call spends.

use super::{Permission, Route};

/// Routes whose successful calls are recorded even though they change nothing: they reveal
/// secrets.
pub const DECRYPTION_ROUTES: &[&str] = &[
    "stack-decrypt",
    "stack-batch-decrypt",
    "env-decrypt",
    "env-version-decrypt",
    "env-open-read",
    "env-yaml-open-read",
];

/// Whether dispatch records a call an access-token caller made: any call refused by
/// authorization (403/404), any decryption, and any call with a method that may change
/// something. Rate-limited calls (429) are not: recording each would make a flood cost a write
/// per refused request, the very load the limit sheds.
pub fn should_audit(route: &Route, status: u16, denied: bool) -> bool {
    if status == 429 {
        return false;
    }
    if denied {
        return status == 403 || status == 404;
    }
    DECRYPTION_ROUTES.contains(&route.name)
        || !(route.method == http::Method::GET || route.method == http::Method::HEAD)
}

/// Whether a call changed something: a successful call of a route that writes the metadata
/// store (not a read, not a decryption). Each becomes an event of the event stream.
pub fn is_change(route: &Route, status: u16) -> bool {
    (200..300).contains(&status)
        && !(route.method == http::Method::GET || route.method == http::Method::HEAD)
        && route.needs.meta == crate::ports::Access::Write
}

/// The organization whose rate limit a call spends when its permission came from the `{org}`
/// in the path (`None`: the token's own organization pays, if it has one).
pub fn charged_org<'a>(route: &Route, path_org: Option<&'a str>) -> Option<&'a str> {
    match route.permission() {
        Permission::OrgMember
        | Permission::OrgAdmin
        | Permission::Stack(_)
        | Permission::Environment(_) => path_org,
        Permission::Public | Permission::Token | Permission::Lease | Permission::Runner => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes;

    #[test]
    fn what_is_audited() {
        assert!(should_audit(&routes::STACK_CREATE, 200, false));
        assert!(should_audit(&routes::STACK_DECRYPT, 200, false));
        assert!(!should_audit(&routes::STACK_GET, 200, false));
        assert!(should_audit(&routes::STACK_GET, 404, true));
        assert!(!should_audit(&routes::STACK_CREATE, 429, false));
        assert!(!should_audit(&routes::STACK_GET, 503, true));
    }

    #[test]
    fn only_path_permissions_charge_the_path_organization() {
        assert_eq!(charged_org(&routes::STACK_GET, Some("acme")), Some("acme"));
        assert_eq!(charged_org(&routes::USER_GET, Some("acme")), None);
    }
}
