//! The deadline queue: every secret's next due time on tokio time, at most
//! `max_concurrent_rotations` rotations at once and `max_starts_per_minute` starts, never
//! two of one secret, a rotation starts only inside its window, retries with exponential
//! backoff, reloads that take effect at once, and a graceful drain.
//!
//! A sorted set of (deadline, name) and one `sleep_until` on the earliest, plus a sweep
//! (statuses, wall-clock check) once a minute while anything is due, rotating or waiting,
//! every five minutes when calm: O(log n) per change
//! (docs/architecture.md says why, BENCHMARKS.md has the measurements). The loop itself
//! never waits on AWS: due times are read by spawned
//! tasks that send their results back over a channel, so a slow ListSecrets pass delays
//! neither the watchdog nor other launches.
//!
//! Deadlines are kept in wall-clock time too: after a suspend or a clock step (the wall
//! clock and the monotonic clock disagree by more than [`CLOCK_JUMP`]) every deadline is
//! re-derived from its wall-clock time.

use crate::clock::Clock;
use crate::config::GroupConfig;
use crate::config::{Config, DaemonConfig, SecretConfig};
use crate::due::{due_times, DueInfo, DueStatus, Unfinished};
use crate::error::{AwsError, ErrorClass};
use crate::group::GroupView;
use crate::ids::GroupName;
use crate::ids::{SecretName, VersionId};
use crate::notify::{Event, EventKind, NoNotifier, Notifier};
use crate::random::{OsRandom, Random};
use crate::rotation::deploy::Deployer;
use crate::rotation::store::SecretStore;
use crate::rotation::{Engine, Outcome, Report, RotateOptions, RotationError, Step};
use crate::schedule::{jitter_offset, next_opening, opening_containing};
use crate::telemetry::{self, Status, Telemetry};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// State the HTTP endpoints and the watchdog read.
#[derive(Default)]
pub struct Health {
    pub ready: AtomicBool,
    pub store_ok: AtomicBool,
    /// Unix seconds of the scheduler loop's last turn (for people: the watchdog and
    /// /healthz go by `turns`, which a wall-clock step does not move).
    pub heartbeat: AtomicU64,
    /// The scheduler loop's turns so far.
    pub turns: AtomicU64,
    /// Wakes the loop for a turn: each [`Liveness::check`] pokes it, so an idle loop need
    /// not wake on its own every few seconds to prove it is alive.
    pub poke: tokio::sync::Notify,
    /// A pass of due-time reads ended (start, reload, periodic refresh): what it
    /// allocated is garbage now (the daemon returns it to the system).
    pub pass_done: tokio::sync::Notify,
    pub status: std::sync::Mutex<String>,
    /// The status line changed: the daemon passes it on to systemd then, instead of
    /// waking on a timer to repeat an unchanged line (idle wake-ups, issue 16).
    pub status_changed: tokio::sync::Notify,
}

/// Whether the scheduler loop still turns, for the systemd watchdog and /healthz: its
/// turn counter must have moved within the limit, on the monotonic clock (a wall-clock
/// step or a suspend says nothing about the loop). Each check pokes the loop, so a live
/// one has turned by the next check however idle it is.
#[derive(Debug)]
pub struct Liveness {
    seen: u64,
    moved: Instant,
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new()
    }
}

impl Liveness {
    pub fn new() -> Self {
        Self {
            seen: 0,
            moved: Instant::now(),
        }
    }

    /// True while the loop turned within `limit` of now (or since this was made).
    pub fn check(&mut self, health: &Health, limit: Duration) -> bool {
        let turns = health.turns.load(Ordering::Relaxed);
        let now = Instant::now();
        if turns != self.seen {
            self.seen = turns;
            self.moved = now;
        }
        health.poke.notify_one();
        now.duration_since(self.moved) <= limit
    }
}

/// What the daemon tells a running [`Scheduler`].
pub enum Control {
    /// A new, already validated configuration (SIGHUP): applied at once, see `reload`.
    Reload(Box<Config>),
    /// Stop starting rotations and drain (SIGTERM); closing the channel does the same.
    Shutdown,
}

/// One configured secret.
///
/// Where it is in the scheduler's machinery is one [`State`]. The other fields are what
/// the scheduler knows about it, and stay apart from the state on purpose:
/// - `due`, `replaces`, `status` and `needs_due`: the last due-time read and whether it
///   is stale. A stale due time waits in the timer queue (a retry's backoff, a lease
///   held elsewhere) or the waiting line like a fresh one, and is re-read before the
///   rotation starts.
/// - `reading`: a read of this secret alone is in flight, started at this generation.
///   The read task outlives the state it was started in (a batch result may schedule
///   and start the secret first); it only keeps a second read of the same generation
///   from starting. A read of an older generation is dropped when it lands, so a newer
///   one is started beside it (else the secret would wait for nothing).
/// - `failures` and `refused`: the failed rotations in a row. A failing secret waits
///   for its retry in the timer queue, then queues and runs like any other.
/// - `outside_window`: the last launch found the window closed. It holds until a
///   rotation starts, across the re-scheduling a refresh does, so the "outside its
///   window" line is logged once and the status gauge does not flicker.
struct Entry {
    cfg: Arc<SecretConfig>,
    state: State,
    due: Option<DateTime<Utc>>,
    replaces: Option<KeptVersion>,
    status: DueStatus,
    /// The due time is unknown or stale (never read, after a rotation, before a retry):
    /// read it before rotating.
    needs_due: bool,
    /// The generation at which the read of this secret alone in flight was started; 0:
    /// none (generations are never 0; no `Option`, 4 bytes less per secret).
    reading: u32,
    /// Failed reads in a row (the secret cannot be read); saturates, like the backoff.
    read_failures: u16,
    failures: u32,
    /// The last failure was the target refusing the value, at this step (set or test): the
    /// retry makes a new value. A refusal at `set` itself (the target's own error, not a
    /// timeout) leaves the target unchanged, so that retry is a new rotation, held to the
    /// window.
    refused: Option<Step>,
    /// Due, but its window is closed: requeued at the next opening.
    outside_window: bool,
    /// The status last published (the sweep publishes only changes).
    shown: Option<Status>,
    /// A new value, unique in this scheduler, whenever the entry is made, a rotation
    /// starts or the config changes, so that the result of a read started before is not
    /// applied over newer knowledge (nor a removed entry's read to its re-added successor).
    generation: u32,
}

// One per secret, in a hash map at 100,000 secrets: 88 bytes (+ its 16-byte key).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Entry>() <= 88);

/// The entries, each under its configuration's name: a `HashMap<SecretName, Entry>` held
/// every name a second time as its key (16 bytes a secret in 1.3 buckets a secret).
#[derive(Default)]
struct Entries {
    table: hashbrown::HashTable<Entry>,
    hasher: std::hash::RandomState,
}

impl Entries {
    fn hash(&self, name: &SecretName) -> u64 {
        self.hasher.hash_one(name)
    }

    fn get(&self, name: &SecretName) -> Option<&Entry> {
        self.table.find(self.hash(name), |e| &e.cfg.name == name)
    }

    fn get_mut(&mut self, name: &SecretName) -> Option<&mut Entry> {
        let h = self.hash(name);
        self.table.find_mut(h, |e| &e.cfg.name == name)
    }

    fn contains_key(&self, name: &SecretName) -> bool {
        self.get(name).is_some()
    }

    /// Inserts `e` under its name, in place of an entry of that name.
    fn insert(&mut self, e: Entry) {
        let h = self.hash(&e.cfg.name);
        let Entries { table, hasher } = self;
        match table.entry(
            h,
            |x| x.cfg.name == e.cfg.name,
            |x| hasher.hash_one(&x.cfg.name),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut o) => *o.get_mut() = e,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(e);
            }
        }
    }

    fn remove(&mut self, name: &SecretName) -> Option<Entry> {
        let h = self.hash(name);
        let found = self.table.find_entry(h, |e| &e.cfg.name == name).ok()?;
        Some(found.remove().0)
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn values(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.table.iter_mut()
    }
}

/// The AWSCURRENT version an entry's due time refers to, as every entry keeps it:
/// Secrets Manager's version ids and our tokens are lowercase UUIDs, kept as 16 bytes
/// inline instead of 36 characters on the heap (~64 bytes a secret at 100,000 secrets);
/// any other id as its text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum KeptVersion {
    Uuid(uuid::Bytes),
    Text(VersionId),
}

impl KeptVersion {
    fn new(v: &VersionId) -> Self {
        match uuid::Uuid::try_parse(v.as_str()) {
            // Only when the id reads back exactly (an upper-case or braced form does not).
            Ok(u)
                if u.hyphenated()
                    .encode_lower(&mut uuid::Uuid::encode_buffer())
                    == v.as_str() =>
            {
                KeptVersion::Uuid(*u.as_bytes())
            }
            _ => KeptVersion::Text(v.clone()),
        }
    }

    fn id(&self) -> VersionId {
        match self {
            KeptVersion::Uuid(b) => VersionId::new(uuid::Uuid::from_bytes(*b).to_string()),
            KeptVersion::Text(v) => v.clone(),
        }
    }
}

