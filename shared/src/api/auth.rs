//! Authentication of the `Authorization` header against stored token hashes.

use std::collections::HashMap;

use http::{header, HeaderMap};

use super::Auth;
use crate::app::App;
use crate::error::{Error, Result};
use crate::service::identity::{self, Caller};

/// Authenticates a request for a route's [`Auth`] mode.
pub async fn authenticate(
    app: &App,
    mode: Auth,
    headers: &HeaderMap,
    _params: &HashMap<String, String>,
) -> Result<Caller> {
    match mode {
        Auth::Public => Ok(Caller::Anonymous),
        Auth::User => {
            let token = credential(headers, "token")?;
            identity::authenticate_token(app.ports.meta.as_ref(), token, app.clock.now()).await
        }
        Auth::Lease => {
            Err(Error::Unauthorized("update tokens are not accepted on this server yet".into()))
        }
    }
}

/// Extracts `<scheme> <credential>` from the Authorization header.
fn credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Result<&'a str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("no access token provided; run `pulumi login`".into()))?
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    let (given_scheme, cred) = value.trim().split_once(' ').unwrap_or((value, ""));
    let cred = cred.trim();
    if !given_scheme.eq_ignore_ascii_case(scheme) || cred.is_empty() {
        return Err(Error::Unauthorized(format!(
            "expected `Authorization: {scheme} <credential>`"
        )));
    }
    Ok(cred)
}
