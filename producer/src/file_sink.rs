//! JSON lines without Kafka: to standard output, one file, or one file per stream in a directory (as
//! eventsim writes them).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use playlog_model::{Event, Stream};

use crate::sink::{EventSink, SinkError};

/// Where `--output` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    /// All streams in one file, interleaved in time order. A line's keys tell its stream: listens have
    /// `artist` but no `page`, auth events `success`, page views `page`.
    File(PathBuf),
    /// `<dir>/<topic>.json` per stream.
    Directory(PathBuf),
}

impl OutputTarget {
    pub fn parse(value: &str) -> OutputTarget {
        if value == "-" {
            OutputTarget::Stdout
        } else if value.ends_with('/') || Path::new(value).is_dir() {
            OutputTarget::Directory(PathBuf::from(value))
        } else {
            OutputTarget::File(PathBuf::from(value))
        }
    }
}

pub struct JsonLinesSink {
    writers: Vec<(String, Box<dyn Write + Send>)>,
    per_stream: bool,
    buf: Vec<u8>,
}

impl JsonLinesSink {
    pub fn open(target: &OutputTarget) -> Result<JsonLinesSink, SinkError> {
        let create = |path: &Path| -> Result<(String, Box<dyn Write + Send>), SinkError> {
            let name = path.display().to_string();
            let file = File::create(path).map_err(|source| SinkError::Io {
                target: name.clone(),
                source,
            })?;
            Ok((name, Box::new(BufWriter::with_capacity(1 << 20, file))))
        };
        let (writers, per_stream) = match target {
            OutputTarget::Stdout => (
                vec![(
                    "standard output".to_owned(),
                    Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout()))
                        as Box<dyn Write + Send>,
                )],
                false,
            ),
            OutputTarget::File(path) => (vec![create(path)?], false),
            OutputTarget::Directory(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
                    target: dir.display().to_string(),
                    source,
                })?;
                let writers = Stream::EVENTS
                    .iter()
                    .map(|s| create(&dir.join(format!("{}.json", s.topic()))))
                    .collect::<Result<_, _>>()?;
                (writers, true)
            }
        };
        Ok(JsonLinesSink {
            writers,
            per_stream,
            buf: Vec::with_capacity(1024),
        })
    }
}

impl EventSink for JsonLinesSink {
    fn send(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        self.buf.clear();
        playlog_model::json::encode_line(event, &mut self.buf);
        let slot = if self.per_stream {
            event.stream.index()
        } else {
            0
        };
        let (name, writer) = &mut self.writers[slot];
        writer.write_all(&self.buf).map_err(|source| SinkError::Io {
            target: name.clone(),
            source,
        })
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        for (name, writer) in &mut self.writers {
            writer.flush().map_err(|source| SinkError::Io {
                target: name.clone(),
                source,
            })?;
        }
        Ok(())
    }
}