/// Where a secret is in the scheduler: in exactly one place at a time.
enum State {
    /// Nowhere: waits for a due-time read (in flight, or the batch at start or after a
    /// reload) to schedule it.
    Idle,
    /// In the timer queue at `deadline`, the monotonic instant for the wall-clock `wall`
    /// (re-derived from it after a clock jump).
    Timed { deadline: Tick, wall: DateTime<Utc> },
    /// Due: in the waiting line for a rotation slot. (The line may hold stale names of
    /// secrets rescheduled since; this state is the truth.)
    Queued,
    /// A rotation task runs (or tries to take the lease). A reload meanwhile leaves the
    /// new config in `next_cfg`, applied when the task ends, or marks the secret
    /// `removed`, dropped when the task ends.
    Running {
        next_cfg: Option<Arc<SecretConfig>>,
        removed: bool,
        /// A reload came during the run: its failure-count reset applies when it ends.
        reloaded: bool,
    },
    /// `max_attempts` failed rotations in a row: left alone until a reload, or until a
    /// refresh (which reads given-up secrets too) finds it rotated by someone else (a
    /// manual `rotate`, another replica).
    GaveUp,
}

/// What a reload left for the end of a run.
#[derive(Default)]
struct AfterRun {
    next_cfg: Option<Arc<SecretConfig>>,
    removed: bool,
}

enum Done {
    /// The last field: a `started` event was sent (the rotation reached its first step).
    Rotated(SecretName, Result<Report, RotationError>, Instant, bool),
    /// Another replica holds the secret's lease: nothing was done; try again after this.
    Busy(SecretName, Duration),
    /// The rotation task panicked (a bug): counted and retried like a failure.
    Panicked(SecretName, Instant),
}

/// A due-time result sent back by a read task.
enum DueMsg {
    One {
        name: SecretName,
        generation: u32,
        single: bool,
        result: Result<DueInfo, AwsError>,
    },
    /// A batch read panicked before it answered for this secret.
    Unanswered { name: SecretName, generation: u32 },
    /// A batch read finished: how many secrets it reached the store for, of how many.
    BatchDone { reached: usize, total: usize },
    /// A group's progress as its members' stored state showed it (read with them).
    Group {
        group: Arc<GroupConfig>,
        view: GroupView,
    },
}

/// What the scheduler last read of a group (for its gauges; decisions are re-read).
struct GroupSeen {
    cfg: Arc<GroupConfig>,
    view: GroupView,
}

/// Decides when each configured secret rotates, and runs the rotations on an [`Engine`].
///
/// Holds one entry per secret (where it is: idle, in the timer queue, in the waiting line,
/// running, or given up; and its last due-time read), the timer queue of deadlines, the
/// waiting line of due secrets, and the rotation tasks in flight. Due times come from the
/// store only (read by tasks, see [`crate::due`]), so a restart neither repeats nor skips
/// a rotation. Build it with [`Scheduler::new`] (and [`Scheduler::with_ha`] when several
/// replicas share the configuration), then drive it with [`Scheduler::run`].
pub struct Scheduler<S, D> {
    engine: Arc<Engine<S, D>>,
    clock: Arc<dyn Clock>,
    settings: DaemonConfig,
    entries: Entries,
    queue: Timers,
    waiting: VecDeque<SecretName>,
    tasks: JoinSet<Done>,
    due_tx: mpsc::UnboundedSender<DueMsg>,
    due_rx: mpsc::UnboundedReceiver<DueMsg>,
    /// Batch reads in flight (the periodic refresh starts none while one runs).
    batches: usize,
    /// Rotation starts in the last minute.
    starts: VecDeque<Instant>,
    /// (wall, monotonic) at the last clock check.
    clock_base: (DateTime<Utc>, Instant),
    health: Arc<Health>,
    status_at: Option<Instant>,
    /// A status line was held back by [`STATUS_EVERY`]: the loop wakes to write it.
    status_stale: bool,
    /// `[ha]`: rotations take the secret's lease first.
    ha: Option<Arc<crate::ha::Ha>>,
    /// The sweep's time came: the next turn sweeps the statuses (the first turn too).
    sweep_due: bool,
    /// When the next sweep is due (see [`SWEEP_EVERY`] and [`CALM_SWEEP_EVERY`]).
    next_sweep: Instant,
    /// When the last sweep ran.
    swept_at: Instant,
    /// The engine's sink: the scheduler reports through the same one.
    telemetry: Arc<dyn Telemetry>,
    /// Where the replica skew comes from (the OS; a seeded source in the simulation).
    random: Arc<dyn Random>,
    /// Due times get the replica skew: only when several replicas may run this
    /// configuration (`[ha] lock_table` set, or `replicas` > 1; applied on restart: a
    /// setup with a lock table and `replicas` left at 1 runs several too). One daemon has
    /// no one to stagger against,
    /// and the skew spread every secret due at one instant over 5 s: a burst of 1,000 took
    /// 5 s to drain at any concurrency (BENCHMARKS.md, section 4).
    skew: bool,
    /// The last generation given to an entry (see [`Entry::generation`]).
    generations: u32,
    /// Where rotation events go (webhooks, Slack, SNS; nowhere by default).
    notifier: Arc<dyn Notifier>,
    /// Each `[[group]]`'s last read progress.
    groups: HashMap<GroupName, GroupSeen>,
}

const STATUS_EVERY: Duration = Duration::from_secs(5);
/// How often every secret's status is recomputed (due -> overdue and the like) and the
/// wall clock checked while any secret is due, rotating or waiting: the loop wakes at
/// least this often then. Overdue means an hour late, so a minute of delay is invisible.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The same when the daemon is calm (no rotation running, none waiting for a slot, no
/// secret due or overdue; failing secrets waiting for their retry and secrets waiting for
/// their window are calm): then no status changes with the passing of time alone (the
/// next one comes with a deadline, which wakes the loop), and the sweep only checks the
/// wall clock. Idle, the daemon wakes
/// this seldom (and at the watchdog's pokes): a minute's sweep cost 3 to 5 wake-ups and
/// ~50 ms of CPU at 100,000 secrets (issue 16). A clock step or a suspend is noticed
/// within this period then.
const CALM_SWEEP_EVERY: Duration = Duration::from_secs(300);
/// Wall clock and monotonic clock disagreeing by more than this: a suspend or a step.
const CLOCK_JUMP: chrono::Duration = chrono::Duration::seconds(5);
/// A secret due longer ago than this and still not rotated is "overdue", not just "due".
const OVERDUE_AFTER: chrono::Duration = chrono::Duration::hours(1);
const MINUTE: Duration = Duration::from_secs(60);

fn ts(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64
}

impl<S: SecretStore, D: Deployer> Scheduler<S, D> {
    pub fn new(
        engine: Arc<Engine<S, D>>,
        clock: Arc<dyn Clock>,
        cfg: &Config,
        health: Arc<Health>,
    ) -> Self {
        let (due_tx, due_rx) = mpsc::unbounded_channel();
        let clock_base = (clock.now(), Instant::now());
        let mut s = Self {
            telemetry: engine.telemetry.clone(),
            engine,
            clock,
            settings: cfg.daemon.clone(),
            entries: Entries::default(),
            queue: Timers::new(Instant::now()),
            waiting: VecDeque::new(),
            tasks: JoinSet::new(),
            due_tx,
            due_rx,
            batches: 0,
            starts: VecDeque::new(),
            clock_base,
            health,
            status_at: None,
            status_stale: false,
            ha: None,
            sweep_due: true,
            next_sweep: Instant::now(),
            swept_at: Instant::now(),
            random: Arc::new(OsRandom),
            generations: 0,
            notifier: Arc::new(NoNotifier),
            groups: HashMap::new(),
            skew: cfg.ha.enabled() || cfg.ha.replicas > 1,
        };
        for c in &cfg.secrets {
            s.insert_entry(c.clone());
        }
        s.telemetry.secrets_configured(cfg.secrets.len());
        s
    }

    /// Rotations take the secret's lease from `ha` first (several replicas).
    pub fn with_ha(mut self, ha: Option<Arc<crate::ha::Ha>>) -> Self {
        self.ha = ha;
        self
    }

    /// Where rotation events go (default: nowhere).
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// The source of the replica skew (default: the OS).
    pub fn with_random(mut self, random: Arc<dyn Random>) -> Self {
        self.random = random;
        self
    }

    /// A new entry, with its series exported at once (status "loading") so that a secret
    /// that is never readable still shows up in monitoring.
    fn insert_entry(&mut self, cfg: Arc<SecretConfig>) {
        let every = cfg.every.get().as_secs_f64();
        // Registered first: a sink may take the interval from the configuration (the
        // Prometheus one does), and a scrape between the two calls then sees it.
        self.telemetry.register_secret(&cfg);
        telemetry::update(self.telemetry.as_ref(), &cfg.name, |s| {
            s.every = every;
        });
        let generation = self.next_generation();
        self.entries.insert(Entry::new(cfg, generation));
    }

    /// Wraps after 4 billion, skipping 0 (`Entry::reading`'s none): a read result is
    /// mistaken for a newer one only if it stayed in flight that long (4 bytes less in
    /// every entry than a `u64`).
    fn next_generation(&mut self) -> u32 {
        self.generations = following(self.generations);
        self.generations
    }

    /// Reads every due time from the store inline (benchmarks and tests; the daemon's loop
    /// reads them in a task instead, see [`Self::run`]).
    pub async fn load_due_times(&mut self) {
        let cfgs: Vec<Arc<SecretConfig>> = self
            .entries
            .values()
            .filter(|e| !e.is_running())
            .map(|e| e.cfg.clone())
            .collect();
        let refs: Vec<&SecretConfig> = cfgs.iter().map(|c| c.as_ref()).collect();
        let results = due_times(&self.engine.store, &refs, self.clock.now()).await;
        let mut reached = 0;
        for (cfg, r) in cfgs.iter().zip(results) {
            reached += usize::from(reached_store(&r));
            self.apply_due(&cfg.name, r, false);
        }
        self.health
            .store_ok
            .store(reached > 0 || cfgs.is_empty(), Ordering::Relaxed);
    }

