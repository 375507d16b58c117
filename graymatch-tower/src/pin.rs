//! Pinning a browser to its variant with a cookie.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use graymatch::scan;
use http::{HeaderMap, HeaderValue};

/// A `Set-Cookie` that records the variant a browser was given, so the next
/// request can be kept on it.
///
/// [`GrayLayer::pin`](crate::GrayLayer::pin) writes `NAME=VARIANT` on the
/// response whenever the request did not already carry that cookie with
/// that value. Rules read it back; put them first, so a pinned browser keeps
/// its variant even when percents change:
///
/// ```yaml
/// rules:
///   - { name: pinned-gray, to: gray, when: { cookie: { name: gray-pin, equals: gray } } }
///   - { name: pinned-stable, to: stable, when: { cookie: { name: gray-pin, equals: stable } } }
///   - { name: canary-5, to: gray, percent: 5 }
/// ```
///
/// The cookie is the client's to send: at an `incoming: ignore` edge, a
/// client can pick its variant by setting it. Pin only variants a client may
/// choose.
///
/// ```
/// use graymatch_tower::PinCookie;
/// use std::time::Duration;
///
/// let pin = PinCookie::new("gray-pin").max_age(Duration::from_secs(3600)).secure(true);
/// let v = pin.set_cookie(&http::HeaderMap::new(), "gray").unwrap();
/// assert_eq!(v, "gray-pin=gray; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=3600");
/// ```
#[derive(Clone, Debug)]
pub struct PinCookie {
    name: String,
    max_age: Duration,
    path: String,
    http_only: bool,
    secure: bool,
    same_site: SameSite,
}

impl PinCookie {
    /// A pin cookie named `name`: `Path=/`, a day's `Max-Age`, `HttpOnly`,
    /// `SameSite=Lax`.
    pub fn new(name: impl Into<String>) -> Self {
        PinCookie {
            name: name.into(),
            max_age: Duration::from_secs(24 * 3600),
            path: "/".to_owned(),
            http_only: true,
            secure: false,
            same_site: SameSite::Lax,
        }
    }

    /// Sets `Max-Age`.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets `Path`.
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets or clears `HttpOnly` (set by default).
    #[must_use]
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets or clears `Secure` (clear by default).
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `SameSite` (`Lax` by default).
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The `Set-Cookie` value for `variant`, or `None` when the request
    /// already carries the cookie with that value.
    pub fn set_cookie(&self, request: &HeaderMap, variant: &str) -> Option<HeaderValue> {
        if scan::cookies(request, &self.name).next() == Some(variant.as_bytes()) {
            return None;
        }
        let max_age = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        let cookie = Cookie::build((self.name.as_str(), variant))
            .path(self.path.as_str())
            .max_age(cookie::time::Duration::seconds(max_age))
            .http_only(self.http_only)
            .secure(self.secure)
            .same_site(self.same_site)
            .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
    }
}
