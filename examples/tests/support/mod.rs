//! Running an example binary: its stdout read line by line, killed on drop.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

pub struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    pub fn start(bin: &str, args: &[&str]) -> Running {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("example starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The next line, waiting at most 30 s.
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the example printed a line in time")
    }

    /// Lines until one contains `needle` (at most 200 lines), returned all.
    pub fn until(&self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        for _ in 0..200 {
            let line = self.line();
            let done = line.contains(needle);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("no line with {needle:?} in {seen:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `host:port` from a line holding `http://host:port`.
pub fn addr_in(line: &str) -> String {
    let start = line.find("http://").expect("an address") + "http://".len();
    line[start..]
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .unwrap()
        .to_owned()
}
