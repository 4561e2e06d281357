//! The end-to-end harness: free loopback ports, temporary directories, a real Kafka-protocol broker
//! (tansu) started per test, the `playlog` binary run as a process, and a plain rdkafka consumer to read
//! back what landed. Processes are killed on drop; logs are kept (and their path printed) when a test fails.

#![allow(clippy::unwrap_used)] // Test harness: a failed setup step should stop the test loudly.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use playlog_model::{EventRecord, Stream};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `playlog` binary built alongside these tests (same profile, same target directory).
pub fn playlog_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/playlog
    let bin = exe.parent().unwrap().parent().unwrap().join("playlog");
    assert!(
        bin.exists(),
        "{} not built: run scripts/test.sh, or `cargo build --release --bins` before `cargo test --release`",
        bin.display()
    );
    bin
}

/// The tansu broker: `$TANSU_BIN`, else `tansu` on PATH (scripts/install-deps.sh installs it).
pub fn tansu_bin() -> PathBuf {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let home_bin = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/tansu"))
        .unwrap_or_default();
    if home_bin.exists() {
        home_bin
    } else {
        PathBuf::from("tansu")
    }
}

/// A scratch directory that survives a failing test, so that its logs can be read.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        Scratch {
            dir: Some(
                tempfile::Builder::new()
                    .prefix(&format!("playlog-{name}-"))
                    .tempdir()
                    .unwrap(),
            ),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "test failed: logs and data kept in {}",
                dir.keep().display()
            );
        }
    }
}

/// A tansu broker on a free loopback port, in-memory storage, stopped on drop.
pub struct Broker {
    child: Child,
    pub address: String,
    pub scratch: Scratch,
}

impl Broker {
    pub fn start() -> Broker {
        let scratch = Scratch::new("broker");
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let log = std::fs::File::create(scratch.path().join("broker.log")).unwrap();
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .current_dir(scratch.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} (install it with scripts/install-deps.sh): {e}",
                    tansu_bin().display()
                )
            });
        let broker = Broker {
            child,
            address,
            scratch,
        };
        broker.wait_until_listening(Duration::from_secs(30));
        broker
    }

    fn wait_until_listening(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within {timeout:?}",
                self.address
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every record of `topic`, across its partitions, as (partition, key, value).
    pub fn read_all(
        &self,
        topic: &str,
        expected: usize,
        timeout: Duration,
    ) -> Vec<(i32, Option<Vec<u8>>, Vec<u8>)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", "playlog-e2e-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .unwrap();
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        assert!(partitions > 0, "topic {topic} has no partitions");
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut out = Vec::with_capacity(expected);
        let deadline = Instant::now() + timeout;
        while out.len() < expected && Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let m = message.unwrap();
                out.push((
                    m.partition(),
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
        // Linger briefly: anything beyond `expected` would be a duplicate.
        let settle = Instant::now() + Duration::from_millis(500);
        while Instant::now() < settle {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let m = message.unwrap();
                out.push((
                    m.partition(),
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `playlog` with `args` to completion.
pub fn playlog(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(playlog_bin());
    command.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().unwrap()
}

/// Asserts success, showing the process's output otherwise.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The events `playlog produce --output DIR/` wrote, per stream.
pub fn read_json_dir(dir: &Path) -> BTreeMap<Stream, Vec<EventRecord>> {
    Stream::ALL
        .iter()
        .map(|s| {
            let text = std::fs::read_to_string(dir.join(format!("{}.json", s.topic()))).unwrap();
            (
                *s,
                text.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// Sorts records by event id, for comparing multisets.
pub fn sorted(mut records: Vec<EventRecord>) -> Vec<EventRecord> {
    records.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    records
}
