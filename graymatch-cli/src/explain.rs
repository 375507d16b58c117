//! `graymatch explain`: decide one request built from the command line.

use std::path::Path;
use std::process::ExitCode;

use http::{HeaderName, HeaderValue, Method, Request};

use crate::load::{self, Error, Format};

/// The request `explain` decides, as given on the command line.
pub(crate) struct Given<'a> {
    pub(crate) method: &'a str,
    pub(crate) uri: &'a str,
    pub(crate) headers: &'a [String],
    pub(crate) cookies: &'a [String],
    pub(crate) client_ip: Option<&'a str>,
}

pub(crate) fn run(
    file: &Path,
    format: Option<Format>,
    given: &Given<'_>,
    at: Option<&str>,
) -> Result<ExitCode, Error> {
    let at = crate::load::time(at)?;
    let mut request = request(given.method, given.uri, given.headers, given.cookies)?;
    if let Some(ip) = given.client_ip {
        let ip = ip
            .parse()
            .map_err(|_| Error(format!("invalid --client-ip {ip:?}: not an IP address")))?;
        request.extensions_mut().insert(graymatch::ClientIp(ip));
    }
    let m = match load::rules(file, format)?.and_then(|(set, _)| set.compile_at(at)) {
        Ok(m) => m,
        Err(e) => {
            println!("{}: invalid: {e}", load::display(file));
            return Ok(ExitCode::from(1));
        }
    };
    println!("{}", m.explain(&request));
    Ok(ExitCode::SUCCESS)
}

fn request(
    method: &str,
    uri: &str,
    headers: &[String],
    cookies: &[String],
) -> Result<Request<()>, Error> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| Error(format!("invalid method {method:?}")))?;
    let uri: http::Uri = uri
        .parse()
        .map_err(|e| Error(format!("invalid --uri {uri:?}: {e}")))?;
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| Error(format!("invalid -H {h:?}: write it as 'name: value'")))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            Error(format!(
                "invalid -H {h:?}: bad header name {:?}",
                name.trim()
            ))
        })?;
        let value = HeaderValue::from_str(value.trim_start())
            .map_err(|_| Error(format!("invalid -H {h:?}: bad header value")))?;
        req.headers_mut().append(name, value);
    }
    if !cookies.is_empty() {
        for c in cookies {
            if !c.contains('=') {
                return Err(Error(format!(
                    "invalid --cookie {c:?}: write it as 'name=value'"
                )));
            }
        }
        let value = HeaderValue::from_str(&cookies.join("; "))
            .map_err(|_| Error("invalid --cookie: bad characters".to_owned()))?;
        req.headers_mut().append(http::header::COOKIE, value);
    }
    Ok(req)
}
