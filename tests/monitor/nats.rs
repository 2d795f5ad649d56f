//! NATS JetStream on a real `nats-server` (Debian's package; scripts/test.sh installs it), one
//! server per test on a free port: a stream is stored once and its messages acknowledged only
//! after they are stored (nothing pending afterwards), a malformed message is counted with its
//! stream sequence, replayed ids count once, a second consumer name reads the whole stream
//! again, a monitor killed (SIGKILL) mid-stream and restarted loses and doubles nothing, and a
//! following monitor outlives a restart of the server.

use crate::*;
use async_nats::jetstream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A JetStream server in a scratch directory, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: common::Scratch,
}

impl Server {
    fn start() -> Server {
        let dir = tmp("nats");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Self::spawn(port, dir.as_ref());
        Server { child, port, dir }
    }

    /// nats-server with JetStream on `port`, its storage in `dir`, once it takes connections.
    fn spawn(port: u16, dir: &std::path::Path) -> Child {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is not installed: run scripts/test.sh, which installs it");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// Stops the server and starts it again on the same port and storage.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.port, self.dir.as_ref());
    }

    /// The source of a consumer that gets unacknowledged messages again after a second.
    fn url(&self, consumer: &str) -> String {
        format!(
            "nats://127.0.0.1:{}/NEWS?consumer={consumer}&ack_wait=1",
            self.port
        )
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    async fn context(&self) -> jetstream::Context {
        let client = async_nats::connect(format!("127.0.0.1:{}", self.port))
            .await
            .unwrap();
        jetstream::new(client)
    }

    /// Publishes each line of `lines` on news.wire (creating the stream NEWS first).
    fn publish(&self, lines: &str) {
        Self::runtime().block_on(async {
            let js = self.context().await;
            js.get_or_create_stream(jetstream::stream::Config {
                name: "NEWS".into(),
                subjects: vec!["news.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
            for line in lines.lines() {
                js.publish("news.wire", line.to_string().into())
                    .await
                    .unwrap()
                    .await
                    .unwrap();
            }
        });
    }

    /// (messages not yet delivered, delivered but not acknowledged) of a consumer.
    fn pending(&self, consumer: &str) -> (u64, usize) {
        Self::runtime().block_on(async {
            let js = self.context().await;
            let stream = js.get_stream("NEWS").await.unwrap();
            let mut c: jetstream::consumer::PullConsumer =
                stream.get_consumer(consumer).await.unwrap();
            let info = c.info().await.unwrap();
            (info.num_pending, info.num_ack_pending)
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_jetstream_is_stored_once_and_acknowledged_after_storing() {
    let server = Server::start();
    let dir = tmp("monitor-nats");
    let dir = dir.as_ref();
    let mut lines = items(0, 40);
    lines.insert_str(lines.find("\n").unwrap() + 1, "{\"id\": \"bad\"}\n");
    server.publish(&lines);
    let url = server.url("desk");
    let (ok, summary, err) = monitor(dir, &[], &["--source", &url, "--batch-size", "8"]);
    assert!(ok, "{err}");
    assert_eq!(counts(&summary), (40, 40, 1), "{summary}");
    // The malformed message is the stream's second.
    assert!(
        err.contains("ack_wait=1:2") && err.contains("no \"time\""),
        "{err}"
    );
    assert_eq!(server.pending("desk"), (0, 0));
    // Five items already stored come again, with five new ones.
    server.publish(&(items(35, 10)));
    let (ok, summary, _) = monitor(dir, &[], &["--source", &url]);
    assert!(ok);
    assert_eq!(counts(&summary), (10, 5, 0), "{summary}");
    assert_eq!(windows(&dir.join("monitor.db")).1.len(), 45);
    // A monitor with its own consumer reads the whole stream into its store.
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    let (ok, summary, _) = monitor(&other, &[], &["--source", &server.url("research")]);
    assert!(ok);
    assert_eq!(counts(&summary), (50, 45, 1), "{summary}");
    assert_eq!(
        windows(&other.join("monitor.db")),
        windows(&dir.join("monitor.db"))
    );
    // A stream that does not exist is a clear error.
    let missing = format!("nats://127.0.0.1:{}/NOPE", server.port);
    let (ok, _, err) = monitor(dir, &[], &["--source", &missing]);
    assert!(
        !ok && err.contains(&missing) && err.contains("stream \"NOPE\""),
        "{err}"
    );
}

#[test]
fn a_monitor_killed_mid_stream_loses_and_doubles_nothing() {
    let server = Server::start();
    let dir = tmp("monitor-nats-kill");
    let dir = dir.as_ref();
    server.publish(&items(0, 300));
    let url = server.url("desk");
    let db = dir.join("monitor.db");
    let mut child = spawn_monitor(
        dir,
        &[
            "--source",
            &url,
            "--batch-size",
            "4",
            "--follow",
            "--poll",
            "0.05",
        ],
    );
    wait_for_items(&db, 40);
    child.kill().unwrap();
    child.wait().unwrap();
    let before = stored_items(&db);
    assert!(before < 300, "killed too late to test anything");
    // The batch in hand when killed is delivered again once its acknowledgement is overdue.
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, summary, err) = monitor(dir, &[], &["--source", &url, "--batch-size", "4"]);
    assert!(ok, "{err}");
    // Messages stored but not acknowledged when killed come again and are skipped by id.
    assert_eq!(counts(&summary).1 as i64, 300 - before, "{summary}");
    assert_eq!(server.pending("desk"), (0, 0));
    let whole = dir.join("whole");
    std::fs::create_dir(&whole).unwrap();
    let (ok, _, _) = monitor(&whole, &[], &["--source", &server.url("whole")]);
    assert!(ok);
    assert_eq!(windows(&db), windows(&whole.join("monitor.db")));
}

#[test]
fn a_following_monitor_outlives_a_server_restart() {
    let mut server = Server::start();
    let dir = tmp("monitor-nats-restart");
    let dir = dir.as_ref();
    server.publish(&items(0, 10));
    let url = server.url("desk");
    let db = dir.join("monitor.db");
    let child = spawn_monitor(dir, &["--source", &url, "--follow", "--poll", "0.05"]);
    wait_for_items(&db, 10);
    server.restart();
    server.publish(&items(10, 10));
    wait_for_items(&db, 20);
    let summary = stop(child, "-TERM");
    // A killed server may have lost acknowledgements: what it delivers again is read again,
    // and stored once.
    let (read, stored, malformed) = counts(&summary);
    assert!(read >= 20 && stored == 20 && malformed == 0, "{summary}");
    let (windows, ids) = windows(&db);
    assert_eq!(
        (windows.iter().map(|w| w.2).sum::<i64>(), ids.len()),
        (20, 20)
    );
}