    /// Starts a read of these secrets' due times in a task; results arrive on `due_rx`.
    fn start_batch(&mut self, names: Vec<SecretName>) {
        let items = self.with_groups(&names);
        if items.is_empty() {
            return;
        }
        self.batches += 1;
        let engine = self.engine.clone();
        let tx = self.due_tx.clone();
        let now = self.clock.now();
        tokio::spawn(async move {
            let refs: Vec<&SecretConfig> = items.iter().map(|(c, _)| c.as_ref()).collect();
            let mut reached = 0usize;
            let mut answered = vec![false; items.len()];
            let read = crate::group::due_times_each(
                &engine.store,
                &refs,
                now,
                |i, result| {
                    reached += usize::from(reached_store(&result));
                    answered[i] = true;
                    let (cfg, generation) = &items[i];
                    let _ = tx.send(DueMsg::One {
                        name: cfg.name.clone(),
                        generation: *generation,
                        single: false,
                        result,
                    });
                },
                group_sender(&tx),
            );
            // A panic in a read is a bug; the secrets it did not answer are told so (see
            // `on_due`: unread ones count as a failed read, known ones keep their schedule).
            if AssertUnwindSafe(read).catch_unwind().await.is_err() {
                tracing::error!("reading due times panicked");
                for (i, _) in answered.iter().enumerate().filter(|(_, a)| !**a) {
                    let (cfg, generation) = &items[i];
                    let _ = tx.send(DueMsg::Unanswered {
                        name: cfg.name.clone(),
                        generation: *generation,
                    });
                }
            }
            // The pass's own buffers go before it says it is done: the daemon returns
            // freed memory to the system on that message, and at 100,000 secrets these
            // lists (megabytes) freed just after it stayed in the allocator's arenas.
            let total = items.len();
            drop(refs);
            drop(answered);
            drop(items);
            let _ = tx.send(DueMsg::BatchDone { reached, total });
        });
    }

    /// Reads one secret's due time in a task (after a rotation, before a retry).
    fn start_read(&mut self, name: &SecretName) {
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.reading == e.generation {
            return;
        }
        e.reading = e.generation;
        let cfg = e.cfg.clone();
        let generation = e.generation;
        if cfg.group.is_some() {
            self.start_group_read(cfg, generation);
            return;
        }
        let engine = self.engine.clone();
        let tx = self.due_tx.clone();
        let now = self.clock.now();
        tokio::spawn(async move {
            let one = [cfg.as_ref()];
            let read = due_times(&engine.store, &one, now);
            let result = match AssertUnwindSafe(read).catch_unwind().await {
                Ok(mut r) => r.pop(),
                Err(_) => None,
            }
            .unwrap_or_else(|| Err(read_panicked()));
            let _ = tx.send(DueMsg::One {
                name: cfg.name.clone(),
                generation,
                single: true,
                result,
            });
        });
    }

    /// The batch's secrets, each group member with its whole group (a stage's turn
    /// depends on the stages before it), once each, with their generations.
    fn with_groups(&self, names: &[SecretName]) -> Vec<(Arc<SecretConfig>, u32)> {
        let mut seen: HashSet<&SecretName> = HashSet::new();
        let mut items = Vec::with_capacity(names.len());
        for n in names {
            let Some(e) = self.entries.get(n) else {
                continue;
            };
            let members: Vec<&SecretName> = match &e.cfg.group {
                Some(g) => g.members.iter().collect(),
                None => vec![n],
            };
            for m in members {
                if let Some(me) = self.entries.get(m) {
                    if seen.insert(&me.cfg.name) {
                        items.push((me.cfg.clone(), me.generation));
                    }
                }
            }
        }
        items
    }

    /// Reads a group member's due time with its whole group, in a task; the other
    /// members' answers come as a batch's (they refresh what is known of them).
    fn start_group_read(&mut self, cfg: Arc<SecretConfig>, generation: u32) {
        let items = self.with_groups(std::slice::from_ref(&cfg.name));
        let engine = self.engine.clone();
        let tx = self.due_tx.clone();
        let now = self.clock.now();
        tokio::spawn(async move {
            let refs: Vec<&SecretConfig> = items.iter().map(|(c, _)| c.as_ref()).collect();
            let mut answered = vec![false; items.len()];
            let read = crate::group::due_times_each(
                &engine.store,
                &refs,
                now,
                |i, result| {
                    answered[i] = true;
                    let (c, g) = &items[i];
                    let single = c.name == cfg.name;
                    let _ = tx.send(DueMsg::One {
                        name: c.name.clone(),
                        generation: if single { generation } else { *g },
                        single,
                        result,
                    });
                },
                group_sender(&tx),
            );
            let ok = AssertUnwindSafe(read).catch_unwind().await.is_ok();
            let asked = items.iter().position(|(c, _)| c.name == cfg.name);
            if !ok || asked.is_some_and(|i| !answered[i]) {
                let _ = tx.send(DueMsg::One {
                    name: cfg.name.clone(),
                    generation,
                    single: true,
                    result: Err(read_panicked()),
                });
            }
        });
    }

    fn on_due(&mut self, msg: DueMsg) {
        match msg {
            DueMsg::Group { group, view } => {
                let name = group.name.clone();
                self.groups
                    .insert(name.clone(), GroupSeen { cfg: group, view });
                self.publish_group(&name);
            }
            DueMsg::Unanswered { name, generation } => {
                let Some(e) = self.entries.get(&name) else {
                    return;
                };
                // Only a secret whose due time is unknown is owed a read (after the
                // backoff); one already scheduled keeps its deadline until the next read.
                if !e.is_running() && e.generation == generation && e.needs_due {
                    self.apply_due(&name, Err(read_panicked()), false);
                }
            }
            DueMsg::BatchDone { reached, total } => {
                self.batches = self.batches.saturating_sub(1);
                self.health.pass_done.notify_one();
                self.health
                    .store_ok
                    .store(reached > 0 || total == 0, Ordering::Relaxed);
            }
            DueMsg::One {
                name,
                generation,
                single,
                result,
            } => {
                let Some(e) = self.entries.get_mut(&name) else {
                    return;
                };
                if single && e.reading == generation {
                    e.reading = 0;
                }
                // (A removed secret is still running.)
                if e.is_running() || e.generation != generation {
                    // Read before a rotation or a reload: what we know now is newer.
                    return;
                }
                let gave_up = matches!(e.state, State::GaveUp);
                // A failing group stage waits for its retry's own read (which checks the
                // group again), not for a read its group's other stages asked for.
                if !single && e.cfg.group.is_some() && e.failures > 0 && !gave_up {
                    return;
                }
                if !single
                    && !e.needs_due
                    && !gave_up
                    && (e.failures > 0 || matches!(e.state, State::Queued))
                {
                    // A refresh must not reschedule a secret that waits for a retry (its
                    // backoff) or is already in the waiting line.
                    return;
                }
                self.apply_due(&name, result, single);
            }
        }
    }

