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

pub mod http;
pub mod recording_proxy;
pub mod tls;

/// The acceptance day: a simulated day of 1,000 users, seed 7, into 3 partitions (`produce` flags).
pub const DAY: [&str; 10] = [
    "--users",
    "1000",
    "--from",
    "2026-01-01T00:00:00Z",
    "--to",
    "2026-01-02T00:00:00Z",
    "--seed",
    "7",
    "--partitions",
    "3",
];

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

/// README.md's fenced blocks of one language (```sh, ```properties, …), in order, without their fences.
pub fn readme_blocks(language: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    readme
        .split(&format!("```{language}\n"))
        .skip(1)
        .map(|rest| rest.split("```").next().expect("a closed block").to_owned())
        .collect()
}

/// A shell command line run as a user types it (`bash -c`), in `dir`, with `playlog` on PATH meaning
/// the binary under test; killed on drop.
pub fn spawn_shell_line(line: &str, dir: &Path, log: PathBuf) -> Background {
    let file = std::fs::File::create(&log).unwrap();
    let bin_dir = playlog_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("bash")
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    Background { child, log }
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

/// A tansu broker on a free loopback port, stopped on drop.
pub struct Broker {
    child: Child,
    /// Its plaintext listener, `127.0.0.1:PORT`.
    pub address: String,
    options: BrokerOptions,
    pub scratch: Scratch,
}

/// How a test broker runs.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// `memory://tansu/`, or `sqlite://broker.db` (in the scratch directory; tansu's SCRAM needs it).
    pub storage: String,
    /// The address advertised in metadata (`localhost:PORT` of a TLS terminator in front); by default
    /// the listener itself.
    pub advertised: Option<String>,
    /// `--authentication`: SASL (SCRAM) required.
    pub authentication: bool,
    /// `--cluster-id`, the id its metadata reports; tansu's default (`tansu_cluster`) if `None`.
    pub cluster_id: Option<String>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            storage: "memory://tansu/".into(),
            advertised: None,
            authentication: false,
            cluster_id: None,
        }
    }
}

impl Broker {
    /// In-memory storage, plaintext, no authentication.
    pub fn start() -> Broker {
        Broker::start_with(BrokerOptions::default())
    }

    pub fn start_with(options: BrokerOptions) -> Broker {
        let scratch = Scratch::new("broker");
        let address = format!("127.0.0.1:{}", free_port());
        let child = Broker::spawn(&scratch, &address, &options);
        let broker = Broker {
            child,
            address,
            options,
            scratch,
        };
        broker.wait_until_listening(Duration::from_secs(30));
        broker
    }

