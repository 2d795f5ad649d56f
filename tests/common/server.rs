//! A running `positio serve` on a free loopback port, driven over HTTP, for the tests that
//! talk to the server as a client would.

use super::positio_command;
use positio::tools::http::{Connection, Reply};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running server; killed when dropped.
pub struct Server {
    pub child: Child,
    pub host: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `positio serve ARGS` on a free port and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// [`Server::start`] with variables set in the server's environment.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = positio_command()
            .args(["serve", "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let host = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("server ended: {}", log.lock().unwrap()))
                .unwrap();
            log.lock().unwrap().push_str(&line);
            log.lock().unwrap().push('\n');
            if let Some(addr) = line.split("listening on http://").nth(1) {
                break addr.trim().to_string();
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Server { child, host, log }
    }

    pub fn connect(&self) -> Connection {
        Connection::open(&self.host, Duration::from_secs(60)).unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.connect()
            .request("POST", path, body.to_string().as_bytes())
            .unwrap()
    }

    pub fn get(&self, path: &str) -> Reply {
        self.connect().request("GET", path, b"").unwrap()
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
