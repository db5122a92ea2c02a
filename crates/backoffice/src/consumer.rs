//! The Kafka consumer: reads the bus topic in a consumer group and books it, batch by batch,
//! one database transaction per partition batch.
//!
//! The database, not Kafka's committed offsets, says where each partition continues: the
//! position is stored in the same transaction as the books, so after any crash the two agree.
//! When the group assigns a partition, the consumer starts it at the stored position (the
//! rebalance callback sets the offsets before the assignment takes effect; a partition never
//! booked starts at the beginning). Offsets are also committed to Kafka after each batch, for
//! lag tooling only. Should the consumer start a partition too early (another instance moved
//! it on meanwhile), [`BackOffice::apply_records`] drops what lies below the stored position.
//!
//! Failures do not stop it: a broker outage is retried by librdkafka and logged here; a
//! database error retries the same batch with a growing pause until it succeeds or the
//! consumer is told to stop.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::config::KafkaConfig;
use crate::{BackOffice, Record};

/// Longest pause between retries of a failing batch.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);
/// How often the partitions' ends are fetched for `/stats`' lag.
const WATERMARK_INTERVAL: Duration = Duration::from_secs(5);
/// How long closing the consumer may take before it is abandoned (librdkafka can block on
/// close against some brokers).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Next offset per partition of the topic, as last stored in the database.
type Positions = Arc<Mutex<HashMap<i32, i64>>>;

/// Starts assigned partitions at the positions the database holds.
struct Context {
    /// The start offsets to give assigned partitions (shared with the consumer loop, which
    /// moves them on after each stored batch).
    positions: Positions,
    /// The topic the positions belong to; other topics start at the beginning.
    topic: String,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let positions = self
                    .positions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let parts: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                for (topic, partition) in parts {
                    let offset = match positions.get(&partition) {
                        Some(&next) if topic == self.topic => Offset::Offset(next),
                        _ => Offset::Beginning,
                    };
                    tracing::info!(%topic, partition, ?offset, "back office: partition assigned");
                    if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                        tracing::warn!(%e, partition, "back office: cannot set start offset");
                    }
                }
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(count = tpl.count(), "back office: partitions revoked");
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(?other, "back office: rebalance error");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(%e, "back office: applying the rebalance failed");
        }
    }
}

/// One message, copied out of librdkafka's buffer.
struct Owned {
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
}

/// Runs the consumer until `shutdown` turns true. Returns an error only for what retrying
/// cannot fix (an invalid client configuration).
pub async fn run(
    backoffice: BackOffice,
    cfg: KafkaConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Some(stored) = load_positions(&backoffice, &cfg.topic, &mut shutdown).await else {
        return Ok(());
    };
    let positions: Positions = Arc::new(Mutex::new(stored));
    let consumer = Arc::new(create(&cfg, positions.clone())?);
    consumer.subscribe(&[&cfg.topic])?;
    tracing::info!(topic = %cfg.topic, group = %cfg.group_id, "back office: consuming");
    let mut last_error_log: Option<Instant> = None;
    let mut watermarks: Option<tokio::task::JoinHandle<()>> = None;
    let mut next_watermarks = Instant::now();
    while !*shutdown.borrow() {
        let batch = match next_batch(&consumer, &cfg, &mut shutdown).await {
            Ok(b) => b,
            Err(e) => {
                // Broker down, topic missing, …: librdkafka reconnects by itself; log at
                // most every 5 s so an outage does not flood the log.
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    tracing::warn!(%e, "back office: Kafka error (retrying)");
                    last_error_log = Some(Instant::now());
                }
                pause(&mut shutdown, Duration::from_millis(200)).await;
                continue;
            }
        };
        for (partition, records) in group_by_partition(batch) {
            let Some(next) =
                book(&backoffice, &cfg.topic, partition, &records, &mut shutdown).await
            else {
                break;
            };
            positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(partition, next);
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(&cfg.topic, partition, Offset::Offset(next))
                .is_ok()
            {
                if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                    tracing::debug!(%e, "back office: Kafka offset commit failed (not needed)");
                }
            }
        }
        if Instant::now() >= next_watermarks && watermarks.as_ref().is_none_or(|h| h.is_finished())
        {
            next_watermarks = Instant::now() + WATERMARK_INTERVAL;
            watermarks = Some(spawn_watermarks(
                &consumer,
                &backoffice,
                &cfg.topic,
                &positions,
            ));
        }
    }
    // The watermark task holds the consumer too: let it finish, so the close below drops
    // the last reference.
    if let Some(h) = watermarks {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, h).await;
    }
    close(consumer).await;
    Ok(())
}

fn create(cfg: &KafkaConfig, positions: Positions) -> KafkaResult<StreamConsumer<Context>> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers)
        .set("group.id", &cfg.group_id)
        .set("client.id", &cfg.client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A topic created after the subscription (or partitions added) is seen within 10 s
        // rather than librdkafka's default 5 min.
        .set("topic.metadata.refresh.interval.ms", "10000");
    for (k, v) in &cfg.properties {
        c.set(k, v);
    }
    c.create_with_context(Context {
        positions,
        topic: cfg.topic.clone(),
    })
}

