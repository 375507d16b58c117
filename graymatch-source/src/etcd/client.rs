//! A small etcd v3 client over etcd's JSON gateway (grpc-gateway): range,
//! compare-and-swap put, compaction and watch, on the HTTP client the crate
//! already has. Keys and values travel base64-encoded, 64-bit numbers as
//! strings, watch results as one JSON object per line.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, chain};

/// A client for the keys of an etcd cluster, over its JSON gateway
/// (`/v3/kv/range`, `/v3/kv/txn`, `/v3/watch`), which etcd serves on its
/// client URLs since 3.4 with no extra setup.
///
/// Requests go to the first endpoint that answers; an endpoint that cannot
/// be reached is skipped. Every request but a watch has a timeout (5 s by
/// default).
///
/// ```no_run
/// # async fn run() -> Result<(), graymatch_source::Error> {
/// use graymatch_source::etcd::Client;
///
/// let etcd = Client::new(["http://127.0.0.1:2379"])?;
/// let read = etcd.get("/graymatch/checkout").await?;
/// let expected = read.kv.as_ref().map_or(0, |kv| kv.mod_revision);
/// // Written only if nobody pushed since the read.
/// let revision = etcd.put_if("/graymatch/checkout", b"default: stable\n", expected).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    endpoints: Vec<reqwest::Url>,
    http: reqwest::Client,
    timeout: Duration,
}

/// A key's value and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyValue {
    /// The value's bytes.
    pub value: Vec<u8>,
    /// The revision of the last write to the key (the order of updates).
    pub mod_revision: u64,
    /// The revision the key was created at.
    pub create_revision: u64,
    /// The number of writes since the key was created.
    pub version: u64,
}

/// The answer to a read: the cluster's revision at the read and the key, if
/// it exists.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Read {
    /// The cluster's revision when the read was served.
    pub revision: u64,
    /// The key, if it exists.
    pub kv: Option<KeyValue>,
}

impl Client {
    /// A client for the cluster at `endpoints` (`http://host:2379`; the
    /// client URLs of one or more members).
    ///
    /// # Errors
    ///
    /// No endpoint, or one that is not an `http`/`https` URL.
    ///
    /// ```
    /// use graymatch_source::etcd::Client;
    /// assert!(Client::new(["http://127.0.0.1:2379", "http://127.0.0.1:22379"]).is_ok());
    /// assert!(Client::new(Vec::<String>::new()).is_err());
    /// assert!(Client::new(["127.0.0.1:2379"]).is_err());
    /// ```
    pub fn new<I, E>(endpoints: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = E>,
        E: AsRef<str>,
    {
        let mut urls = Vec::new();
        for e in endpoints {
            let e = e.as_ref();
            let url = reqwest::Url::parse(e)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    Error::config(format!(
                        "invalid etcd endpoint {e:?}: write its client URL, such as http://127.0.0.1:2379"
                    ))
                })?;
            urls.push(url);
        }
        if urls.is_empty() {
            return Err(Error::config("no etcd endpoint given"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .tcp_keepalive(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| Error::config(format!("cannot build an HTTP client: {}", chain(&e))))?;
        Ok(Client {
            endpoints: urls,
            http,
            timeout: Duration::from_secs(5),
        })
    }

    /// Uses this reqwest client (for TLS: build it with your reqwest's TLS
    /// feature and certificates).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The timeout of each request but a watch (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The endpoints, in the order they are tried.
    pub fn endpoints(&self) -> &[reqwest::Url] {
        &self.endpoints
    }

    /// `http://host:2379`, for messages.
    pub(crate) fn endpoint_name(&self, index: usize) -> String {
        let url = &self.endpoints[index % self.endpoints.len()];
        url.as_str().trim_end_matches('/').to_owned()
    }

    fn url(&self, index: usize, path: &str) -> Result<reqwest::Url, Error> {
        let base = &self.endpoints[index % self.endpoints.len()];
        base.join(path)
            .map_err(|e| Error::config(format!("{base}: cannot join {path}: {e}")))
    }

    /// POSTs `body` to `path` on endpoint `index`: the answer's JSON.
    async fn post_at(
        &self,
        index: usize,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        let place = format!("etcd {}", self.endpoint_name(index));
        let resp = self
            .http
            .post(self.url(index, path)?)
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Error::remote(&place, chain(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::remote(&place, chain(&e)))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::remote(
                &place,
                format!("{path} answered {status} with a body that is not JSON: {e}"),
            )
        })?;
        if !status.is_success() {
            let message = value
                .get("message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no message");
            return Err(Error::remote(
                &place,
                format!("{path} answered {status}: {message}"),
            ));
        }
        Ok(value)
    }

    /// POSTs to the first endpoint that can be reached.
    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
        let mut last = None;
        for index in 0..self.endpoints.len() {
            match self.post_at(index, path, body).await {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::config("no etcd endpoint given")))
    }

