//! Who may do what (docs/operations.md#authentication).
//!
//! Every path under `/trade/` falls under one access rule, chosen by method and path as the
//! reference's Oathkeeper rules choose it: `OPTIONS` and the public paths (`.docs`, and paths
//! ending in `.public`, `/public` or `-public`) need nothing; every other one needs an OAuth 2.0
//! bearer token with a scope (`access.readonly`, `access`, `activate` or `deactivate`),
//! granted hierarchically (`access` includes `access.readonly`). The token's subject must then
//! be a superuser's or a supervisor's: creditors and unknown subjects get 403.
//!
//! With `APP_TRUST_USER_ID_HEADER`, a trusted proxy has checked the token already and passes
//! the subject in `X-Swpt-User-Id` (no header: a superuser), as in the reference's deployment.

use actix_web::http::{Method, StatusCode};
use regex::Regex;

use super::error::ApiError;
use super::introspect::Introspector;
use crate::config::{ConfigError, WebConfig};

/// The header in which a trusted proxy passes the caller's subject.
pub const USER_ID_HEADER: &str = "X-Swpt-User-Id";

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Nothing (`OPTIONS`, the documentation, health checks).
    Public,
    /// A token with this scope, of an administrator.
    Scope(&'static str),
    /// No rule matches: refused (404).
    NoRule,
}

/// The rule of `method` on `path` (a path under `/trade/`).
pub fn rule(method: &Method, path: &str) -> Rule {
    let Some(rest) = path.strip_prefix("/trade/") else {
        return Rule::NoRule;
    };
    let ends_with = |words: &[&str]| {
        words.iter().any(|w| {
            rest.strip_suffix(w)
                .is_some_and(|before| before.ends_with(['.', '/', '-']))
        })
    };
    match *method {
        Method::OPTIONS => Rule::Public,
        Method::GET | Method::HEAD => {
            let docs = rest == ".docs" || rest.starts_with(".docs/");
            if docs || ends_with(&["public"]) {
                Rule::Public
            } else {
                Rule::Scope("access.readonly")
            }
        }
        Method::POST if ends_with(&["reserve", "activate"]) => Rule::Scope("activate"),
        Method::POST if ends_with(&["deactivate"]) => Rule::Scope("deactivate"),
        Method::POST if ends_with(&["lookup"]) => Rule::Scope("access.readonly"),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => {
            if ends_with(&["lookup", "reserve", "activate", "deactivate"]) {
                Rule::NoRule
            } else {
                Rule::Scope("access")
            }
        }
        _ => Rule::NoRule,
    }
}

/// Whether the space-separated `granted` scopes include `required`, hierarchically: `a`
/// grants `a` and `a.b` (and `a.b.c`…), `a.b` does not grant `a`.
pub fn has_scope(granted: &str, required: &str) -> bool {
    let needle: Vec<&str> = required.split('.').collect();
    granted.split_whitespace().any(|scope| {
        let parts: Vec<&str> = scope.split('.').collect();
        parts.len() <= needle.len() && parts.iter().zip(&needle).all(|(a, b)| a == b)
    })
}

/// The kind of caller a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserType {
    /// Allowed everything.
    Superuser,
    /// Allowed to view and to do non-critical tasks.
    Supervisor,
    /// A creditor, with its ID.
    Creditor(i64),
}

/// The subject patterns (`APP_*_SUBJECT_REGEX`).
#[derive(Debug, Clone)]
pub struct SubjectPatterns {
    superuser: Regex,
    supervisor: Regex,
    creditor: Regex,
}

impl SubjectPatterns {
    /// Compiles the patterns of `web`; an empty superuser or supervisor pattern is exactly
    /// the user name of `OAUTH2_SUPERUSER_USERNAME` or `OAUTH2_SUPERVISOR_USERNAME`.
    ///
    /// # Errors
    ///
    /// A pattern that is not a regular expression, naming its variable.
    pub fn new(web: &WebConfig) -> Result<Self, ConfigError> {
        let compile = |var: &str, pattern: &str, name: &str| {
            let pattern = if pattern.is_empty() {
                format!("^{}$", regex::escape(name))
            } else {
                pattern.to_owned()
            };
            Regex::new(&pattern).map_err(|e| {
                let reason = e.to_string().lines().last().unwrap_or_default().to_owned();
                ConfigError::new(var, &pattern, reason)
            })
        };
        Ok(Self {
            superuser: compile(
                "APP_SUPERUSER_SUBJECT_REGEX",
                &web.superuser_subject_regex,
                &web.oauth2_superuser_username,
            )?,
            supervisor: compile(
                "APP_SUPERVISOR_SUBJECT_REGEX",
                &web.supervisor_subject_regex,
                &web.oauth2_supervisor_username,
            )?,
            creditor: compile(
                "APP_CREDITOR_SUBJECT_REGEX",
                &web.creditor_subject_regex,
                "",
            )?,
        })
    }

    /// The type of `subject`: the first pattern that matches at its start (superuser, then
    /// supervisor, then creditor), or `None`.
    pub fn classify(&self, subject: &str) -> Option<UserType> {
        let at_start = |r: &Regex| r.find(subject).is_some_and(|m| m.start() == 0);
        if at_start(&self.superuser) {
            return Some(UserType::Superuser);
        }
        if at_start(&self.supervisor) {
            return Some(UserType::Supervisor);
        }
        let captures = self.creditor.captures(subject)?;
        if captures.get(0)?.start() != 0 {
            return None;
        }
        let id = captures
            .get(1)
            .and_then(|g| g.as_str().parse::<u64>().ok())
            .map_or(0, |n| n as i64);
        Some(UserType::Creditor(id))
    }
}