    fn apply_due(&mut self, name: &SecretName, r: Result<DueInfo, AwsError>, single: bool) {
        let now = self.clock.now();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        let m = self.telemetry.clone();
        match r {
            Ok(d) => {
                let gave_up = matches!(e.state, State::GaveUp);
                let mut retry = single && e.failures > 0 && !gave_up;
                // A waiting group stage's due time is only its next look, not a sign that
                // someone else rotated it.
                let finished_elsewhere = if d.group_wait {
                    // A failing stage stays its group's current one until it succeeds:
                    // done or waiting now, someone else finished it.
                    !d.group_owed
                } else {
                    d.status == DueStatus::Scheduled && d.due > now
                };
                if (retry || gave_up) && finished_elsewhere {
                    // Someone else (another replica, a manual rotate) finished it while we
                    // waited for the retry or after we gave up: nothing is owed until the
                    // next due time.
                    tracing::info!(secret = %name, "rotated by another rotator since our failure; no retry needed");
                    retry = false;
                    e.failures = 0;
                    e.refused = None;
                    e.give_up_no_more();
                    telemetry::update(m.as_ref(), name, |s| {
                        s.failures = 0;
                        s.gave_up = false;
                    });
                }
                e.needs_due = false;
                e.read_failures = 0;
                e.due = Some(d.due);
                e.replaces = d.current.as_ref().map(KeptVersion::new);
                e.status = d.status;
                if let Some(p) = d.tag_problem {
                    tracing::warn!(secret = %name, problem = p.label(), "the secret-rotator:last-rotated tag is not used ({}); {}", if p == crate::due::TagProblem::Future { "it is in the future" } else { "it is not an RFC 3339 time" }, if p == crate::due::TagProblem::Future { "the secret is due now" } else { "treated as absent" });
                    m.invalid_tag(name, p.label());
                }
                if let DueStatus::Unfinished(u) = d.status {
                    tracing::info!(secret = %name, state = u.describe(), "an unfinished rotation of ours is in the store; due now, as a resume");
                }
                let failing = e.failures > 0;
                let verified = d.verified.map_or(0.0, ts);
                // Without our tag, the last rotation is AWSCURRENT's creation date; when
                // that value is ours and its consumers are unconfirmed, it is no success.
                let unconfirmed = d.verified.is_none() && d.status.resume_only();
                // A waiting group stage's due time is only its next look: people and
                // alerts see its expected start.
                let shown_due = match (d.group_wait, d.group_expected) {
                    (true, Some(e)) => e,
                    _ => d.due,
                };
                telemetry::update(m.as_ref(), name, |s| {
                    s.next_due = ts(shown_due);
                    if !unconfirmed {
                        s.last_success = d.last_rotated.map_or(0.0, ts);
                    }
                    s.verified = s.verified.max(verified);
                    s.readable = Some(true);
                    s.failing = failing;
                });
                if d.group_wait {
                    // Not this stage's turn (or its group is held): look again later; the
                    // look is a read, never a start. A failing stage keeps its count.
                    if !matches!(e.state, State::GaveUp) {
                        Self::schedule_wall(&mut self.queue, self.clock_base, name, e, d.due);
                        e.needs_due = true;
                    }
                } else if retry {
                    // The backoff has passed; the state is fresh: retry now.
                    Self::schedule_wall(&mut self.queue, self.clock_base, name, e, now);
                } else if !matches!(e.state, State::GaveUp) && e.failures == 0 {
                    let skew = if self.skew {
                        replica_skew(self.random.as_ref(), name, e.cfg.every.get())
                    } else {
                        Duration::ZERO
                    };
                    let skew = chrono::Duration::from_std(skew).unwrap_or_default();
                    Self::schedule_wall(&mut self.queue, self.clock_base, name, e, d.due + skew);
                    // A group stage is read again just before it starts: a hold written
                    // meanwhile (or an earlier stage's change) must stop it.
                    if e.cfg.group.is_some() && d.due + skew > now {
                        e.needs_due = true;
                    }
                }
                tracing::debug!(secret = %name, due = %d.due, "due time");
            }
            Err(err) => {
                e.needs_due = true;
                e.read_failures = e.read_failures.saturating_add(1);
                let delay = backoff(&self.settings, u32::from(e.read_failures));
                tracing::warn!(secret = %name, secret_id = %e.cfg.secret.id, failures = e.read_failures, retry_in = %crate::config::duration::format(delay), error = %err, "cannot read the secret; it cannot be rotated until it can (will retry)");
                telemetry::update(m.as_ref(), name, |s| {
                    s.readable = Some(false);
                    s.failing = true;
                    // Unknown due time: due since it was first found unreadable.
                    if s.next_due == 0.0 {
                        s.next_due = ts(now);
                    }
                });
                // A given-up secret stays given up: the refresh reads it again anyway.
                if !matches!(e.state, State::GaveUp) {
                    let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    Self::schedule_wall(&mut self.queue, self.clock_base, name, e, at);
                }
            }
        }
        self.publish(name);
    }

    /// Schedules `e` at wall-clock time `at` (now if past). Cancels a place in the
    /// waiting line: one secret is in at most one of the two.
    fn schedule_wall(
        queue: &mut Timers,
        base: (DateTime<Utc>, Instant),
        name: &SecretName,
        e: &mut Entry,
        at: DateTime<Utc>,
    ) {
        Self::unschedule(queue, name, e);
        let deadline = queue.insert(instant_for(base, at), name);
        e.state = State::Timed { deadline, wall: at };
    }

    /// Takes `e` out of the timer queue or the waiting line; a running or given-up secret
    /// stays as it is.
    fn unschedule(queue: &mut Timers, name: &SecretName, e: &mut Entry) {
        match e.state {
            State::Timed { deadline, .. } => {
                queue.remove(deadline, name);
                e.state = State::Idle;
            }
            State::Queued => e.state = State::Idle,
            State::Idle | State::Running { .. } | State::GaveUp => {}
        }
    }