    /// Reads `key` (a linearizable read: it fails on a member cut off from
    /// the cluster's leader).
    ///
    /// # Errors
    ///
    /// No endpoint answers, or one answers with an error.
    pub async fn get(&self, key: &str) -> Result<Read, Error> {
        let v = self
            .post("v3/kv/range", &json!({ "key": B64.encode(key) }))
            .await?;
        parse_read(&v).map_err(|m| Error::remote(format!("etcd key {key}"), m))
    }

    pub(crate) async fn get_at(&self, index: usize, key: &str) -> Result<Read, Error> {
        let v = self
            .post_at(index, "v3/kv/range", &json!({ "key": B64.encode(key) }))
            .await?;
        parse_read(&v)
            .map_err(|m| Error::remote(format!("etcd {} key {key}", self.endpoint_name(index)), m))
    }

    /// Writes `value` to `key` unconditionally; the new revision. Prefer
    /// [`put_if`](Client::put_if), which refuses to overwrite a push you
    /// have not seen.
    ///
    /// # Errors
    ///
    /// No endpoint answers, or one answers with an error.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<u64, Error> {
        let v = self
            .post(
                "v3/kv/put",
                &json!({ "key": B64.encode(key), "value": B64.encode(value) }),
            )
            .await?;
        revision_of(&v).ok_or_else(|| {
            Error::remote(format!("etcd key {key}"), "a put answer without a revision")
        })
    }

    /// Writes `value` to `key` only if the key is still at revision
    /// `expected` (its `mod_revision`; 0: the key must not exist): a
    /// compare-and-swap transaction. The new revision.
    ///
    /// # Errors
    ///
    /// The key is at another revision ([`Error::conflict_revisions`] gives
    /// both), or no endpoint answers.
    pub async fn put_if(&self, key: &str, value: &[u8], expected: u64) -> Result<u64, Error> {
        let k = B64.encode(key);
        let body = json!({
            "compare": [{
                "key": k,
                "target": "MOD",
                "result": "EQUAL",
                "mod_revision": expected.to_string(),
            }],
            "success": [{ "request_put": { "key": k, "value": B64.encode(value) } }],
            "failure": [{ "request_range": { "key": k } }],
        });
        let v = self.post("v3/kv/txn", &body).await?;
        let place = || format!("etcd key {key}");
        if v.get("succeeded").and_then(serde_json::Value::as_bool) == Some(true) {
            return revision_of(&v)
                .ok_or_else(|| Error::remote(place(), "a txn answer without a revision"));
        }
        let range = v
            .get("responses")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("response_range"))
            .ok_or_else(|| Error::remote(place(), "a failed txn answer without the key"))?;
        let read = parse_read(range).map_err(|m| Error::remote(place(), m))?;
        Err(Error::conflict(
            key,
            expected,
            read.kv.map_or(0, |kv| kv.mod_revision),
        ))
    }

    /// Compacts the key-value history up to `revision` (what an operator's
    /// `etcdctl compact` does; etcd's auto-compaction does it on a timer).
    ///
    /// # Errors
    ///
    /// No endpoint answers, or one answers with an error.
    pub async fn compact(&self, revision: u64) -> Result<(), Error> {
        self.post(
            "v3/kv/compaction",
            &json!({ "revision": revision.to_string(), "physical": true }),
        )
        .await
        .map(|_| ())
    }

    /// Starts watching `key` from `start` on endpoint `index`.
    pub(crate) async fn watch_at(
        &self,
        index: usize,
        key: &str,
        start: u64,
        progress: bool,
    ) -> Result<WatchStream, Error> {
        let place = format!("etcd {} key {key}", self.endpoint_name(index));
        let body = json!({ "create_request": {
            "key": B64.encode(key),
            "start_revision": start.to_string(),
            "progress_notify": progress,
        }});
        let resp = self
            .http
            .post(self.url(index, "v3/watch")?)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Error::remote(&place, chain(&e)))?;
        if !resp.status().is_success() {
            return Err(Error::remote(
                &place,
                format!("watch answered {}", resp.status()),
            ));
        }
        Ok(WatchStream {
            resp,
            buf: Vec::new(),
            place,
        })
    }
}