/// How callers prove who they are.
#[derive(Clone)]
pub enum Authenticator {
    /// Bearer tokens, introspected.
    Introspection(Introspector),
    /// A trusted proxy's `X-Swpt-User-Id` header.
    TrustedHeader,
}

/// The admin API's access control.
#[derive(Clone)]
pub struct Auth {
    /// How callers are authenticated.
    pub authenticator: Authenticator,
    /// The subject patterns.
    pub subjects: SubjectPatterns,
}

impl Auth {
    /// Checks that a request with `authorization` and `user_id` headers may do what `rule`
    /// asks; `Err` is the response.
    pub async fn check(
        &self,
        rule: Rule,
        authorization: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let scope = match rule {
            Rule::Public => return Ok(()),
            Rule::NoRule => return Err(ApiError::not_found()),
            Rule::Scope(scope) => scope,
        };
        let subject = match &self.authenticator {
            Authenticator::TrustedHeader => match user_id {
                None => return Ok(()),
                Some(subject) => subject.to_owned(),
            },
            Authenticator::Introspection(introspector) => {
                let token = authorization.and_then(bearer_token).ok_or_else(|| {
                    ApiError::with_message(StatusCode::UNAUTHORIZED, "No bearer token.")
                })?;
                let found = introspector.introspect(token).await.map_err(|e| {
                    tracing::error!("{e}");
                    ApiError::with_message(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The token could not be checked.",
                    )
                })?;
                if !found.active {
                    return Err(ApiError::with_message(
                        StatusCode::UNAUTHORIZED,
                        "The token is not active.",
                    ));
                }
                if !has_scope(&found.scope, scope) {
                    return Err(ApiError::with_message(
                        StatusCode::FORBIDDEN,
                        format!("The token lacks the scope {scope}."),
                    ));
                }
                found.subject.clone()
            }
        };
        match self.subjects.classify(&subject) {
            Some(UserType::Superuser | UserType::Supervisor) => Ok(()),
            Some(UserType::Creditor(_)) | None => Err(ApiError::new(StatusCode::FORBIDDEN)),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_the_references() {
        let r = |m: Method, p: &str| rule(&m, p);
        assert_eq!(
            r(Method::OPTIONS, "/trade/collectors/1/activate"),
            Rule::Public
        );
        assert_eq!(r(Method::GET, "/trade/health/check/public"), Rule::Public);
        assert_eq!(r(Method::HEAD, "/trade/.docs"), Rule::Public);
        assert_eq!(r(Method::GET, "/trade/.docs/openapi.json"), Rule::Public);
        assert_eq!(
            r(Method::GET, "/trade/.docsx"),
            Rule::Scope("access.readonly")
        );
        assert_eq!(
            r(Method::GET, "/trade/turns"),
            Rule::Scope("access.readonly")
        );
        assert_eq!(r(Method::GET, "/trade/x-public"), Rule::Public);
        assert_eq!(
            r(Method::GET, "/trade/public"),
            Rule::Scope("access.readonly")
        );
        assert_eq!(
            r(Method::POST, "/trade/collectors/1/activate"),
            Rule::Scope("activate")
        );
        assert_eq!(r(Method::POST, "/trade/a.reserve"), Rule::Scope("activate"));
        assert_eq!(
            r(Method::POST, "/trade/a/deactivate"),
            Rule::Scope("deactivate")
        );
        assert_eq!(
            r(Method::POST, "/trade/a-lookup"),
            Rule::Scope("access.readonly")
        );
        assert_eq!(r(Method::POST, "/trade/activate"), Rule::Scope("access"));
        assert_eq!(
            r(Method::POST, "/trade/collectors/1"),
            Rule::Scope("access")
        );
        assert_eq!(
            r(Method::DELETE, "/trade/collectors/1"),
            Rule::Scope("access")
        );
        assert_eq!(r(Method::PUT, "/trade/collectors/1/activate"), Rule::NoRule);
        assert_eq!(r(Method::TRACE, "/trade/collectors/1"), Rule::NoRule);
        assert_eq!(r(Method::GET, "/metrics"), Rule::NoRule);
    }

    #[test]
    fn scopes_are_hierarchic() {
        assert!(has_scope("access", "access.readonly"));
        assert!(has_scope("openid access.readonly", "access.readonly"));
        assert!(!has_scope("access.readonly", "access"));
        assert!(!has_scope("accessx", "access.readonly"));
        assert!(!has_scope("", "access"));
        assert!(has_scope("activate", "activate"));
        assert!(!has_scope("access", "activate"));
    }

    #[test]
    fn subjects_are_matched_at_their_start_in_order() {
        let web = crate::config::Config::from_lookup(&|_| None).unwrap().web;
        let p = SubjectPatterns::new(&web).unwrap();
        assert_eq!(p.classify("creditors-superuser"), Some(UserType::Superuser));
        assert_eq!(
            p.classify("creditors-supervisor"),
            Some(UserType::Supervisor)
        );
        assert_eq!(p.classify("creditors:42"), Some(UserType::Creditor(42)));
        assert_eq!(
            p.classify("creditors:18446744073709551615"),
            Some(UserType::Creditor(-1))
        );
        assert_eq!(p.classify("creditors-superuserx"), None);
        assert_eq!(p.classify("xcreditors:1"), None);
        let mut custom = web.clone();
        custom.superuser_subject_regex = "admin".into();
        let p = SubjectPatterns::new(&custom).unwrap();
        // Anchored at the start only, as Python's re.match.
        assert_eq!(p.classify("admin-1"), Some(UserType::Superuser));
        assert_eq!(p.classify("an admin"), None);
        custom.creditor_subject_regex = "([".into();
        let e = SubjectPatterns::new(&custom).unwrap_err();
        assert_eq!(e.var, "APP_CREDITOR_SUBJECT_REGEX");
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
