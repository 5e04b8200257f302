//! The route table: the single source of truth for every API route (DESIGN.md §4 rule 1).
//! Lambda binaries, the emulator's router, the SAM template and the docs all come from it.
//!
//! Each route is its own `static` so that a function binary referring to one route links only
//! that route's handler.

use http::Method;

use super::handlers::{identity, stacks};
use super::{Auth, Needs, Route};
use crate::handler;

/// `GET /api/user`.
pub static USER_GET: Route = Route {
    name: "user-get",
    method: Method::GET,
    path: "/api/user",
    auth: Auth::User,
    needs: Needs::META_READ,
    handler: handler!(identity::get_user),
};

/// `GET /api/user/organizations/default`.
pub static USER_DEFAULT_ORG: Route = Route {
    name: "user-default-org",
    method: Method::GET,
    path: "/api/user/organizations/default",
    auth: Auth::User,
    needs: Needs::META_READ,
    handler: handler!(identity::default_org),
};

/// `GET /api/capabilities`.
pub static CAPABILITIES_GET: Route = Route {
    name: "capabilities-get",
    method: Method::GET,
    path: "/api/capabilities",
    auth: Auth::User,
    needs: Needs::META_READ,
    handler: handler!(identity::capabilities),
};

/// `GET /api/user/stacks`.
pub static USER_STACKS_LIST: Route = Route {
    name: "user-stacks-list",
    method: Method::GET,
    path: "/api/user/stacks",
    auth: Auth::User,
    needs: Needs::META_READ,
    handler: handler!(stacks::list),
};

/// `HEAD /api/stacks/{org}/{project}`.
pub static PROJECT_HEAD: Route = Route {
    name: "project-head",
    method: Method::HEAD,
    path: "/api/stacks/{org}/{project}",
    auth: Auth::User,
    needs: Needs::META_READ,
    handler: handler!(stacks::project_exists),
};

/// `POST /api/stacks/{org}/{project}`.
pub static STACK_CREATE: Route = Route {
    name: "stack-create",
    method: Method::POST,
    path: "/api/stacks/{org}/{project}",
    auth: Auth::User,
    needs: Needs::META_WRITE,
    handler: handler!(stacks::create),
};

/// `GET /api/stacks/{org}/{project}/{stack}`.
pub static STACK_GET: Route = Route {
    name: "stack-get",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}",
    auth: Auth::User,
    needs: Needs::META_READ,
    handler: handler!(stacks::get),
};

/// `DELETE /api/stacks/{org}/{project}/{stack}`.
pub static STACK_DELETE: Route = Route {
    name: "stack-delete",
    method: Method::DELETE,
    path: "/api/stacks/{org}/{project}/{stack}",
    auth: Auth::User,
    needs: Needs::META_BLOB_WRITE,
    handler: handler!(stacks::delete),
};

/// `PATCH /api/stacks/{org}/{project}/{stack}/tags`.
pub static STACK_TAGS_UPDATE: Route = Route {
    name: "stack-tags-update",
    method: Method::PATCH,
    path: "/api/stacks/{org}/{project}/{stack}/tags",
    auth: Auth::User,
    needs: Needs::META_WRITE,
    handler: handler!(stacks::update_tags),
};

/// `GET /api/stacks/{org}/{project}/{stack}/export`.
pub static STACK_EXPORT: Route = Route {
    name: "stack-export",
    method: Method::GET,
    path: "/api/stacks/{org}/{project}/{stack}/export",
    auth: Auth::User,
    needs: Needs::META_BLOB_READ,
    handler: handler!(stacks::export),
};

/// Every route, in the order documentation lists them.
pub static ROUTES: &[&Route] = &[
    &USER_GET,
    &USER_DEFAULT_ORG,
    &CAPABILITIES_GET,
    &USER_STACKS_LIST,
    &PROJECT_HEAD,
    &STACK_CREATE,
    &STACK_GET,
    &STACK_DELETE,
    &STACK_TAGS_UPDATE,
    &STACK_EXPORT,
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::api::Router;

    #[test]
    fn the_table_builds_a_router_and_names_are_unique() {
        assert!(Router::new(ROUTES).is_ok());
        let names: HashSet<_> = ROUTES.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), ROUTES.len());
    }

    #[test]
    fn every_route_has_a_function_binary() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/src/bin");
        for route in ROUTES {
            let file = dir.join(format!("{}.rs", route.name));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("missing function binary {}", file.display()));
            let static_name = route.name.to_uppercase().replace('-', "_");
            assert!(
                text.contains(&format!("routes::{static_name}")),
                "{} serves another route",
                file.display()
            );
        }
        let bins = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            bins,
            ROUTES.len(),
            "functions/src/bin has binaries for routes not in the table"
        );
    }
}
