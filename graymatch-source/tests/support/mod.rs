//! Test support: real servers on loopback (etcd from Debian's etcd-server,
//! started per test and killed on drop), temp dirs, a TCP proxy that can cut
//! connections, and waiting for watchers to converge.
#![allow(dead_code, unreachable_pub)]

mod etcd;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use etcd::*;

use graymatch::RuleSetVersion;
use graymatch_source::Watcher;

/// A TCP proxy on loopback that can cut every connection and refuse new
/// ones, then let them through again.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (o, c) = (open.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            open,
            conns,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Waits (at most `limit`) until `watcher` serves the text whose version is
/// `want`; the time it took, or `None`.
pub async fn converge(
    watcher: &Watcher,
    want: &RuleSetVersion,
    limit: Duration,
) -> Option<Duration> {
    converge_from(watcher, want, Instant::now(), limit).await
}

/// As [`converge`], timed from `started` (the limit too).
pub async fn converge_from(
    watcher: &Watcher,
    want: &RuleSetVersion,
    started: Instant,
    limit: Duration,
) -> Option<Duration> {
    let limit = limit.saturating_sub(started.elapsed());
    let mut rx = watcher.subscribe();
    let matched =
        |v: &Option<RuleSetVersion>| v.as_ref().is_some_and(|v| v.digest() == want.digest());
    let got = tokio::time::timeout(limit, rx.wait_for(matched)).await;
    match got {
        Ok(Ok(_)) => Some(started.elapsed()),
        _ => None,
    }
}

/// The rule set of push `i`: a canary at `i % 101` percent.
pub fn rules(i: usize) -> String {
    format!(
        "default: stable\nrules:\n  - {{ name: canary, to: gray, percent: {}, sticky: {{ header: x-user-id }} }}\n",
        i % 101
    )
}

/// p50 and p99 of `samples`.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)]
    };
    (at(0.5), at(0.99))
}
