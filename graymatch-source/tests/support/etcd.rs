//! A real etcd for tests and demos: Debian's etcd-server started from PATH
//! on free loopback ports with a temp data dir, bounded in time, killed on
//! drop. Standard library only, so other crates' tests and the examples
//! include this file too (`#[path]`).
#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// Prints `skipped: TEST: WHY` where it is seen even when the test harness
/// captures output (straight to the process's stderr).
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {why}");
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
            skip(test, "etcd not found on PATH (Debian package etcd-server)");
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
