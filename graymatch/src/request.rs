//! The part of an HTTP request that a decision looks at.

use http::{HeaderMap, Method, Uri};

/// The head of an HTTP request: method, URI and headers, borrowed.
///
/// [`Matcher::decide`](crate::Matcher::decide) takes anything that implements
/// it: an [`http::Request<B>`] with any body, its [`http::request::Parts`], or
/// a reference to either.
///
/// ```
/// let req = http::Request::get("/cart?beta=1").body(()).unwrap();
/// let (parts, ()) = req.into_parts();
/// let m = graymatch::RuleSet::new("stable").compile().unwrap();
/// assert_eq!(m.decide(&parts).variant(), "stable");
/// ```
pub trait RequestHead {
    /// The method.
    fn method(&self) -> &Method;
    /// The URI (path and query are what rules read).
    fn uri(&self) -> &Uri;
    /// The headers.
    fn headers(&self) -> &HeaderMap;
}

impl<B> RequestHead for http::Request<B> {
    #[inline]
    fn method(&self) -> &Method {
        self.method()
    }
    #[inline]
    fn uri(&self) -> &Uri {
        self.uri()
    }
    #[inline]
    fn headers(&self) -> &HeaderMap {
        self.headers()
    }
}

impl RequestHead for http::request::Parts {
    #[inline]
    fn method(&self) -> &Method {
        &self.method
    }
    #[inline]
    fn uri(&self) -> &Uri {
        &self.uri
    }
    #[inline]
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl<T: RequestHead + ?Sized> RequestHead for &T {
    #[inline]
    fn method(&self) -> &Method {
        (**self).method()
    }
    #[inline]
    fn uri(&self) -> &Uri {
        (**self).uri()
    }
    #[inline]
    fn headers(&self) -> &HeaderMap {
        (**self).headers()
    }
}