    fn spawn(scratch: &Scratch, address: &str, options: &BrokerOptions) -> Child {
        let url = format!("tcp://{address}");
        let advertised = options
            .advertised
            .as_ref()
            .map_or(url.clone(), |a| format!("tcp://{a}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.path().join("broker.log"))
            .unwrap();
        let mut args = vec![
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            &options.storage,
        ];
        if options.authentication {
            args.push("--authentication");
        }
        if let Some(id) = &options.cluster_id {
            args.extend(["--cluster-id", id]);
        }
        Command::new(tansu_bin())
            .args(&args)
            .current_dir(scratch.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} (install it with scripts/install-deps.sh): {e}",
                    tansu_bin().display()
                )
            })
    }

    /// Stops the broker and starts it again on the same port and storage, with or without
    /// `--authentication` (tansu creates SCRAM users only while it runs without it).
    pub fn restart(&mut self, authentication: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.options.authentication = authentication;
        self.child = Broker::spawn(&self.scratch, &self.address, &self.options);
        self.wait_until_listening(Duration::from_secs(30));
    }

    /// Stops the broker and starts it again on the same port as cluster `cluster_id`. With `memory://`
    /// storage its log is gone: a recreated topic, or another cluster, to a consumer's stored offsets.
    pub fn restart_as(&mut self, cluster_id: Option<&str>) {
        self.options.cluster_id = cluster_id.map(str::to_owned);
        self.restart(self.options.authentication);
    }

    /// Creates a SCRAM user (`scram256` or `scram512`) through the running broker's admin API.
    pub fn create_scram_user(&self, mechanism: &str, name: &str, password: &str) {
        let output = Command::new(tansu_bin())
            .args([
                "user",
                "create",
                "--broker",
                &format!("tcp://{}", self.address),
                "--mechanism",
                mechanism,
                name,
                password,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tansu user create {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
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

    /// A plain consumer assigned every partition of `topic` from the beginning (no group membership).
    fn reader(&self, topic: &str, group: &str) -> BaseConsumer {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", group)
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
        consumer
    }

    /// Every record of `topic`, across its partitions, as (partition, key, value).
    pub fn read_all(
        &self,
        topic: &str,
        expected: usize,
        timeout: Duration,
    ) -> Vec<(i32, Option<Vec<u8>>, Vec<u8>)> {
        let consumer = self.reader(topic, "playlog-e2e-reader");
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
    Stream::EVENTS
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

/// A record read back with its headers: (key, value, headers).
pub type HeaderedRecord = (Option<Vec<u8>>, Option<Vec<u8>>, BTreeMap<String, String>);

/// A `playlog` process running in the background, its output in the scratch directory; killed on drop.
pub struct Background {
    child: Child,
    pub log: PathBuf,
}

impl Background {
    pub fn spawn(args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Background {
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(playlog_bin());
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in envs {
            command.env(k, v);
        }
        Background {
            child: command.spawn().unwrap(),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush, commit or leave the group.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.signal("TERM", timeout)
    }

    /// Ctrl-C (SIGINT), then waits for a clean exit; returns whether it exited successfully.
    pub fn interrupt(&mut self, timeout: Duration) -> bool {
        self.signal("INT", timeout)
    }

    fn signal(&mut self, signal: &str, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fetches `/metrics` from `addr`; `None` while nothing answers.
pub fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The sum of every sample of `name` (any labels) in a scrape.
pub fn metric_sum(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Delays between kills, from a seed printed here so that a failing schedule can be replayed with
/// `PLAYLOG_TEST_SEED=<seed> cargo test -p playlog-e2e … <test>`: each `min_ms` plus up to `spread_ms`.
pub fn kill_schedule(test: &str, min_ms: u64, spread_ms: u64) -> impl FnMut() -> Duration {
    let seed = std::env::var("PLAYLOG_TEST_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("{test}: kill schedule seed {seed} (replay with PLAYLOG_TEST_SEED={seed})");
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_millis(min_ms + x % spread_ms)
    }
}

/// Polls `check` every 200 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

impl Broker {
    /// Whether the broker knows `topic` yet.
    pub fn has_topic(&self, topic: &str) -> bool {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .unwrap();
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map(|m| {
                m.topics()
                    .iter()
                    .any(|t| t.name() == topic && !t.partitions().is_empty())
            })
            .unwrap_or(false)
    }

    /// The offsets `group` committed to Kafka for partitions 0..partitions of `topic` (0 when none).
    pub fn committed_offsets(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", group)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        (0..partitions)
            .map(
                |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                },
            )
            .collect()
    }

    /// Sets a group's committed offsets of a topic's partitions (the group must have no members).
    pub fn commit_offsets(&self, group: &str, topic: &str, partitions: i32, offset: i64) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(offset))
                .unwrap();
        }
        consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
            .unwrap();
    }

    /// Creates the topics that do not exist yet (tansu does not auto-create them).
    pub fn create_topics(&self, topics: &[(&str, i32)]) {
        playlog_kafka::ensure_topics(
            &playlog_kafka::KafkaClientConfig::plaintext(&self.address),
            topics,
            1,
            &[],
        )
        .unwrap();
    }

    /// Publishes raw records (for bad input and eventsim's own JSON), waiting for every acknowledgement.
    pub fn publish(&self, topic: &str, records: &[(Option<&[u8]>, Vec<u8>)]) {
        self.create_topics(&[(topic, 1)]);
        use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
        let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
            ClientConfig::new()
                .set("bootstrap.servers", &self.address)
                .set("acks", "all")
                // Room for the tests' oversized records (librdkafka's default is 1,000,000 bytes).
                .set("message.max.bytes", "16000000")
                .create()
                .unwrap();
        for (key, value) in records {
            let mut record: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(topic).payload(value.as_slice());
            if let Some(k) = key {
                record = record.key(*k);
            }
            producer.send(record).map_err(|(e, _)| e).unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Every record of `topic` with its headers, as (key, value, headers).
    pub fn read_with_headers(
        &self,
        topic: &str,
        expected: usize,
        timeout: Duration,
    ) -> Vec<HeaderedRecord> {
        use rdkafka::message::Headers;
        let consumer = self.reader(topic, "playlog-e2e-headers");
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        while out.len() < expected && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let mut headers = BTreeMap::new();
                if let Some(h) = m.headers() {
                    for header in h.iter() {
                        headers.insert(
                            header.key.to_owned(),
                            String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                        );
                    }
                }
                out.push((
                    m.key().map(<[u8]>::to_vec),
                    m.payload().map(<[u8]>::to_vec),
                    headers,
                ));
            }
        }
        out
    }
}

/// Opens a DuckDB warehouse file read-only (the consumer must have exited: DuckDB allows one writer).
pub fn open_warehouse(path: &Path) -> duckdb::Connection {
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .unwrap();
    duckdb::Connection::open_with_flags(path, config).unwrap()
}

/// (rows, distinct event ids) of a raw table.
pub fn raw_counts(conn: &duckdb::Connection, table: &str) -> (i64, i64) {
    conn.query_row(
        &format!("SELECT count(*), count(DISTINCT event_id) FROM raw.{table}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// The event ids of a raw table, sorted.
pub fn raw_event_ids(conn: &duckdb::Connection, table: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT event_id FROM raw.{table} ORDER BY event_id"
        ))
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// Runs `playlog produce --output DIR/` with `window` flags and reads the files: the expected events of a
/// run with the same flags, since runs are deterministic.
pub fn produce_to_dir(
    scratch: &Scratch,
    name: &str,
    window: &[&str],
) -> BTreeMap<Stream, Vec<EventRecord>> {
    let dir = scratch.path().join(name);
    let dir_arg = format!("{}/", dir.display());
    let mut args = vec!["produce", "-q", "--output", &dir_arg];
    args.extend_from_slice(window);
    assert_success(&playlog(&args, &[]), "playlog produce --output");
    read_json_dir(&dir)
}

/// A raw table's rows as event records (Kafka metadata left out), sorted by event id.
pub fn raw_records(conn: &duckdb::Connection, stream: Stream) -> Vec<EventRecord> {
    let extra = match stream {
        Stream::Listen => "NULL, auth, NULL, NULL, artist, song, duration, NULL",
        Stream::PageView => "page, auth, method, status, artist, song, duration, NULL",
        Stream::Auth => "NULL, NULL, NULL, NULL, NULL, NULL, NULL, success",
        Stream::StatusChange => "NULL, auth, NULL, NULL, NULL, NULL, NULL, NULL",
        Stream::Offer => panic!("raw.offer_events holds offers, not events"),
    };
    let sql = format!(
        "SELECT event_id, epoch_ms(ts), session_id, item_in_session, level, user_id, first_name, last_name, gender, \
         epoch_ms(registration), zip, city, state, lat, lon, user_agent, {extra} FROM raw.{} ORDER BY event_id",
        stream.topic()
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([], |r| {
        Ok(EventRecord {
            event_id: r.get(0)?,
            ts: r.get(1)?,
            session_id: r.get(2)?,
            item_in_session: r.get(3)?,
            level: r.get(4)?,
            user_id: r.get(5)?,
            first_name: r.get(6)?,
            last_name: r.get(7)?,
            gender: r.get(8)?,
            registration: r.get(9)?,
            zip: r.get(10)?,
            city: r.get(11)?,
            state: r.get(12)?,
            lat: r.get(13)?,
            lon: r.get(14)?,
            user_agent: r.get(15)?,
            page: r.get(16)?,
            auth: r.get(17)?,
            method: r.get(18)?,
            status: r.get(19)?,
            artist: r.get(20)?,
            song: r.get(21)?,
            duration: r.get(22)?,
            success: r.get(23)?,
        })
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

/// Events across all streams.
pub fn total(expected: &BTreeMap<Stream, Vec<EventRecord>>) -> usize {
    expected.values().map(Vec::len).sum()
}

/// Every expected event is in its raw table exactly once, with every field unchanged.
pub fn assert_exactly_once(scratch: &Scratch, expected: &BTreeMap<Stream, Vec<EventRecord>>) {
    assert_exactly_once_in(&scratch.path().join("w.duckdb"), expected);
}

/// As [`assert_exactly_once`], for the warehouse file at `path`.
pub fn assert_exactly_once_in(path: &Path, expected: &BTreeMap<Stream, Vec<EventRecord>>) {
    let conn = open_warehouse(path);
    for stream in Stream::EVENTS {
        let (rows, distinct) = raw_counts(&conn, stream.topic());
        let want = &expected[&stream];
        assert_eq!(rows, distinct, "{stream}: duplicate event ids");
        assert_eq!(
            rows as usize,
            want.len(),
            "{stream}: {rows} rows landed, {} produced",
            want.len()
        );
        let got = raw_records(&conn, stream);
        assert!(
            got == sorted(want.clone()),
            "{stream}: landed rows differ from the produced events"
        );
    }
}

/// A `playlog consume` process writing to the scratch directory's `w.duckdb`, serving metrics on a free port.
pub struct ConsumeProcess {
    pub process: Background,
    pub metrics: String,
}

pub fn start_consumer(
    broker: &Broker,
    scratch: &Scratch,
    name: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> ConsumeProcess {
    let metrics = format!("127.0.0.1:{}", free_port());
    start_consumer_at(broker, scratch, name, &metrics, extra, envs)
}

/// As [`start_consumer`], serving metrics on `metrics` (a restarted consumer keeps its scrape target).
pub fn start_consumer_at(
    broker: &Broker,
    scratch: &Scratch,
    name: &str,
    metrics: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> ConsumeProcess {
    let file = scratch.path().join("w.duckdb");
    start_consumer_into(broker, scratch, name, metrics, &file, extra, envs)
}

/// As [`start_consumer_at`], writing to the DuckDB file at `file`.
pub fn start_consumer_into(
    broker: &Broker,
    scratch: &Scratch,
    name: &str,
    metrics: &str,
    file: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> ConsumeProcess {
    let metrics = metrics.to_owned();
    let warehouse = format!("duckdb:{}", file.display());
    let mut args = vec![
        "consume",
        "--brokers",
        &broker.address,
        "--warehouse",
        &warehouse,
        "--metrics-addr",
        &metrics,
        "-X",
        "session.timeout.ms=6000",
    ];
    args.extend_from_slice(extra);
    let process = Background::spawn(&args, envs, scratch.path().join(format!("{name}.log")));
    ConsumeProcess { process, metrics }
}

/// A consumer that flushes every 200 ms, runs the vault every 2 s and serves the dashboard and API on
/// `addr` (its requests logged at debug level in its log).
pub fn start_serving_consumer(broker: &Broker, scratch: &Scratch, addr: &str) -> ConsumeProcess {
    start_consumer(
        broker,
        scratch,
        "consumer",
        &[
            "--flush-interval",
            "200ms",
            "--vault-every",
            "2s",
            "--serve",
            addr,
        ],
        &[("PLAYLOG_LOG", "info,playlog_serve=debug")],
    )
}

/// `playlog_rows_ingested_total` of the process serving metrics at `addr`; -1 while nothing answers.
pub fn rows_ingested_at(addr: &str) -> f64 {
    scrape(addr).map_or(-1.0, |s| metric_sum(&s, "playlog_rows_ingested_total"))
}

impl ConsumeProcess {
    pub fn rows_ingested(&self) -> f64 {
        rows_ingested_at(&self.metrics)
    }

    /// Waits until `want` rows have landed (at most `timeout`), then stops the consumer with SIGTERM,
    /// which must end it cleanly.
    pub fn land_and_stop(&mut self, want: usize, timeout: Duration) {
        assert!(
            wait_for(timeout, || self.rows_ingested() >= want as f64),
            "rows landed: {} of {want}\n{}",
            self.rows_ingested(),
            self.process.output()
        );
        assert!(
            self.process.terminate(Duration::from_secs(30)),
            "SIGTERM must end the consumer cleanly:\n{}",
            self.process.output()
        );
    }

    pub fn metric(&self, name: &str) -> f64 {
        scrape(&self.metrics).map_or(-1.0, |s| metric_sum(&s, name))
    }
}

/// Runs `playlog produce` against the broker with `window` flags (a backfill), and checks it succeeded.
pub fn produce_to(broker: &Broker, window: &[&str]) {
    let mut args = vec!["produce", "-q", "--brokers", &broker.address];
    args.extend_from_slice(window);
    assert_success(&playlog(&args, &[]), "playlog produce");
}

/// Starts `playlog produce --continuous --speed SPEED` over `window` in the background, logging to the
/// scratch directory's `producer.log`.
pub fn spawn_continuous_producer(
    broker: &Broker,
    scratch: &Scratch,
    window: &[&str],
    speed: &str,
) -> Background {
    let mut args = vec![
        "produce",
        "-q",
        "--brokers",
        broker.address.as_str(),
        "--continuous",
        "--speed",
        speed,
    ];
    args.extend_from_slice(window);
    Background::spawn(&args, &[], scratch.path().join("producer.log"))
}

/// bqemulator (PyPI), a BigQuery emulator, started through `scripts/start-bqemulator.py` with the
/// virtualenv `scripts/install-deps.sh` makes. `persistent` keeps its data in the scratch directory, so
/// that it can be stopped and started again (the retry test).
pub struct BigQueryEmulator {
    child: Option<Child>,
    pub port: u16,
    persistent: bool,
    pub scratch: Scratch,
}

impl BigQueryEmulator {
    pub fn start(persistent: bool) -> BigQueryEmulator {
        let mut emulator = BigQueryEmulator {
            child: None,
            port: free_port(),
            persistent,
            scratch: Scratch::new("bqemulator"),
        };
        emulator.restart();
        emulator
    }

    /// `host:port`, for `--bigquery-endpoint`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn python() -> PathBuf {
        if let Ok(p) = std::env::var("PLAYLOG_BQEMULATOR_PYTHON") {
            return PathBuf::from(p);
        }
        let cache = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("playlog/bqemulator-1.4.0/bin/python")
    }

    /// Starts the emulator process (again), and waits until its REST API answers.
    pub fn restart(&mut self) {
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/start-bqemulator.py");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.path().join("bqemulator.log"))
            .unwrap();
        let rest = self.port.to_string();
        let grpc = free_port().to_string();
        let data = self.scratch.path().join("data");
        let mut args = vec![
            launcher.display().to_string(),
            "start".into(),
            "--rest-port".into(),
            rest,
            "--grpc-port".into(),
            grpc,
            "--project".into(),
            "test".into(),
            "--log-level".into(),
            "warning".into(),
        ];
        if self.persistent {
            std::fs::create_dir_all(&data).unwrap();
            args.extend([
                "--persistent".into(),
                "--data-dir".into(),
                data.display().to_string(),
            ]);
        }
        let child = Command::new(Self::python())
            .args(&args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting bqemulator with {} (install it with scripts/install-deps.sh): {e}",
                    Self::python().display()
                )
            });
        self.child = Some(child);
        let ready = wait_for(Duration::from_secs(60), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(
            ready,
            "bqemulator did not listen on {} within 60 s; see {}",
            self.port,
            self.scratch.path().display()
        );
    }

    /// Kills the emulator: BigQuery is unavailable until `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for BigQueryEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real Prometheus (Debian's `prometheus` package) scraping `targets` every second and evaluating
/// Playlog's rules file every second; its TSDB lives in the scratch directory.
pub struct Prometheus {
    child: Child,
    pub address: String,
    pub scratch: Scratch,
}

impl Prometheus {
    /// `targets`: (job, host:port). `rules`: rule files, loaded as Prometheus loads them in production.
    pub fn start(targets: &[(&str, &str)], rules: &[PathBuf]) -> Prometheus {
        let scratch = Scratch::new("prometheus");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n",
        );
        for r in rules {
            config.push_str(&format!("  - {}\n", r.canonicalize().unwrap().display()));
        }
        config.push_str("scrape_configs:\n");
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs: [{{targets: [\"{target}\"]}}]\n"
            ));
        }
        let config_path = scratch.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(scratch.path().join("prometheus.log")).unwrap();
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {bin} (apt-get install prometheus, or scripts/install-deps.sh): {e}"
                )
            });
        let prometheus = Prometheus {
            child,
            address,
            scratch,
        };
        let ready = wait_for(Duration::from_secs(30), || {
            ureq::get(format!("http://{}/-/ready", prometheus.address))
                .call()
                .is_ok()
        });
        assert!(
            ready,
            "Prometheus not ready within 30 s; see {}",
            prometheus.scratch.path().display()
        );
        prometheus
    }

    /// `GET /api/v1/<path>` with query parameters; the response's `data`.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> serde_json::Value {
        let mut request = ureq::get(format!("http://{}/api/v1/{path}", self.address));
        for (k, v) in params {
            request = request.query(*k, *v);
        }
        let body: serde_json::Value = request
            .call()
            .unwrap_or_else(|e| panic!("Prometheus /api/v1/{path} {params:?}: {e}"))
            .body_mut()
            .read_json()
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"].clone()
    }

    /// An instant query's result vector (empty: the expression returned no data).
    pub fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let data = self.api("query", &[("query", expr)]);
        match data["result"].as_array() {
            Some(series) => series.clone(),
            // A scalar (`time()`) is data.
            None => vec![data["result"].clone()],
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