/// The topic's stored positions; retried until the database answers (or shutdown: `None`).
async fn load_positions(
    bo: &BackOffice,
    topic: &str,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<HashMap<i32, i64>> {
    let mut wait = Duration::from_millis(200);
    loop {
        match bo.positions_all().await {
            Ok(all) => {
                return Some(
                    all.into_iter()
                        .filter(|p| p.stream == topic)
                        .map(|p| (p.partition, p.next_offset))
                        .collect(),
                )
            }
            Err(e) => tracing::warn!(%e, "back office: reading stream positions (retrying)"),
        }
        if !pause(shutdown, wait).await {
            return None;
        }
        wait = (wait * 2).min(RETRY_PAUSE_MAX);
    }
}

/// Waits for a first message, then takes more until `batch_max` or `batch_wait_ms` after
/// the first. Empty on shutdown, and when no message came within `WATERMARK_INTERVAL`.
async fn next_batch(
    consumer: &StreamConsumer<Context>,
    cfg: &KafkaConfig,
    shutdown: &mut watch::Receiver<bool>,
) -> KafkaResult<Vec<Owned>> {
    let copy = |m: &rdkafka::message::BorrowedMessage<'_>| Owned {
        partition: m.partition(),
        offset: m.offset(),
        payload: m.payload().map(<[u8]>::to_vec),
    };
    let first = tokio::select! {
        m = consumer.recv() => copy(&m?),
        _ = shutdown.changed() => return Ok(Vec::new()),
        // Nothing for a while: return, so that the caller refreshes the watermarks. A
        // consumer that receives nothing — caught up, or stalled (e.g. left without an
        // assignment after a broker outage) — must still report its true lag, or the lag
        // alert never fires for a stall.
        _ = tokio::time::sleep(WATERMARK_INTERVAL) => return Ok(Vec::new()),
    };
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.batch_wait_ms);
    while batch.len() < cfg.batch_max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => batch.push(copy(&m)),
            // An error after the first message: book what we have, the next call sees it.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    Ok(batch)
}

fn group_by_partition(batch: Vec<Owned>) -> BTreeMap<i32, Vec<Owned>> {
    let mut by: BTreeMap<i32, Vec<Owned>> = BTreeMap::new();
    for m in batch {
        by.entry(m.partition).or_default().push(m);
    }
    by
}

/// Books one partition's batch, retrying until it is stored. Returns the next offset, or
/// `None` on shutdown.
async fn book(
    bo: &BackOffice,
    topic: &str,
    partition: i32,
    messages: &[Owned],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<i64> {
    let records: Vec<Record<'_>> = messages
        .iter()
        .map(|m| Record {
            offset: m.offset,
            payload: m.payload.as_deref(),
        })
        .collect();
    let mut wait = Duration::from_millis(100);
    loop {
        match bo.apply_records(topic, partition, &records).await {
            Ok(stats) => {
                tracing::debug!(partition, ?stats, "back office: batch booked");
                return records.last().map(|r| r.offset + 1);
            }
            Err(e) => tracing::warn!(%e, partition, "back office: booking failed (retrying)"),
        }
        if !pause(shutdown, wait).await {
            return None;
        }
        wait = (wait * 2).min(RETRY_PAUSE_MAX);
    }
}

/// Sleeps `d`; false when shutdown came first.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.changed() => false,
    }
}

/// Fetches the end of every partition this consumer has booked from, off the async
/// workers (the call blocks).
fn spawn_watermarks(
    consumer: &Arc<StreamConsumer<Context>>,
    bo: &BackOffice,
    topic: &str,
    positions: &Positions,
) -> tokio::task::JoinHandle<()> {
    let (consumer, bo, topic) = (consumer.clone(), bo.clone(), topic.to_owned());
    let partitions: Vec<i32> = positions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .keys()
        .copied()
        .collect();
    tokio::task::spawn_blocking(move || {
        for p in partitions {
            if let Ok((_, high)) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(1)) {
                bo.set_high_watermark(&topic, p, high);
            }
        }
    })
}

/// Leaves the group and drops the consumer, giving up after `CLOSE_TIMEOUT`. The drop runs
/// on a detached thread of its own: it blocks until librdkafka has closed, which against some
/// brokers never happens, and a runtime's blocking pool would wait for it at shutdown.
async fn close(consumer: Arc<StreamConsumer<Context>>) {
    consumer.unsubscribe();
    let (done, dropped) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("backoffice-kafka-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = done.send(());
        });
    if spawned.is_err() || tokio::time::timeout(CLOSE_TIMEOUT, dropped).await.is_err() {
        tracing::warn!("back office: the Kafka consumer did not close in time; abandoned");
    }
}
