//! Finding the client's address for `client_ip` rules: the connection's
//! peer address from the request's extensions, or a forwarding header with
//! trusted proxy hops (see [`ClientIpSource`] and the trust model in
//! [`graymatch::client_ip`]).
//!
//! [`Gray`](crate::Gray) looks the address up only when the rule set has a
//! `client_ip` leaf, and inserts a [`ClientIp`] into the request's
//! extensions for the matcher and the handler. A [`ClientIp`] already in the
//! extensions (put there by an earlier layer that knows better) is kept.
//!
//! The peer address is read from the extensions that servers put there:
//! axum's `ConnectInfo<SocketAddr>` (serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`; feature `axum`),
//! tonic's `TcpConnectInfo` (feature `tonic`), or a plain
//! `std::net::SocketAddr` (insert it yourself in a hyper `service_fn`).

use std::net::{IpAddr, SocketAddr};

use graymatch::{ClientIp, ClientIpSource};
use http::Request;

/// The connection's peer address, from whichever extension the server put
/// it in.
///
/// ```
/// let mut req = http::Request::new(());
/// assert_eq!(graymatch_tower::client_ip::peer_ip(&req), None);
/// req.extensions_mut().insert(std::net::SocketAddr::from(([10, 0, 0, 1], 4000)));
/// assert_eq!(graymatch_tower::client_ip::peer_ip(&req), Some([10, 0, 0, 1].into()));
/// ```
pub fn peer_ip<B>(req: &Request<B>) -> Option<IpAddr> {
    let ext = req.extensions();
    #[cfg(feature = "axum")]
    if let Some(info) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = ext
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
    {
        return Some(addr.ip());
    }
    ext.get::<SocketAddr>().map(SocketAddr::ip)
}

/// Inserts the [`ClientIp`] that `source` finds, unless one is there.
pub(crate) fn fill<B>(req: &mut Request<B>, source: &ClientIpSource) {
    if req.extensions().get::<ClientIp>().is_some() {
        return;
    }
    if let Some(ip) = source.client_ip(req.headers(), peer_ip(req)) {
        req.extensions_mut().insert(ClientIp(ip));
    }
}