/// A watch's stream of results.
pub(crate) struct WatchStream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    place: String,
}

/// One watch result.
#[derive(Debug, Default)]
pub(crate) struct WatchResult {
    pub(crate) revision: u64,
    pub(crate) created: bool,
    pub(crate) canceled: bool,
    pub(crate) compact_revision: u64,
    pub(crate) cancel_reason: String,
    pub(crate) events: Vec<WatchEvent>,
}

#[derive(Debug)]
pub(crate) struct WatchEvent {
    pub(crate) delete: bool,
    pub(crate) kv: KeyValue,
}

/// The largest watch result line accepted: 64 MiB.
const MAX_LINE: usize = 64 << 20;

impl WatchStream {
    /// The next result; `None` when the server ended the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<WatchResult>, Error> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return parse_watch(&line)
                    .map(Some)
                    .map_err(|m| Error::remote(&self.place, m));
            }
            if self.buf.len() > MAX_LINE {
                return Err(Error::remote(&self.place, "a watch result over 64 MiB"));
            }
            match self
                .resp
                .chunk()
                .await
                .map_err(|e| Error::remote(&self.place, chain(&e)))?
            {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None if self.buf.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                None => {
                    let line = std::mem::take(&mut self.buf);
                    return parse_watch(&line)
                        .map(Some)
                        .map_err(|m| Error::remote(&self.place, m));
                }
            }
        }
    }
}

// --- the gateway's JSON -------------------------------------------------------

