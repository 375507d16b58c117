//! Test servers: `nats-server` and `rabbitmq-server` from the machine's
//! packages, started by the tests on free loopback ports with their own
//! temp dirs, and killed when the guard drops. A missing binary skips the
//! test with one line on stderr, or fails it when
//! `GRAYMATCH_REQUIRE_SERVERS=1` (CI).

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Whether a missing server fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("GRAYMATCH_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// `name` on `PATH`, if there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Skips (one line on stderr, past the test harness's capture) or fails.
fn missing(test: &str, binary: &str, package: &str) {
    assert!(
        !required(),
        "{test}: {binary} is required (GRAYMATCH_REQUIRE_SERVERS=1) but is not on PATH: apt-get install {package}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: {binary} not found on PATH (apt-get install {package}; GRAYMATCH_REQUIRE_SERVERS=1 makes this a failure)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(kind: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "graymatch-{kind}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits (bounded) until `port` accepts connections or the child exits.
fn wait_for_port(child: &mut Child, port: u16, limit: Duration, what: &str, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} exited with {status} before it was ready:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} was not ready on 127.0.0.1:{port} within {limit:?}:\n{log}");
}

/// A watchdog that kills the server's process group if the test process
/// dies without dropping the guard (SIGKILL, abort).
fn watchdog(pgid: u32, extra: &str) -> Option<Child> {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -KILL -- -{pgid} 2>/dev/null; {extra}",
        std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
}

fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A `nats-server -js` on a loopback port.
pub struct Nats {
    child: Child,
    watchdog: Option<Child>,
    pub url: String,
    _dir: TempDir,
}

impl Nats {
    /// Starts one, or skips (`None`) when the binary is missing.
    pub fn start(test: &str) -> Option<Nats> {
        let Some(bin) = on_path("nats-server") else {
            missing(test, "nats-server", "nats-server");
            return None;
        };
        let dir = TempDir::new("nats");
        let port = free_port();
        let log = dir.0.join("nats.log");
        let mut child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.0.join("js"))
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("nats-server starts");
        wait_for_port(
            &mut child,
            port,
            Duration::from_secs(10),
            "nats-server",
            &log,
        );
        let watchdog = watchdog(child.id(), "");
        Some(Nats {
            child,
            watchdog,
            url: format!("127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A RabbitMQ node on loopback ports, with its own HOME, node name, data
/// dirs, an empty plugins file and a private epmd. Shared by the tests of
/// one test binary that run at the same time (it takes seconds to boot),
/// and stopped when the last of them drops it.
pub struct Rabbit {
    child: Child,
    watchdog: Option<Child>,
    epmd_port: u16,
    pub url: String,
    pub node: String,
    dir: TempDir,
}

static RABBIT: Mutex<Weak<Rabbit>> = Mutex::new(Weak::new());

impl Rabbit {
    /// The running node, or a new one; `None` (skip) when the binary is
    /// missing.
    pub fn get(test: &str) -> Option<Arc<Rabbit>> {
        let mut shared = RABBIT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = shared.upgrade() {
            return Some(r);
        }
        let Some(found) = on_path("rabbitmq-server") else {
            missing(test, "rabbitmq-server", "rabbitmq-server");
            return None;
        };
        // Debian's /usr/sbin wrapper switches to the rabbitmq user and
        // redirects the logs; run the real script beside it as this user.
        let real = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        let bin = if real.is_file() {
            real.to_path_buf()
        } else {
            found
        };
        let rabbit = Arc::new(Rabbit::boot(&bin));
        *shared = Arc::downgrade(&rabbit);
        Some(rabbit)
    }

    fn boot(bin: &Path) -> Rabbit {
        let dir = TempDir::new("rabbitmq");
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.0.join(sub)).expect("rabbitmq dirs");
        }
        let plugins = dir.0.join("enabled_plugins");
        std::fs::write(&plugins, "").expect("plugins file");
        let (port, dist, epmd) = (free_port(), free_port(), free_port());
        let node = format!(
            "graymatch-test-{}-{}@localhost",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let log = dir.0.join("boot.log");
        let out = std::fs::File::create(&log).expect("boot log");
        let err = out.try_clone().expect("boot log");
        let mut child = Command::new(bin)
            .env("HOME", dir.0.join("home"))
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.0.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.0.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_CONFIG_FILE", dir.0.join("none"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.0.join("none.config"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.0.join("none.env"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", epmd.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("rabbitmq-server starts");
        let watchdog = watchdog(
            child.id(),
            &format!("epmd -port {epmd} -kill >/dev/null 2>&1"),
        );
        wait_for_port(
            &mut child,
            port,
            Duration::from_secs(60),
            "rabbitmq-server",
            &log,
        );
        Rabbit {
            child,
            watchdog,
            epmd_port: epmd,
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            node,
            dir,
        }
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        // The node's private epmd outlives it as a daemon: stop it. It
        // refuses while it still lists the node, so retry (bounded).
        let port = self.epmd_port.to_string();
        for _ in 0..50 {
            let _ = Command::new("epmd")
                .args(["-port", &port, "-kill"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if TcpStream::connect(("127.0.0.1", self.epmd_port)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// Polls `f` every 20 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
