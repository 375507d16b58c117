//! The part of an HTTP request that a decision looks at.

use std::net::IpAddr;

use http::{HeaderMap, Method, Uri};

use crate::ClientIp;

/// The head of an HTTP request: method, URI, headers and the client's
/// address, borrowed.
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
    /// The client's address for `client_ip` leaves; `None` by default.
    /// Requests and their parts read a [`ClientIp`] from their extensions.
    fn client_ip(&self) -> Option<IpAddr> {
        None
    }
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
    #[inline]
    fn client_ip(&self) -> Option<IpAddr> {
        self.extensions().get::<ClientIp>().map(|c| c.0)
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
    #[inline]
    fn client_ip(&self) -> Option<IpAddr> {
        self.extensions.get::<ClientIp>().map(|c| c.0)
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
    #[inline]
    fn client_ip(&self) -> Option<IpAddr> {
        (**self).client_ip()
    }
}
