//! The Kafka sink: an idempotent producer with `acks=all` (rdkafka over librdkafka, built from
//! source: Debian's librdkafka 2.0.2 cannot talk to tansu, and rskafka has no consumer groups
//! for the back office), and the outbox position in a file beside the journal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use switchyard_protocol::bus::BusEvent;

use super::Sink;
use crate::config::BusSection;

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    /// Next journal sequence number to publish, as decimal text; replaced atomically.
    offset_path: PathBuf,
    /// Awaits delivery reports (the outbox thread is not async).
    rt: tokio::runtime::Runtime,
    futures: Vec<DeliveryFuture>,
}

impl KafkaSink {
    pub fn new(cfg: &BusSection, offset_path: PathBuf) -> Result<KafkaSink, String> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.bootstrap_servers)
            .set("client.id", &cfg.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", cfg.linger_ms.to_string())
            .set("batch.size", "1000000")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "2000000")
            .set("queue.buffering.max.kbytes", "1048576")
            // A delivery that cannot complete within this fails, and the outbox publishes the
            // batch again from its stored position.
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| format!("creating the Kafka producer: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| format!("outbox runtime: {e}"))?;
        Ok(KafkaSink {
            producer,
            topic: cfg.topic.clone(),
            offset_path,
            rt,
            futures: Vec::new(),
        })
    }
}

impl Sink for KafkaSink {
    fn resume_at(&mut self) -> Result<u64, String> {
        read_position(&self.offset_path)
    }

    fn publish(&mut self, events: &[BusEvent], next_seq: u64) -> Result<(), String> {
        self.futures.clear();
        for e in events {
            let payload = e.encode();
            let mut record = FutureRecord::to(&self.topic).key(e.key()).payload(&payload);
            loop {
                match self.producer.send_result(record) {
                    Ok(f) => {
                        self.futures.push(f);
                        break;
                    }
                    // The local queue is full: let librdkafka drain it, then try again.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        self.producer.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => return Err(format!("produce: {e}")),
                }
            }
        }
        let futures = std::mem::take(&mut self.futures);
        let outcome = self.rt.block_on(async {
            let mut first_error = None;
            for f in futures {
                match f.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => {
                        first_error.get_or_insert(format!("delivery: {e}"));
                    }
                    Err(_) => {
                        first_error.get_or_insert("delivery: producer dropped".to_string());
                    }
                }
            }
            first_error
        });
        if let Some(e) = outcome {
            return Err(e);
        }
        write_position(&self.offset_path, next_seq)
            .map_err(|e| format!("writing {}: {e}", self.offset_path.display()))
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

/// The stored position; a missing file is the journal's start. An unreadable one is kept
/// aside (`<name>.bad.<ms>`) and publishing starts over from the first record: consumers drop
/// the duplicates.
fn read_position(path: &Path) -> Result<u64, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => match s.trim().parse::<u64>() {
            Ok(n) => Ok(n.max(1)),
            Err(_) => {
                let bad = path.with_extension(format!("bad.{}", crate::clock::wall_ms()));
                tracing::error!(path = %path.display(), kept = %bad.display(),
                    "outbox position unreadable; publishing from the journal's start");
                std::fs::rename(path, &bad).map_err(|e| e.to_string())?;
                Ok(1)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(1),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Replaces the position file atomically and durably (temp file, fsync, rename, dir fsync).
fn write_position(path: &Path, next_seq: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{next_seq}")?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the position survives as written, starts at 1 when missing, and an unreadable
    // file is set aside instead of stopping the outbox.
    #[test]
    fn position_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("outbox.offset");
        assert_eq!(read_position(&p).unwrap(), 1);
        write_position(&p, 42).unwrap();
        assert_eq!(read_position(&p).unwrap(), 42);
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(read_position(&p).unwrap(), 1);
        assert!(!p.exists());
        let kept = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".bad."));
        assert!(kept);
    }
}