    /// Runs until `Control::Shutdown` (or the control channel closes), then drains.
    ///
    /// At start, the due times not known yet are read by a batch task. Each turn of the
    /// loop then beats the heartbeat and waits for the first of: the earliest deadline (or
    /// a start slot freeing up, or a held-back status line), the minute's wake-up, a poke
    /// (the watchdog's), a rotation task ending, a due-time result, a control message, or
    /// the periodic refresh (one batch read of the idle secrets at a time). After each
    /// event it checks the wall clock (re-deriving deadlines after a jump), moves every
    /// passed deadline to the waiting line (`fire`) and starts what slots, the start rate
    /// and the windows allow (`launch`). The loop
    /// itself never awaits the store; only the drain awaits the tasks in flight, for at
    /// most `shutdown_grace`.
    pub async fn run(mut self, mut control: mpsc::Receiver<Control>) {
        // Secrets whose due time is unknown are read in the background; the loop runs now.
        // In name order, not the HashMap's (random per process): secrets due at the same
        // moment then start in the same order on every run (a simulation replays).
        let mut unknown: Vec<SecretName> = self
            .entries
            .values()
            .filter(|e| {
                e.needs_due && !matches!(e.state, State::Running { .. } | State::Timed { .. })
            })
            .map(|e| e.cfg.name.clone())
            .collect();
        unknown.sort_unstable();
        self.start_batch(unknown);
        let mut refresh = tokio::time::interval_at(
            Instant::now() + self.settings.refresh,
            self.settings.refresh,
        );
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let health = self.health.clone();
        loop {
            self.beat();
            let next = self.next_wake();
            // Biased: events ready at the same moment are taken in this order, not in one
            // drawn from the runtime's random seed (no branch stays ready for long: each
            // is a timer that fire() moves on, a finite queue, or a channel).
            tokio::select! {
                biased;
                _ = sleep_until_opt(next) => {}
                // The sweep runs on its timer itself: timed by elapsed time, a timer a
                // hair early would skip it and double its period.
                _ = tokio::time::sleep_until(self.next_sweep) => self.sweep_due = true,
                _ = health.poke.notified() => {}
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match done {
                        Ok(d) => self.finished(d),
                        // Panics are caught inside the task; this is a cancellation.
                        Err(e) => tracing::error!(error = %e, "a rotation task ended abnormally"),
                    }
                }
                Some(msg) = self.due_rx.recv() => self.on_due(msg),
                ctl = control.recv() => match ctl {
                    Some(Control::Reload(cfg)) => self.reload(*cfg),
                    Some(Control::Shutdown) | None => break,
                },
                _ = refresh.tick() => {
                    // One periodic refresh at a time: at 100,000 secrets a pass takes a while.
                    if self.batches == 0 {
                        // Given-up secrets too: a manual rotate may have finished them.
                        let mut idle: Vec<SecretName> = self.entries.values()
                            .filter(|e| matches!(e.state, State::GaveUp) || (!matches!(e.state, State::Running { .. } | State::Queued) && e.failures == 0 && !e.needs_due))
                            .map(|e| e.cfg.name.clone()).collect();
                        idle.sort_unstable();
                        self.start_batch(idle);
                    }
                }
            }
            // Before firing: a deadline reached after a clock step is re-derived first
            // (idle, the loop may not have turned since the step).
            self.check_clock();
            self.fire();
            self.launch();
            // Work came after a calm sweep: statuses can change with time again.
            if !self.tasks.is_empty() || !self.waiting.is_empty() {
                self.next_sweep = self.next_sweep.min(self.swept_at + SWEEP_EVERY);
            }
        }
        self.drain().await;
    }

    /// The earliest of: the first deadline, and (when work waits only for the start rate
    /// limit) the moment a start slot frees up.
    fn next_wake(&self) -> Option<Instant> {
        let first = self.queue.first();
        let limited = !self.waiting.is_empty()
            && self.starts.len() >= self.max_starts()
            && self.tasks.len() < self.settings.max_concurrent_rotations;
        let rate = if limited {
            self.starts.front().map(|t| *t + MINUTE)
        } else {
            None
        };
        // A status line held back by its rate limit is written when the limit allows.
        let status = self
            .status_at
            .filter(|_| self.status_stale)
            .map(|t| t + STATUS_EVERY);
        [first, rate, status].into_iter().flatten().min()
    }

    fn max_starts(&self) -> usize {
        self.settings.max_starts_per_minute.max(1) as usize
    }

    /// Re-derives every deadline from its wall-clock time when the wall clock and the
    /// monotonic clock disagree (suspend, clock step): tokio deadlines alone would fire
    /// late (or early) until the next refresh.
    fn check_clock(&mut self) {
        let wall = self.clock.now();
        let mono = Instant::now();
        let (w0, m0) = self.clock_base;
        let expected = w0 + chrono::Duration::from_std(mono - m0).unwrap_or_default();
        let jump = wall - expected;
        self.clock_base = (wall, mono);
        if jump.abs() <= CLOCK_JUMP {
            return;
        }
        tracing::warn!(
            jump_seconds = jump.num_seconds(),
            "the wall clock jumped (suspend or clock step); re-deriving deadlines"
        );
        let base = self.clock_base;
        let mut queue = Timers::new(self.queue.origin);
        for e in self.entries.values_mut() {
            if let State::Timed { deadline, wall } = &mut e.state {
                *deadline = queue.insert(instant_for(base, *wall), &e.cfg.name);
            }
        }
        self.queue = queue;
    }

    fn beat(&mut self) {
        let now_wall = self.clock.now();
        let now = now_wall.timestamp().max(0) as u64;
        self.health.heartbeat.store(now, Ordering::Relaxed);
        self.health.turns.fetch_add(1, Ordering::Relaxed);
        if std::mem::take(&mut self.sweep_due) {
            self.sweep();
        }
        // The status line scans every entry: at most every few seconds, not per event.
        if self.status_at.is_some_and(|t| t.elapsed() < STATUS_EVERY) {
            self.status_stale = true;
            return;
        }
        self.status_at = Some(Instant::now());
        self.status_stale = false;
        let failing = self
            .entries
            .values()
            .filter(|e| e.failures > 0 || e.read_failures > 0)
            .count();
        let pending = self.entries.values().filter(|e| e.due.is_none()).count();
        self.telemetry.due_times_pending(pending);
        let next = self.queue.names().find_map(|n| {
            self.entries
                .get(n)
                .filter(|e| !e.needs_due)
                .and_then(|e| e.due.map(|d| (n, d)))
        });
        let loading = if pending > 0 {
            format!(", {pending} due times loading or unreadable")
        } else {
            String::new()
        };
        let status = match next {
            Some((n, d)) => format!(
                "{} secrets, {} rotating, {failing} failing{loading}; next due: {n} at {}",
                self.entries.len(),
                self.tasks.len(),
                d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => format!(
                "{} secrets, {} rotating, {failing} failing{loading}",
                self.entries.len(),
                self.tasks.len()
            ),
        };
        if let Ok(mut s) = self.health.status.lock() {
            if *s != status {
                *s = status;
                self.health.status_changed.notify_one();
            }
        }
    }

    /// Sets a group's gauges: each stage's state, held, halted (its current stage is
    /// failing, so the stages after it wait).
    fn publish_group(&self, group: &GroupName) {
        let Some(seen) = self.groups.get(group) else {
            return;
        };
        let halted = self.halted_stage(seen).is_some();
        self.telemetry.group_progress(&seen.cfg, &seen.view, halted);
    }

    /// The stage that halts the group, if any: a failing one (the last stage too: the
    /// next cycle waits for it), or one that cannot be read.
    fn halted_stage(&self, seen: &GroupSeen) -> Option<usize> {
        seen.cfg.members.iter().enumerate().position(|(i, m)| {
            matches!(
                seen.view.stages.get(i),
                Some(crate::group::StageState::Unknown)
            ) || self.entries.get(m).is_some_and(|e| {
                e.failures > 0 || e.read_failures > 0 || matches!(e.state, State::GaveUp)
            })
        })
    }

    /// Sets the secret's status gauge from what the scheduler knows.
    fn publish(&mut self, name: &SecretName) {
        let now = self.clock.now();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        if e.is_removed() {
            return;
        }
        if show(self.telemetry.as_ref(), name, e, now) {
            overdue(self.notifier.as_ref(), e, now);
        }
    }

    /// Publishes the statuses that the passing of time changed (due -> overdue and the
    /// like). Computing 100,000 statuses takes about a millisecond; telling the telemetry
    /// of each took a tenth of a second of CPU, every sweep (BENCHMARKS.md, section 3).
    fn sweep(&mut self) {
        let now = self.clock.now();
        let mut calm = self.tasks.is_empty() && self.waiting.is_empty();
        for e in self.entries.values_mut() {
            if e.is_removed() {
                continue;
            }
            let status = status_of(e, now);
            // These change with time alone (due -> overdue). A window's opening comes
            // with a deadline, which wakes the loop: not these.
            calm &= !matches!(status, Status::Due | Status::Overdue);
            if e.shown != Some(status) {
                let name = e.cfg.name.clone();
                if show(self.telemetry.as_ref(), &name, e, now) {
                    overdue(self.notifier.as_ref(), e, now);
                }
            }
        }
        self.swept_at = Instant::now();
        self.next_sweep = self.swept_at + if calm { CALM_SWEEP_EVERY } else { SWEEP_EVERY };
    }

    /// Moves every entry whose deadline has passed to the waiting line (once).
    fn fire(&mut self) {
        let now = Instant::now();
        while let Some(name) = self.queue.pop_passed(now) {
            if let Some(e) = self.entries.get_mut(&name) {
                if matches!(e.state, State::Timed { .. }) {
                    e.state = State::Queued;
                    self.waiting.push_back(name);
                }
            }
        }
    }

    /// Starts waiting work while slots (and start-rate budget) are free. Reads of unknown
    /// due times take no slot; a rotation starts only inside its window, unless the new
    /// value is already current (what is left is a redeploy, which may finish outside).
    fn launch(&mut self) {
        let now = Instant::now();
        while self.starts.front().is_some_and(|t| now - *t >= MINUTE) {
            self.starts.pop_front();
        }
        let wall = self.clock.now();
        let max_starts = self.max_starts();
        while self.tasks.len() < self.settings.max_concurrent_rotations {
            let Some(name) = self.waiting.pop_front() else {
                break;
            };
            // Taken before the entry is borrowed; unused when it does not start.
            let generation = self.next_generation();
            let Some(e) = self.entries.get_mut(&name) else {
                continue;
            };
            if !matches!(e.state, State::Queued) {
                continue; // rescheduled since it was queued
            }
            e.state = State::Idle;
            if e.needs_due {
                self.start_read(&name);
                continue;
            }
            // An unfinished rotation of ours is finished at once, even outside the window:
            // the target may already accept only the pending value (single-user PostgreSQL
            // from `set` on). That holds for a retry with a fresh value too when `set`
            // worked before `test` failed, or timed out: consumers reading AWSCURRENT are
            // locked out until a value is both set and current. A value `set` refused left
            // the target as it was: that retry is a new rotation and waits.
            let owed = matches!(e.status, DueStatus::Unfinished(_)) && e.refused != Some(Step::Set);
            if let Some(w) = e.cfg.window.as_deref() {
                if !owed && opening_containing(w, wall).is_none() {
                    let offset =
                        chrono::Duration::from_std(jitter_offset(&e.cfg.name, e.cfg.jitter.get()))
                            .unwrap_or_default();
                    let at = next_opening(w, wall).map_or(DateTime::<Utc>::MAX_UTC, |o| o + offset);
                    if !e.outside_window {
                        tracing::info!(secret = %name, window = %w, starts_at = %at, "due, but outside its window; waiting for the next opening");
                    }
                    e.outside_window = true;
                    Self::schedule_wall(&mut self.queue, self.clock_base, &name, e, at);
                    self.publish(&name);
                    continue;
                }
            }
            if self.starts.len() >= max_starts {
                // Spread out: back to the front of the line until a start slot frees up.
                e.state = State::Queued;
                self.waiting.push_front(name);
                break;
            }
            self.starts.push_back(now);
            e.outside_window = false;
            e.state = State::Running {
                next_cfg: None,
                removed: false,
                reloaded: false,
            };
            e.generation = generation;
            let cfg = e.cfg.clone();
            let engine = self.engine.clone();
            let opts = RotateOptions {
                fresh: e.refused.is_some(),
                dry_run: false,
                replaces: e.replaces.as_ref().map(KeptVersion::id),
                resume_only: e.status.resume_only(),
            };
            let m = self.telemetry.clone();
            let started_at = ts(wall);
            telemetry::update(m.as_ref(), &name, |s| {
                s.in_progress = true;
                s.started = started_at;
            });
            m.rotations_running(1);
            tracing::info!(secret = %name, attempt = e.failures + 1, "rotation due; starting");
            show(m.as_ref(), &name, e, wall);
            let starting = Starting {
                notifier: self.notifier.clone(),
                event: std::sync::Mutex::new(Some(Event::new(
                    EventKind::Started,
                    &e.cfg,
                    wall,
                    e.failures + 1,
                ))),
            };
            let ha = self.ha.clone();
            let members: Vec<Arc<SecretConfig>> = if cfg.group.is_some() {
                self.with_groups(std::slice::from_ref(&name))
                    .into_iter()
                    .map(|(c, _)| c)
                    .collect()
            } else {
                vec![cfg.clone()]
            };
            let clock = self.clock.clone();
            self.tasks.spawn(async move {
                let started = Instant::now();
                let refs: Vec<&SecretConfig> = members.iter().map(|c| c.as_ref()).collect();
                // A group stage's turn is checked again on a fresh read just before it
                // starts: a hold written, or an earlier stage changed, since it was
                // scheduled (or queued behind a busy slot) must stop it.
                if cfg.group.is_some()
                    && !crate::group::may_start_now(&engine.store, &refs, &cfg, clock.now()).await
                {
                    return Done::Busy(cfg.name.clone(), GATE_RETRY);
                }
                // Boxed: the rotation future is large; keep it off the worker's stack.
                let rotation = Box::pin(crate::ha::rotate(
                    ha.as_deref(),
                    &engine,
                    &cfg,
                    opts,
                    &starting,
                    Some(&refs),
                ));
                let ended = AssertUnwindSafe(rotation).catch_unwind().await;
                let announced = starting.event.lock().map_or(true, |e| e.is_none());
                match ended {
                    Ok(crate::ha::Leased::Ran(r)) => {
                        Done::Rotated(cfg.name.clone(), r, started, announced)
                    }
                    Ok(crate::ha::Leased::Busy { retry_in, .. }) => {
                        Done::Busy(cfg.name.clone(), retry_in)
                    }
                    Err(_) => Done::Panicked(cfg.name.clone(), started),
                }
            });
        }
    }

    fn finished(&mut self, done: Done) {
        let (name, r, started, announced) = match done {
            Done::Rotated(n, r, s, a) => (n, Some(r), s, a),
            Done::Panicked(n, s) => (n, None, s, true),
            Done::Busy(n, retry_in) => {
                self.busy(&n, retry_in);
                return;
            }
        };
        let m = self.telemetry.clone();
        telemetry::update(m.as_ref(), &name, |s| s.in_progress = false);
        m.rotations_running(-1);
        let after = self.end_run(&name);
        let secs = started.elapsed().as_secs_f64();
        let outcome = match &r {
            Some(Ok(rep)) => rep.outcome,
            Some(Err(e)) => e.outcome(),
            None => Outcome::Failed,
        };
        if outcome != Outcome::AlreadyRotated {
            m.rotation_finished(&name, outcome.label(), secs);
        }
        if self.take_removed(&name, after.removed) {
            return;
        }
        self.tell_finished(&name, &r, announced);
        let group = self
            .entries
            .get(&name)
            .and_then(|e| e.cfg.group.as_ref().map(|g| g.name.clone()));
        match r {
            Some(Ok(rep)) => {
                tracing::info!(secret = %name, outcome = outcome.label(), version = rep.version.as_ref().map(|v| v.as_str()).unwrap_or("-"), "rotation finished");
                let verified = if outcome == Outcome::Success {
                    ts(self.clock.now())
                } else {
                    0.0
                };
                if let Some(e) = self.entries.get_mut(&name) {
                    e.failures = 0;
                    e.refused = None;
                    e.give_up_no_more();
                    // Read the new due time (a store call) in a task, like a rotation, so
                    // the loop never waits on AWS between two launches.
                    e.needs_due = true;
                    e.status = DueStatus::Scheduled;
                }
                telemetry::update(m.as_ref(), &name, |s| {
                    s.failures = 0;
                    s.failing = false;
                    s.gave_up = false;
                    s.verified = s.verified.max(verified);
                });
                self.apply_next_cfg(&name, after.next_cfg);
                self.start_read(&name);
            }
            Some(Err(err)) => {
                let refused = match &err {
                    RotationError::Target {
                        step: step @ (Step::Set | Step::Test),
                        ..
                    } => Some(*step),
                    _ => None,
                };
                self.failed(&name, refused, &err, after.next_cfg);
            }
            None => {
                self.failed(
                    &name,
                    None,
                    &"the rotation task panicked (a bug; the next attempt resumes from the store)",
                    after.next_cfg,
                );
            }
        }
        self.publish(&name);
        if let Some(g) = group {
            self.publish_group(&g);
        }
    }

    /// Tells the notifier how a rotation ended: succeeded, or failed (and, for a group
    /// stage with stages after it, that the group halted).
    fn tell_finished(
        &self,
        name: &SecretName,
        r: &Option<Result<Report, RotationError>>,
        announced: bool,
    ) {
        let Some(e) = self.entries.get(name) else {
            return;
        };
        let now = self.clock.now();
        let attempt = e.failures + 1;
        let failure = match r {
            Some(Ok(rep)) if rep.outcome == Outcome::Success => {
                let mut ev = Event::new(EventKind::Succeeded, &e.cfg, now, attempt);
                ev.outcome = Some(rep.outcome.label());
                ev.version = rep.version.clone();
                self.notifier.notify(ev);
                return;
            }
            // Started, then found done by another rotator (a token taken meanwhile): the
            // `started` gets its end (change records close), with that outcome.
            Some(Ok(rep)) if announced && rep.outcome == Outcome::AlreadyRotated => {
                let mut ev = Event::new(EventKind::Succeeded, &e.cfg, now, attempt);
                ev.outcome = Some(rep.outcome.label());
                ev.version = rep.version.clone();
                self.notifier.notify(ev);
                return;
            }
            Some(Ok(_)) => return,
            Some(Err(err)) => Event::new(EventKind::Failed, &e.cfg, now, attempt).with_failure(err),
            None => {
                let mut ev = Event::new(EventKind::Failed, &e.cfg, now, attempt);
                ev.outcome = Some(Outcome::Failed.label());
                ev.error = Some(
                    "the rotation task panicked (a bug; the next attempt resumes from the store)"
                        .into(),
                );
                ev
            }
        };
        let mut failed = failure;
        failed.action = Some(if attempt >= self.settings.max_attempts {
            format!("gave up after {attempt} attempts in a row: fix the cause, then run `secret-rotator rotate {name}` (or reload the daemon)")
        } else {
            "retried automatically with backoff; the retry resumes from the stored state".to_owned()
        });
        let halted = failed.group.as_ref().filter(|g| g.next.is_some()).map(|g| {
            let mut ev = failed.clone();
            ev.kind = EventKind::GroupHalted;
            ev.action = Some(format!(
                "the stages after {name} wait (not rotated) until it succeeds: its retry, or `secret-rotator rotate {name}` once fixed; `secret-rotator group {} hold` stops the group",
                g.group
            ));
            ev
        });
        self.notifier.notify(failed);
        if let Some(h) = halted {
            self.notifier.notify(h);
        }
    }

    /// Another replica holds the lease: nothing was done here, not a failure; the secret
    /// is tried again after `retry_in` (then its state is re-read: the other replica may
    /// have finished it).
    fn busy(&mut self, name: &SecretName, retry_in: Duration) {
        let m = self.telemetry.clone();
        telemetry::update(m.as_ref(), name, |s| s.in_progress = false);
        m.rotations_running(-1);
        let after = self.end_run(name);
        if self.take_removed(name, after.removed) {
            return;
        }
        self.apply_next_cfg(name, after.next_cfg);
        let at = self.clock.now() + chrono::Duration::from_std(retry_in).unwrap_or_default();
        if let Some(e) = self.entries.get_mut(name) {
            e.needs_due = true;
            Self::schedule_wall(&mut self.queue, self.clock_base, name, e, at);
        }
        self.publish(name);
    }

    /// Counts a failure and schedules the retry after the backoff. The retry first reads
    /// the secret again, so it knows whether the value already became current (then the
    /// retry is a redeploy and may run outside the window).
    fn failed(
        &mut self,
        name: &SecretName,
        refused: Option<Step>,
        err: &dyn std::fmt::Display,
        next_cfg: Option<Arc<SecretConfig>>,
    ) {
        let m = self.telemetry.clone();
        let max = self.settings.max_attempts;
        let now = self.clock.now();
        let Some(e) = self.entries.get_mut(name) else {
            return;
        };
        e.failures += 1;
        // Only a value the target refused is replaced; any other failure resumes the same
        // pending value (which may be another replica's rotation in flight).
        e.refused = refused;
        e.needs_due = true;
        let failures = e.failures;
        telemetry::update(m.as_ref(), name, |s| {
            s.failures = failures;
            s.failing = true;
        });
        if let Some(c) = next_cfg {
            e.cfg = c;
        }
        if e.failures >= max {
            telemetry::update(m.as_ref(), name, |s| s.gave_up = true);
            Self::unschedule(&mut self.queue, name, e);
            e.state = State::GaveUp;
            tracing::error!(secret = %name, failures = e.failures, error = %err, "rotation failed; giving up until the next reload or a manual rotation");
            return;
        }
        let delay = backoff(&self.settings, e.failures);
        tracing::error!(secret = %name, failures = e.failures, retry_in_seconds = delay.as_secs(), error = %err, "rotation failed; will retry");
        let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
        Self::schedule_wall(&mut self.queue, self.clock_base, name, e, at);
    }

    /// The end of a rotation task: the secret is nowhere until what follows schedules it.
    /// A reload during the run resets the failure counts now, before this run's outcome
    /// is counted (a reload is how an operator says "try again").
    fn end_run(&mut self, name: &SecretName) -> AfterRun {
        let Some(e) = self.entries.get_mut(name) else {
            return AfterRun::default();
        };
        if let State::Running { reloaded: true, .. } = e.state {
            reset_failures(self.telemetry.as_ref(), name, e);
        }
        match std::mem::replace(&mut e.state, State::Idle) {
            State::Running {
                next_cfg, removed, ..
            } => AfterRun { next_cfg, removed },
            // Not running (cannot happen: one task per secret); leave it where it was.
            other => {
                e.state = other;
                AfterRun::default()
            }
        }
    }

    fn apply_next_cfg(&mut self, name: &SecretName, next_cfg: Option<Arc<SecretConfig>>) {
        if let Some(e) = self.entries.get_mut(name) {
            if let Some(c) = next_cfg {
                e.cfg = c;
            }
        }
    }

    /// Drops an entry that a reload removed while it was running.
    fn take_removed(&mut self, name: &SecretName, removed: bool) -> bool {
        if removed && self.entries.contains_key(name) {
            self.entries.remove(name);
            self.telemetry.forget_secret(name);
            return true;
        }
        false
    }

    /// Applies a new (already validated) configuration. Failure counts reset: a reload is
    /// how an operator says "try again". Due times that are unknown, or were read with a
    /// schedule the reload changed, are re-read in the background.
    fn reload(&mut self, cfg: Config) {
        self.settings = cfg.daemon.clone();
        // A group removed or changed: its series go (a changed one is published again
        // by its next read), so a removed group cannot keep an alert firing.
        let stale: Vec<GroupName> = self
            .groups
            .iter()
            .filter(|(n, seen)| !cfg.groups.iter().any(|g| &g.name == *n && **g == *seen.cfg))
            .map(|(n, _)| n.clone())
            .collect();
        for n in stale {
            if let Some(seen) = self.groups.remove(&n) {
                self.telemetry.forget_group(&seen.cfg);
            }
        }
        let mut recompute = Vec::new();
        let mut named = Vec::new();
        let new_names: BTreeSet<&SecretName> = cfg.secrets.iter().map(|s| &s.name).collect();
        let old: Vec<SecretName> = self.entries.values().map(|e| e.cfg.name.clone()).collect();
        for name in old {
            if !new_names.contains(&name) {
                if let Some(mut e) = self.entries.remove(&name) {
                    Self::unschedule(&mut self.queue, &name, &mut e);
                    if let State::Running { removed, .. } = &mut e.state {
                        *removed = true;
                        self.entries.insert(e);
                    } else {
                        self.telemetry.forget_secret(&name);
                    }
                }
            }
        }
        self.waiting.retain(|n| new_names.contains(n));
        for c in cfg.secrets {
            let name = c.name.clone();
            let generation = self.next_generation();
            let every = c.every.get().as_secs_f64();
            match self.entries.get_mut(&name) {
                // The new config and the failure-count reset apply when the run ends. An
                // earlier reload's removal during this run is undone: it is configured.
                Some(Entry {
                    state:
                        State::Running {
                            next_cfg,
                            removed,
                            reloaded,
                        },
                    ..
                }) => {
                    self.telemetry.register_secret(&c);
                    *next_cfg = Some(c);
                    *removed = false;
                    *reloaded = true;
                    // The interval the alert deadline uses, like secret_info's: at once.
                    telemetry::update(self.telemetry.as_ref(), &name, |s| s.every = every);
                }
                Some(e) => {
                    self.telemetry.register_secret(&c);
                    // A new schedule (secret, interval, window, jitter) makes what was
                    // read with the old one stale: reads in flight are dropped, and the
                    // due time is read again before the secret starts (its deadline and
                    // place in line stay, so a slow re-read delays nothing). A reload that
                    // leaves the schedule as it was (a config agent's periodic SIGHUP)
                    // invalidates nothing.
                    if !same_schedule(&e.cfg, &c) {
                        e.generation = generation;
                        e.needs_due = true;
                    }
                    e.cfg = c;
                    reset_failures(self.telemetry.as_ref(), &name, e);
                    telemetry::update(self.telemetry.as_ref(), &name, |s| s.every = every);
                    // Read again what is unknown or stale (reset failures included), and
                    // what is scheduled nowhere (a given-up secret the refresh had read).
                    if e.needs_due || matches!(e.state, State::Idle) {
                        recompute.push(name.clone());
                    }
                    named.push(name);
                }
                None => {
                    self.insert_entry(c);
                    recompute.push(name.clone());
                    named.push(name);
                }
            }
        }
        self.telemetry
            .secrets_configured(self.entries.values().filter(|e| !e.is_removed()).count());
        for n in &named {
            self.publish(n);
        }
        self.start_batch(recompute);
        tracing::info!(secrets = self.entries.len(), "configuration reloaded");
    }

    /// Stops starting work and gives in-flight rotations the grace period; what is still
    /// running then is stopped where it is, which the next start resumes from the store.
    async fn drain(mut self) {
        let grace = self.settings.shutdown_grace;
        if !self.tasks.is_empty() {
            tracing::info!(
                running = self.tasks.len(),
                grace_seconds = grace.as_secs(),
                "stopping: waiting for rotations in flight"
            );
        }
        let deadline = Instant::now() + grace;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(d))) => self.finished(d),
                Ok(Some(Err(_))) | Ok(None) => {}
                Err(_) => {
                    tracing::warn!(running = self.tasks.len(), "grace period over: stopping rotations in flight; the next start resumes them");
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}

