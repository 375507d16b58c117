//! [`HttpSource`]: a URL polled with `If-None-Match`, so an unchanged rule
//! set costs a `304 Not Modified` and no parsing.
//!
//! Each instance polls every [`interval`](HttpSource::interval) plus a random
//! [`jitter`](HttpSource::jitter) of its own (so a fleet does not poll in
//! step), with a [`timeout`](HttpSource::timeout) per request. A failed poll
//! (connection error, timeout, an answer other than 2xx or 304, a body over
//! the size limit) is a source error: the rules in force keep serving and
//! the next poll waits with exponential [`backoff`](HttpSource::backoff)
//! (and jitter), back to the interval after a success. A `200` with a text
//! is offered to the [`Feed`]; its `ETag` is remembered (even when the text
//! is refused, so a bad text is not fetched and logged again) and sent as
//! `If-None-Match` next time.
//!
//! The revision is the `ETag` (`etag "5f1c"`), else `Last-Modified`.
//!
//! This crate enables no TLS feature of reqwest: for `https://` URLs pass a
//! [`client`](HttpSource::client) built from your own reqwest dependency
//! with the TLS feature you use (`rustls` or `native-tls`).
//!
//! ```no_run
//! # async fn run() -> Result<(), graymatch_source::Error> {
//! use std::time::Duration;
//! use graymatch_source::{Watcher, http::HttpSource};
//!
//! let source = HttpSource::new("http://config.internal/graymatch/checkout.yaml")?
//!     .interval(Duration::from_secs(15))
//!     .header("authorization", "Bearer s3cr3t")?;
//! let watcher = Watcher::builder(source).default_text("default: stable\n", None).start().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ETAG, HeaderMap, HeaderName, HeaderValue, IF_NONE_MATCH, LAST_MODIFIED};

use crate::backoff::{Backoff, jitter};
use crate::error::{Error, chain};
use crate::feed::{Feed, Revision};
use crate::text::Format;
use crate::watcher::Source;

/// The largest body read by default: 4 MiB.
const MAX_BYTES: usize = 4 << 20;

/// A URL polled with `ETag`s. See the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// let source = graymatch_source::http::HttpSource::new("http://127.0.0.1:8080/rules.yaml")?
///     .interval(Duration::from_secs(10))
///     .jitter(Duration::from_secs(2))
///     .timeout(Duration::from_secs(3))
///     .backoff(Duration::from_millis(500), Duration::from_secs(60));
/// assert!(graymatch_source::http::HttpSource::new("not a url").is_err());
/// # Ok::<(), graymatch_source::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct HttpSource {
    url: reqwest::Url,
    interval: Duration,
    jitter: Duration,
    timeout: Duration,
    backoff: (Duration, Duration),
    headers: HeaderMap,
    client: Option<reqwest::Client>,
    max_bytes: usize,
}

impl HttpSource {
    /// Polls `url` every 15 s (jitter up to 1.5 s, timeout 10 s, backoff from
    /// 1 s to 2 min).
    ///
    /// # Errors
    ///
    /// A URL that does not parse, or is not `http` or `https`.
    pub fn new(url: &str) -> Result<Self, Error> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Error::config(format!("invalid URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "{url}: only http and https URLs can be polled"
            )));
        }
        Ok(HttpSource {
            url: parsed,
            interval: Duration::from_secs(15),
            jitter: Duration::from_millis(1500),
            timeout: Duration::from_secs(10),
            backoff: (Duration::from_secs(1), Duration::from_secs(120)),
            headers: HeaderMap::new(),
            client: None,
            max_bytes: MAX_BYTES,
        })
    }

    /// The time between polls (plus jitter).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The largest random delay added to each interval, drawn anew each time
    /// by each instance.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The time limit of one request, body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The wait after a failed poll: `initial`, doubling up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = (initial, max);
        self
    }

    /// The largest body accepted (default 4 MiB); a larger one is a source
    /// error.
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// A header sent with every poll (an `authorization` token).
    ///
    /// # Errors
    ///
    /// A name or value that is not a valid header.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, Error> {
        let n = HeaderName::try_from(name)
            .map_err(|e| Error::config(format!("invalid header name {name:?}: {e}")))?;
        let v = HeaderValue::try_from(value)
            .map_err(|e| Error::config(format!("invalid value for header {name}: {e}")))?;
        self.headers.append(n, v);
        Ok(self)
    }

    /// The reqwest client to poll with (for TLS, proxies, your own
    /// timeouts); by default one without TLS and a 2 s connect timeout.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// One poll: `Ok` when the server answered 2xx or 304.
    async fn poll(
        &self,
        client: &reqwest::Client,
        feed: &Feed,
        etag: &mut Option<HeaderValue>,
    ) -> Result<(), Error> {
        let place = self.url.as_str();
        let mut req = client
            .get(self.url.clone())
            .timeout(self.timeout)
            .headers(self.headers.clone());
        if let Some(tag) = etag.as_ref() {
            req = req.header(IF_NONE_MATCH, tag.clone());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| Error::remote(place, chain(&e)))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            feed.source_ok();
            return Ok(());
        }
        if !status.is_success() {
            return Err(Error::remote(place, format!("answered {status}")));
        }
        let headers = resp.headers();
        let new_etag = headers.get(ETAG).cloned();
        let revision = match (&new_etag, headers.get(LAST_MODIFIED)) {
            (Some(t), _) => {
                Revision::new(format!("etag {}", String::from_utf8_lossy(t.as_bytes())))
            }
            (None, Some(m)) => Revision::new(format!(
                "last-modified {}",
                String::from_utf8_lossy(m.as_bytes())
            )),
            (None, None) => Revision::none(),
        };
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::remote(place, chain(&e)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(Error::remote(
                    place,
                    format!("the body is larger than {} bytes", self.max_bytes),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        feed.source_ok();
        feed.offer(&body, revision);
        *etag = new_etag;
        Ok(())
    }
}

impl Source for HttpSource {
    fn label(&self) -> &'static str {
        "http"
    }

    fn location(&self) -> String {
        self.url.to_string()
    }

    fn format(&self) -> Option<Format> {
        Format::from_path(std::path::Path::new(self.url.path()))
    }

    async fn run(self, feed: Feed) {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => match reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()
            {
                Ok(c) => c,
                Err(e) => {
                    feed.source_error(format!("cannot build an HTTP client: {}", chain(&e)));
                    return;
                }
            },
        };
        let mut etag = None;
        let mut rng = fastrand::Rng::new();
        let mut backoff = Backoff::new(self.backoff.0, self.backoff.1);
        loop {
            let wait = match self.poll(&client, &feed, &mut etag).await {
                Ok(()) => {
                    backoff.reset();
                    self.interval + jitter(&mut rng, self.jitter)
                }
                Err(e) => {
                    feed.source_error(e);
                    backoff.next_wait()
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}