/// A 64-bit number that the gateway writes as a string (or a number).
fn num(v: Option<&serde_json::Value>) -> u64 {
    match v {
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn revision_of(v: &serde_json::Value) -> Option<u64> {
    let r = num(v.get("header")?.get("revision"));
    (r > 0).then_some(r)
}

#[derive(Deserialize)]
struct RawKv {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    mod_revision: serde_json::Value,
    #[serde(default)]
    create_revision: serde_json::Value,
    #[serde(default)]
    version: serde_json::Value,
}

fn parse_kv(v: &serde_json::Value) -> Result<KeyValue, String> {
    let raw: RawKv = serde_json::from_value(v.clone())
        .map_err(|e| format!("a key-value the client cannot read: {e}"))?;
    let value = match raw.value {
        Some(s) => B64
            .decode(s.as_bytes())
            .map_err(|e| format!("a value that is not base64: {e}"))?,
        None => Vec::new(),
    };
    Ok(KeyValue {
        value,
        mod_revision: num(Some(&raw.mod_revision)),
        create_revision: num(Some(&raw.create_revision)),
        version: num(Some(&raw.version)),
    })
}

fn parse_read(v: &serde_json::Value) -> Result<Read, String> {
    let revision = v
        .get("header")
        .map(|h| num(h.get("revision")))
        .ok_or("a range answer without a header")?;
    let kv = match v.get("kvs").and_then(serde_json::Value::as_array) {
        Some(kvs) => kvs.first().map(parse_kv).transpose()?,
        None => None,
    };
    Ok(Read { revision, kv })
}

fn parse_watch(line: &[u8]) -> Result<WatchResult, String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        format!(
            "a watch result that is not JSON ({e}): {}",
            String::from_utf8_lossy(&line[..line.len().min(200)])
        )
    })?;
    if let Some(err) = v.get("error") {
        let message = err
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no message");
        return Err(format!("the watch failed: {message}"));
    }
    let r = v.get("result").ok_or("a watch answer without a result")?;
    let mut out = WatchResult {
        revision: r.get("header").map_or(0, |h| num(h.get("revision"))),
        created: r.get("created").and_then(serde_json::Value::as_bool) == Some(true),
        canceled: r.get("canceled").and_then(serde_json::Value::as_bool) == Some(true),
        compact_revision: num(r.get("compact_revision")),
        cancel_reason: r
            .get("cancel_reason")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        events: Vec::new(),
    };
    if let Some(events) = r.get("events").and_then(serde_json::Value::as_array) {
        for e in events {
            let delete = e.get("type").and_then(serde_json::Value::as_str) == Some("DELETE");
            let kv = e.get("kv").ok_or("a watch event without a key-value")?;
            out.events.push(WatchEvent {
                delete,
                kv: parse_kv(kv)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lines_table() {
        // Lines as etcd 3.4's gateway writes them.
        let cases: [(&str, &str, Result<(bool, bool, u64, usize, u64), &str>); 6] = [
            (
                "created",
                r#"{"result":{"header":{"cluster_id":"1","member_id":"2","revision":"2","raft_term":"2"},"created":true}}"#,
                Ok((true, false, 0, 0, 2)),
            ),
            (
                "put",
                r#"{"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"L2dt","create_revision":"2","mod_revision":"3","version":"2","value":"ZGVmYXVsdDogc3RhYmxl"}}]}}"#,
                Ok((false, false, 0, 1, 3)),
            ),
            (
                "delete",
                r#"{"result":{"header":{"revision":"4"},"events":[{"type":"DELETE","kv":{"key":"L2dt","mod_revision":"4"}}]}}"#,
                Ok((false, false, 0, 1, 4)),
            ),
            (
                "compacted",
                r#"{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"3"}}"#,
                Ok((false, true, 3, 0, 0)),
            ),
            (
                "error",
                r#"{"error":{"grpc_code":14,"message":"unavailable"}}"#,
                Err("unavailable"),
            ),
            ("not json", "{oops", Err("not JSON")),
        ];
        for (name, line, want) in cases {
            match (parse_watch(line.as_bytes()), want) {
                (Ok(r), Ok((created, canceled, compact, events, revision))) => {
                    assert_eq!(
                        (
                            r.created,
                            r.canceled,
                            r.compact_revision,
                            r.events.len(),
                            r.revision
                        ),
                        (created, canceled, compact, events, revision),
                        "{name}"
                    );
                }
                (Err(e), Err(want)) => assert!(e.contains(want), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        let put = parse_watch(cases[1].1.as_bytes()).unwrap();
        assert_eq!(put.events[0].kv.value, b"default: stable");
        assert!(parse_watch(cases[2].1.as_bytes()).unwrap().events[0].delete);
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let cases = [
            r#"{"result":{"events":[{"kv":{"value":"!!!"}}]}}"#,
            r#"{"result":{"events":[{}]}}"#,
            r#"{"result":{"events":[{"kv":{"value":7}}]}}"#,
            r#"[]"#,
        ];
        for line in cases {
            assert!(parse_watch(line.as_bytes()).is_err(), "{line}");
        }
    }
}