impl Entry {
    fn new(cfg: Arc<SecretConfig>, generation: u32) -> Self {
        Self {
            cfg,
            state: State::Idle,
            due: None,
            replaces: None,
            status: DueStatus::Scheduled,
            needs_due: true,
            reading: 0,
            read_failures: 0,
            failures: 0,
            refused: None,
            outside_window: false,
            shown: None,
            generation,
        }
    }

    fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Removed by a reload while running: dropped when the run ends.
    fn is_removed(&self) -> bool {
        matches!(self.state, State::Running { removed: true, .. })
    }

    /// A reset of the failure count (a success, a reload, someone else's rotation): a
    /// secret that had given up is back to waiting for a due-time read.
    fn give_up_no_more(&mut self) {
        if matches!(self.state, State::GaveUp) {
            self.state = State::Idle;
        }
    }
}

/// What a reload resets ("try again"): the failure counts, a given-up state, and what
/// the telemetry says of them.
fn reset_failures(t: &dyn Telemetry, name: &SecretName, e: &mut Entry) {
    e.failures = 0;
    e.read_failures = 0;
    e.refused = None;
    e.give_up_no_more();
    telemetry::update(t, name, |s| {
        s.gave_up = false;
        s.failures = 0;
        s.failing = false;
    });
}

/// Where a secret stands, for the `secret_status` gauge.
/// Publishes the entry's status as of `now` and remembers it (the sweep skips unchanged).
/// Publishes the entry's status; true when it just became overdue.
fn show(telemetry: &dyn Telemetry, name: &SecretName, e: &mut Entry, now: DateTime<Utc>) -> bool {
    let status = status_of(e, now);
    // A rotation running late is not news (its end is): only an idle overdue secret is.
    let became_overdue =
        status == Status::Overdue && e.shown != Some(Status::Overdue) && !e.is_running();
    e.shown = Some(status);
    telemetry::update(telemetry, name, |s| s.status = status);
    became_overdue
}

