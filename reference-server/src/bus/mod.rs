//! The room bus over Redis (`--redis URL`): rooms that span processes and
//! nodes, with one gap-free seq per room.
//!
//! - A chat goes to the [`publisher`], which runs the Lua script of
//!   [`script`] (INCR seq, append to the capped history, PUBLISH) in
//!   pipelined batches and acks the sender with the seq Redis assigned.
//! - The [`subscriber`] task owns the node's one pub/sub connection: it
//!   subscribes a room's channel while the node has local members, and is
//!   the only code that delivers chat to local members, in seq order.
//! - Envelopes (node-to-node format) live in [`envelope`].
//!
//! The hub calls [`Bus`] for join/leave/chat/resume when a bus is set.

pub mod envelope;
pub mod presence;
pub mod publisher;
pub mod script;
pub mod subscriber;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::peer::Peer;
use crate::server::Shared;

/// Chats waiting for the publisher; beyond it a chat is refused (counted).
const PUBLISH_QUEUE: usize = 65_536;
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One chat to sequence and publish.
pub struct ChatCmd {
    pub peer: Arc<Peer>,
    pub room: Arc<str>,
    pub id: Box<RawValue>,
    /// The envelope's JSON body ([`envelope::chat_body`]).
    pub body: String,
}

/// Subscription and replay requests, in the order the hub made them.
pub enum Ctl {
    /// The node's first local member joined `room`.
    Subscribe(Arc<str>),
    /// The node's last local member left `room`.
    Unsubscribe(Arc<str>),
    /// A connection of `user` joined (+1) or left (-1) `room`.
    Presence {
        room: Arc<str>,
        user: Arc<str>,
        conn: u64,
        delta: i64,
    },
    /// Replay history after `after` to `peer`, then `resumed`.
    Resume {
        peer: Arc<Peer>,
        room: Arc<str>,
        after: u64,
    },
}

/// The hub's handle on the bus.
#[derive(Debug)]
pub struct Bus {
    node: Arc<str>,
    chats: mpsc::Sender<ChatCmd>,
    ctl: mpsc::UnboundedSender<Ctl>,
    metrics: Arc<Metrics>,
}

impl Bus {
    /// This node's id, carried in every chat so the origin skips its sender.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Queues a chat for the publisher; gives it back when 65,536 wait
    /// already (the caller refuses it with `UNAVAILABLE`).
    pub fn chat(&self, cmd: ChatCmd) -> Result<(), ChatCmd> {
        self.chats.try_send(cmd).map_err(|e| e.into_inner())
    }

    pub fn ctl(&self, c: Ctl) {
        // Fails only once the subscriber is gone (shutdown).
        let _ = self.ctl.send(c);
    }

    /// False while the node cannot reach Redis (`/healthz` says degraded).
    pub fn is_up(&self) -> bool {
        self.metrics.bus_up.load(Ordering::Relaxed) == 1
    }
}

/// The chat service's instance id (see [`probe`]).
const INSTANCE_KEY: &str = "bench:instance";

/// Connects once and PINGs: the start-up check behind "Redis down at start
/// is an error unless `--redis-optional`".
pub async fn probe(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url).with_context(|| format!("bad --redis URL {url}"))?;
    let check = async {
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        // One instance id for every node on this Redis: they are one chat
        // service with one seq per room, so a client that reconnects to
        // another node must not take it for a restarted server.
        let _: Option<String> = redis::cmd("SET")
            .arg(INSTANCE_KEY)
            .arg(crate::instance::id())
            .arg("NX")
            .query_async(&mut c)
            .await?;
        let id: String = redis::cmd("GET")
            .arg(INSTANCE_KEY)
            .query_async(&mut c)
            .await?;
        crate::instance::adopt(id);
        Ok::<_, redis::RedisError>(())
    };
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("cannot reach Redis at {url}: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "cannot reach Redis at {url}: no answer within {PROBE_TIMEOUT:?}"
        )),
    }
}

/// Starts the publisher and subscriber when `--redis` is set and hands the
/// hub its [`Bus`]; returns the tasks to abort at shutdown.
pub fn start(shared: &Arc<Shared>) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let Some(url) = shared.config.redis.clone() else {
        return Ok(Vec::new());
    };
    let client =
        redis::Client::open(url.as_str()).with_context(|| format!("bad --redis URL {url}"))?;
    let node: Arc<str> = Arc::from(node_id().as_str());
    let (chats_tx, chats_rx) = mpsc::channel(PUBLISH_QUEUE);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    shared.metrics.bus_enabled.store(1, Ordering::Relaxed);
    shared.hub.set_bus(Bus {
        node: node.clone(),
        chats: chats_tx,
        ctl: ctl_tx,
        metrics: shared.metrics.clone(),
    });
    tracing::info!(%url, %node, "room bus over Redis");
    Ok(vec![
        tokio::spawn(publisher::run(client.clone(), chats_rx, shared.clone())),
        tokio::spawn(subscriber::run(
            client.clone(),
            ctl_rx,
            shared.clone(),
            node.clone(),
        )),
        tokio::spawn(presence::liveness(
            client,
            node,
            shared.config.redis_node_ttl,
        )),
    ])
}

/// Unique enough across processes and restarts: pid and start time.
fn node_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}
