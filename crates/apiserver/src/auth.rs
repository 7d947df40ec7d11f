//! Who is calling and what they may do: the authenticated [`User`], the [`Authorizer`]
//! extension point (RBAC and the binary's own rules plug in here), and the shape of bootstrap
//! tokens.

use apimachinery::ApiError;

use crate::request::Target;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

/// Decides whether `user` may perform a request. The default allows every authenticated user.
pub trait Authorizer: Send + Sync {
    fn authorize(
        &self,
        user: &User,
        verb: &str,
        target: Option<&Target>,
        path: &str,
    ) -> Result<(), ApiError>;
}

pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &User, _: &str, _: Option<&Target>, _: &str) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Whether a bearer token has the shape of a bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub fn bootstrap_token_parts(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}