fn overdue(notifier: &dyn Notifier, e: &Entry, now: DateTime<Utc>) {
    // A due time about to be re-read (just after a rotation, before a retry) is stale:
    // the secret is not known to be overdue.
    if e.needs_due {
        return;
    }
    let mut ev = Event::new(EventKind::Overdue, &e.cfg, now, e.failures + 1);
    ev.action = Some(match e.cfg.group.as_ref() {
        Some(g) => format!("more than an hour past its due time; see `secret-rotator group {} status` and `secret-rotator plan`", g.name),
        None => "more than an hour past its due time; see `secret-rotator plan` and the daemon's log".to_owned(),
    });
    notifier.notify(ev);
}

fn status_of(e: &Entry, now: DateTime<Utc>) -> Status {
    if e.read_failures > 0 {
        return Status::Unreadable;
    }
    if e.failures > 0 {
        return Status::Failing;
    }
    let Some(due) = e.due else {
        return Status::Loading;
    };
    match e.status {
        DueStatus::Unfinished(Unfinished::Pending) => return Status::Unfinished,
        DueStatus::Unfinished(_) => return Status::RedeployPending,
        _ => {}
    }
    if e.outside_window {
        return Status::OutsideWindow;
    }
    if e.is_running() || due <= now {
        if now - due > OVERDUE_AFTER {
            Status::Overdue
        } else {
            Status::Due
        }
    } else {
        Status::Ok
    }
}

/// Whether two configurations of a secret give the same due times (what a read computed
/// with one holds for the other).
fn same_schedule(a: &SecretConfig, b: &SecretConfig) -> bool {
    let window = |c: &SecretConfig| {
        c.window
            .as_deref()
            .map(|w| (w.expr.clone(), w.duration, w.timezone))
    };
    a.secret == b.secret
        && a.every == b.every
        && a.jitter == b.jitter
        && window(a) == window(b)
        && a.group == b.group
}

/// After a group stage found, just before its start, that it may not start: read it
/// again this soon (the read schedules its next look).
const GATE_RETRY: Duration = Duration::from_secs(1);

/// Tells the notifier that a rotation started, at its first step (so a run that finds
/// the rotation already done, or the lease busy, is no start).
struct Starting {
    notifier: Arc<dyn Notifier>,
    event: std::sync::Mutex<Option<Event>>,
}

impl crate::rotation::Observer for Starting {
    fn step(&self, _secret: &SecretName, step: Step, _detail: &str) {
        if step == Step::Done {
            return;
        }
        let ev = self.event.lock().ok().and_then(|mut e| e.take());
        if let Some(ev) = ev {
            self.notifier.notify(ev);
        }
    }
}

/// Where a read task sends each group's view, beside its members' due times.
fn group_sender(
    tx: &mpsc::UnboundedSender<DueMsg>,
) -> impl FnMut(&GroupConfig, &GroupView) + Send + use<> {
    let tx = tx.clone();
    move |g, view| {
        let _ = tx.send(DueMsg::Group {
            group: Arc::new(g.clone()),
            view: view.clone(),
        });
    }
}

/// A due-time read that ended without a result (it panicked: a bug).
fn read_panicked() -> AwsError {
    AwsError::new(
        ErrorClass::Other,
        "DescribeSecret",
        "NoResult",
        "reading the due time failed (no result)",
    )
}

/// Whether a read reached the store (a secret that does not exist still proves the store
/// and the credentials work).
fn reached_store(r: &Result<DueInfo, AwsError>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => matches!(e.class, ErrorClass::NotFound | ErrorClass::Invalid),
    }
}

/// A deadline in the timer queue: nanoseconds after the queue's origin, 8 bytes where an
/// `Instant` takes 16 (every timed entry and every key of the queue hold one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Tick(u64);

/// The timer queue: (deadline, name) in deadline order.
struct Timers {
    /// Deadlines before it are passed anyway: they read as it (tick 0).
    origin: Instant,
    set: BTreeSet<(Tick, SecretName)>,
}

impl Timers {
    fn new(origin: Instant) -> Self {
        Timers {
            origin,
            set: BTreeSet::new(),
        }
    }

