//! Test support: real servers on loopback (etcd from Debian's etcd-server,
//! started per test and killed on drop), temp dirs, a TCP proxy that can cut
//! connections, and waiting for watchers to converge.
#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graymatch::RuleSetVersion;
use graymatch_source::Watcher;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "graymatch-source-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound and released; the OS rarely hands it out
/// again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `name` on PATH, if there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether missing servers fail the tests (`GRAYMATCH_REQUIRE_SERVERS=1`, as
/// CI sets) instead of skipping them.
pub fn servers_required() -> bool {
    std::env::var("GRAYMATCH_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// A single-member etcd cluster on loopback ports with its own data dir,
/// killed (and its dir removed) on drop.
pub struct Etcd {
    bin: PathBuf,
    dir: TempDir,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd, or says why the test is skipped and returns `None`
    /// (with `GRAYMATCH_REQUIRE_SERVERS=1`, panics instead).
    pub fn start(test: &str) -> Option<Etcd> {
        let Some(bin) = on_path("etcd") else {
            assert!(
                !servers_required(),
                "{test}: etcd is required (GRAYMATCH_REQUIRE_SERVERS=1) but not on PATH: apt-get install etcd-server"
            );
            eprintln!("skipped: {test}: etcd not found on PATH (Debian package etcd-server)");
            return None;
        };
        let mut etcd = Etcd {
            bin,
            dir: TempDir::new("etcd"),
            client: free_port(),
            peer: free_port(),
            child: None,
        };
        etcd.spawn();
        Some(etcd)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    fn spawn(&mut self) {
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("etcd log");
        let child = Command::new(&self.bin)
            .args(["--name", "t", "--data-dir"])
            .arg(self.dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("t={peer}")])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits (at most 15 s) until a range request is answered.
    fn wait_ready(&self) {
        let started = Instant::now();
        let addr: SocketAddr = format!("127.0.0.1:{}", self.client).parse().unwrap();
        while started.elapsed() < Duration::from_secs(15) {
            if let Ok(mut s) =
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            {
                use std::io::{Read, Write};
                let body = r#"{"key":"AA=="}"#;
                let req = format!(
                    "POST /v3/kv/range HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut out = String::new();
                    let _ = s.read_to_string(&mut out);
                    if out.starts_with("HTTP/1.1 200") {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        panic!("etcd did not become ready in 15 s; its log:\n{log}");
    }

    /// Kills etcd at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

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