    fn tick(&self, at: Instant) -> Tick {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        // 584 years ahead at most; later saturates (a window that never opens).
        Tick(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Tick) -> Instant {
        let ahead = Duration::from_nanos(t.0);
        self.origin
            .checked_add(ahead)
            .unwrap_or_else(|| self.origin + Duration::from_secs(100 * 365 * 86_400))
    }

    fn insert(&mut self, at: Instant, name: &SecretName) -> Tick {
        let t = self.tick(at);
        self.set.insert((t, name.clone()));
        t
    }

    fn remove(&mut self, t: Tick, name: &SecretName) {
        self.set.remove(&(t, name.clone()));
    }

    fn first(&self) -> Option<Instant> {
        self.set.first().map(|(t, _)| self.instant(*t))
    }

    /// The first name whose deadline is at or before `now`, taken out of the queue.
    fn pop_passed(&mut self, now: Instant) -> Option<SecretName> {
        let now = self.tick(now);
        if self.set.first().is_some_and(|(t, _)| *t <= now) {
            self.set.pop_first().map(|(_, n)| n)
        } else {
            None
        }
    }

    /// The names in deadline order.
    fn names(&self) -> impl Iterator<Item = &SecretName> {
        self.set.iter().map(|(_, n)| n)
    }
}

/// The generation after `g` (see [`Scheduler::next_generation`]).
fn following(g: u32) -> u32 {
    g.checked_add(1).unwrap_or(1)
}

/// The monotonic instant for wall-clock time `at`, given a (wall, monotonic) pair taken
/// together.
fn instant_for(base: (DateTime<Utc>, Instant), at: DateTime<Utc>) -> Instant {
    let ahead = (at - base.0).to_std().unwrap_or(Duration::ZERO);
    // Far-future deadlines (a window that never opens) saturate instead of overflowing.
    base.1
        .checked_add(ahead)
        .unwrap_or_else(|| base.1 + Duration::from_secs(100 * 365 * 86_400))
}

/// A small random delay per process, so replicas that computed the same due time do not
/// start the same rotation at the same instant (the later one then finds it done, or joins
/// it). At most 5 s, and at most 1/20 of the interval. Drawn per secret, so that replicas
/// share a burst of secrets due together; it also spreads the burst over those 5 s, which
/// is why a single daemon (`[ha] replicas = 1`) draws none.
fn replica_skew(random: &dyn Random, name: &SecretName, every: Duration) -> Duration {
    let cap = Duration::from_secs(5).min(every / 20);
    match random.fraction(&format!("replica-skew:{name}")) {
        Some(f) if !cap.is_zero() => cap.mul_f64(f.clamp(0.0, 1.0)),
        _ => Duration::ZERO,
    }
}

/// Retry delay after `failures` failures: initial, doubling, capped.
pub fn backoff(s: &DaemonConfig, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    s.retry_initial.saturating_mul(1u32 << exp).min(s.retry_max)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry::new(Arc::new(crate::config::test_secret("db", "app/db")), 1)
    }

    /// The version a rotation is told it replaces is the one read, whatever its shape.
    #[test]
    fn a_kept_version_reads_back_as_read() {
        let uuid = "3f2b8c1e-7d4a-4b6e-9c2d-1a2b3c4d5e6f";
        for v in [
            uuid,
            "3F2B8C1E-7D4A-4B6E-9C2D-1A2B3C4D5E6F",
            "3f2b8c1e7d4a4b6e9c2d1a2b3c4d5e6f",
            "{3f2b8c1e-7d4a-4b6e-9c2d-1a2b3c4d5e6f}",
            "urn:uuid:3f2b8c1e-7d4a-4b6e-9c2d-1a2b3c4d5e6f",
            "v1",
            "",
        ] {
            let id = VersionId::from(v);
            assert_eq!(KeptVersion::new(&id).id(), id, "{v}");
        }
        assert!(matches!(
            KeptVersion::new(&VersionId::from(uuid)),
            KeptVersion::Uuid(_)
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_version_id_reads_back(v in "[0-9a-fA-F{}:urn-]{0,45}") {
            let id = VersionId::from(v.as_str());
            proptest::prop_assert_eq!(KeptVersion::new(&id).id(), id);
        }

        #[test]
        fn any_uuid_reads_back(b in proptest::prelude::any::<[u8; 16]>(), upper: bool, simple: bool) {
            let u = uuid::Uuid::from_bytes(b);
            let mut v = if simple { u.simple().to_string() } else { u.to_string() };
            if upper {
                v = v.to_uppercase();
            }
            let id = VersionId::from(v.as_str());
            proptest::prop_assert_eq!(KeptVersion::new(&id).id(), id);
        }
    }

    /// The `secret_status` gauge: what an operator's dashboard shows for each state.
    #[test]
    fn each_state_has_its_status() {
        let now = Utc::now();
        let mut e = entry();
        assert_eq!(status_of(&e, now), Status::Loading);
        e.due = Some(now + chrono::Duration::days(3));
        assert_eq!(status_of(&e, now), Status::Ok);
        e.due = Some(now);
        assert_eq!(status_of(&e, now), Status::Due);
        // Overdue after exactly an hour past due, not at the hour.
        e.due = Some(now - OVERDUE_AFTER);
        assert_eq!(status_of(&e, now), Status::Due);
        e.due = Some(now - OVERDUE_AFTER - chrono::Duration::seconds(1));
        assert_eq!(status_of(&e, now), Status::Overdue);
        e.status = DueStatus::Unfinished(Unfinished::Pending);
        assert_eq!(status_of(&e, now), Status::Unfinished);
        for u in [Unfinished::Finish, Unfinished::Redeploy] {
            e.status = DueStatus::Unfinished(u);
            assert_eq!(status_of(&e, now), Status::RedeployPending);
        }
        e.status = DueStatus::Scheduled;
        e.outside_window = true;
        assert_eq!(status_of(&e, now), Status::OutsideWindow);
        e.failures = 1;
        assert_eq!(status_of(&e, now), Status::Failing);
        e.read_failures = 1;
        assert_eq!(status_of(&e, now), Status::Unreadable);
        // Running and not due yet (a resume, a manual start): due.
        let mut e = entry();
        e.due = Some(now + chrono::Duration::days(3));
        e.state = State::Running {
            next_cfg: None,
            removed: false,
            reloaded: false,
        };
        assert_eq!(status_of(&e, now), Status::Due);
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let s = DaemonConfig::default();
        assert_eq!(backoff(&s, 1), Duration::from_secs(60));
        assert_eq!(backoff(&s, 2), Duration::from_secs(120));
        assert_eq!(backoff(&s, 7), Duration::from_secs(3600));
        assert_eq!(backoff(&s, 40), Duration::from_secs(3600));
    }

    struct Fixed(Option<f64>);
    impl Random for Fixed {
        fn fraction(&self, _purpose: &str) -> Option<f64> {
            self.0
        }
    }

    #[test]
    fn replica_skew_is_at_most_5s_and_a_twentieth_of_the_interval() {
        let name = SecretName::from("db");
        let day = Duration::from_secs(86_400);
        assert_eq!(
            replica_skew(&Fixed(Some(0.5)), &name, day),
            Duration::from_millis(2500)
        );
        assert_eq!(
            replica_skew(&Fixed(Some(1.0)), &name, day),
            Duration::from_secs(5)
        );
        // A 40 s interval: at most 2 s.
        let short = Duration::from_secs(40);
        assert_eq!(
            replica_skew(&Fixed(Some(1.0)), &name, short),
            Duration::from_secs(2)
        );
        // Out-of-range draws are clamped; no randomness, no skew.
        assert_eq!(
            replica_skew(&Fixed(Some(7.0)), &name, day),
            Duration::from_secs(5)
        );
        assert_eq!(replica_skew(&Fixed(None), &name, day), Duration::ZERO);
    }

    #[test]
    fn the_timer_queue_keeps_instants_exactly_in_order() {
        let origin = Instant::now();
        let mut q = Timers::new(origin);
        let (a, b, c) = (
            SecretName::from("a"),
            SecretName::from("b"),
            SecretName::from("c"),
        );
        let later = origin + Duration::new(86_400 * 30, 123_456_789);
        let t = q.insert(later, &a);
        assert_eq!(q.instant(t), later, "read back to the nanosecond");
        // Before the origin: passed, reads as the origin.
        let early = q.insert(
            origin.checked_sub(Duration::from_secs(5)).unwrap_or(origin),
            &b,
        );
        assert_eq!(q.instant(early), origin);
        // Far beyond what 64 bits of nanoseconds hold: saturates, never panics or wraps.
        let never = q.insert(origin + Duration::from_secs(900 * 365 * 86_400), &c);
        assert!(q.instant(never) > later);
        assert_eq!(q.first(), Some(origin));
        assert_eq!(q.pop_passed(origin), Some(b.clone()));
        assert_eq!(q.pop_passed(later - Duration::from_nanos(1)), None);
        assert_eq!(q.pop_passed(later), Some(a.clone()));
        q.remove(never, &c);
        assert_eq!(q.first(), None);
    }

    #[test]
    fn generations_wrap_around_without_zero() {
        assert_eq!(following(0), 1);
        assert_eq!(following(7), 8);
        assert_eq!(following(u32::MAX), 1);
    }

    #[test]
    fn wall_clock_deadlines_map_to_instants_ahead_of_the_base() {
        let wall = DateTime::parse_from_rfc3339("2026-03-03T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let base = (wall, Instant::now());
        let later = wall + chrono::Duration::seconds(90);
        assert_eq!(instant_for(base, later), base.1 + Duration::from_secs(90));
        // Past deadlines fire now; a window that never opens is far away, never now.
        assert_eq!(instant_for(base, wall - chrono::Duration::days(1)), base.1);
        assert!(
            instant_for(base, DateTime::<Utc>::MAX_UTC)
                > base.1 + Duration::from_secs(50 * 365 * 86_400)
        );
    }
}
