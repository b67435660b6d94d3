//! Store tests. Every database test runs twice: on a SQLite temp file and on a fresh
//! PostgreSQL database, because the two migration sets and the per-backend dispatch can
//! only drift apart unnoticed if one backend goes untested.
//!
//! PostgreSQL is required, never skipped: `ALFRED_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432`, the server `.ci/run` starts) must reach a server
//! where we may create databases. Each test creates `alfred_test_<unique>` and drops it
//! when done (also when the test fails).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use alfred_core::data::{DataChange, HouseholdData, ListItem, Record};
use alfred_core::event::{Choice, ConversationState, Effect, Frame, OutMessage, Outbound, TimerFired, TimerSpec};
use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;
use serde_json::{Value, json};

use super::schema::{conversations, list_items, outbox, processed_inbound, records, timers};
use super::*;

// ---------------------------------------------------------------------------------------
// Harness

/// A migrated-or-not store on a throwaway database, removed on drop (also used by the
/// scheduler tests).
pub(crate) struct TestDb {
    store: Option<Store>,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(PathBuf),
    Postgres { admin_url: String, name: String },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn pg_base() -> String {
    std::env::var("ALFRED_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_owned()
}

impl TestDb {
    pub(crate) fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("alfred_store_test_{}.db", unique()));
        let store = Store::open(path.to_str().expect("utf-8 temp path")).expect("open SQLite");
        TestDb {
            store: Some(store),
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    pub(crate) fn postgres() -> TestDb {
        let base = pg_base();
        let admin_url = format!("{base}/postgres");
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for the store tests and is not reachable at {base}: {e}\n\
                 Start it (`.ci/run` does; locally e.g. `pg_ctlcluster 15 main start`) or point \
                 ALFRED_TEST_PG_URL at a server where the user may CREATE DATABASE."
            )
        });
        let name = format!("alfred_test_{}", unique());
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        // From here on the guard exists, so the database is dropped even if open fails.
        let mut db = TestDb {
            store: None,
            cleanup: Cleanup::Postgres {
                admin_url,
                name: name.clone(),
            },
        };
        db.store = Some(Store::open(&format!("{base}/{name}")).expect("open Postgres test database"));
        db
    }

    pub(crate) fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open until drop")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Close the pool first: its connections would keep the database busy.
        self.store.take();
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let dropped = PgConnection::establish(admin_url)
                    .map_err(|e| e.to_string())
                    .and_then(|mut c| {
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = dropped {
                    eprintln!("could not drop test database {name}: {e}");
                }
            }
        }
    }
}

/// Declares a test that runs `body` on a migrated store of each backend, as
/// `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_backends {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($store: &Store) $body

            #[test]
            fn sqlite() {
                let db = TestDb::sqlite();
                db.store().migrate().expect("migrate");
                run(db.store());
            }

            #[test]
            fn postgres() {
                let db = TestDb::postgres();
                db.store().migrate().expect("migrate");
                run(db.store());
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Helpers

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap()
}

fn commit(wamid: Option<&str>, member: &str, effects: Vec<Effect>, now: DateTime<Utc>) -> EventCommit {
    EventCommit {
        fired: None,
        inbound_wamid: wamid.map(str::to_owned),
        member: member.into(),
        state: ConversationState::default(),
        effects,
        now,
        ..Default::default()
    }
}

fn send(to: &str, body: &str) -> Effect {
    Effect::Send(Outbound {
        to: to.into(),
        message: OutMessage::Text { body: body.into() },
        fallback: None,
        outside_window: Default::default(),
    })
}

fn put(list: &str, key: &str, qty: u32) -> Effect {
    Effect::Data(DataChange::ListPut {
        list: list.into(),
        item: ListItem {
            key: key.into(),
            name: key.to_uppercase(),
            qty,
            added_by: "ann".into(),
            added_at: t(8, 0),
        },
    })
}

fn timer(id: &str, fire_at: DateTime<Utc>, step: &str) -> TimerSpec {
    TimerSpec {
        id: id.into(),
        member: "ann".into(),
        fire_at,
        fired: TimerFired {
            id: id.into(),
            flow: "reminders".into(),
            step: step.into(),
            data: BTreeMap::from([("what".into(), json!("call grandma"))]),
            wait: Some(3),
        },
    }
}

fn committed(outcome: CommitOutcome) -> Vec<i64> {
    match outcome {
        CommitOutcome::Committed { outbox_ids } => outbox_ids,
        other => panic!("expected Committed, got {other:?}"),
    }
}

/// Row counts of every table commit_event writes, to show "nothing changed".
fn counts(store: &Store) -> [i64; 5] {
    let mut c = store.conn().unwrap();
    [
        conversations::table.count().get_result(&mut *c).unwrap(),
        processed_inbound::table.count().get_result(&mut *c).unwrap(),
        outbox::table.count().get_result(&mut *c).unwrap(),
        list_items::table.count().get_result(&mut *c).unwrap(),
        timers::table.count().get_result(&mut *c).unwrap(),
    ]
}

/// The reference model without the empty lists/collections `apply` leaves behind
/// (the store has no rows for them; see `Store::load_data`).
fn normalized(mut d: HouseholdData) -> HouseholdData {
    d.lists.retain(|_, v| !v.is_empty());
    d.records.retain(|_, v| !v.is_empty());
    d
}

/// SplitMix64: a tiny deterministic generator, so failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn instant(&mut self) -> DateTime<Utc> {
        // Microsecond precision: what both backends store (see conn::to_db).
        let base = t(0, 0).timestamp_micros();
        DateTime::from_timestamp_micros(base + self.below(400 * 86_400_000_000) as i64).unwrap()
    }
    fn text(&mut self) -> String {
        let s = self.pick(&[
            "Bananas",
            "crème brûlée",
            "O'Neil's \"best\"",
            "🍌 x2",
            "a\nb",
            "",
            "  spaced  ",
        ]);
        format!("{s}{}", self.below(100))
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => json!(self.next() as i64),
            // Quarters are exact in binary, so the JSON round trip is exact too.
            3 => json!((self.below(4000) as f64 - 2000.0) / 4.0),
            4 => Value::String(self.text()),
            5 => Value::Array((0..self.below(3)).map(|_| self.value(depth - 1)).collect()),
            _ => {
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(3) {
                    m.insert(self.pick(&["x", "y", "z"]).into(), self.value(depth - 1));
                }
                Value::Object(m)
            }
        }
    }
    fn change(&mut self) -> DataChange {
        // Few names and keys, so that puts collide, removes hit, and clears matter.
        let list = self.pick(&["shopping", "todo", "hardware"]).to_owned();
        let collection = self.pick(&["chores", "notes"]).to_owned();
        match self.below(10) {
            0..=3 => DataChange::ListPut {
                list,
                item: ListItem {
                    key: self.pick(&["bananas", "milk", "eggs", "bread", "tea"]).into(),
                    name: self.text(),
                    // Sometimes above i32::MAX: qty is a u32 in the core.
                    qty: if self.below(5) == 0 {
                        u32::MAX - self.below(3) as u32
                    } else {
                        1 + self.below(9) as u32
                    },
                    added_by: self.pick(&["ann", "bob", "cy"]).into(),
                    added_at: self.instant(),
                },
            },
            4 | 5 => DataChange::ListRemove {
                list,
                key: self.pick(&["bananas", "milk", "eggs", "nope"]).into(),
            },
            6 => DataChange::ListClear { list },
            7 | 8 => DataChange::RecordPut {
                collection,
                record: Record {
                    id: self.pick(&["1", "2", "3", "4"]).into(),
                    fields: (0..self.below(4))
                        .map(|_| (self.pick(&["title", "due", "done", "tags"]).to_owned(), self.value(2)))
                        .collect(),
                    created_by: self.pick(&["ann", "bob"]).into(),
                    created_at: self.instant(),
                    updated_at: self.instant(),
                },
            },
            _ => DataChange::RecordDelete {
                collection,
                id: self.pick(&["1", "2", "3", "9"]).into(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests that need no database

#[test]
fn urls_pick_the_backend() {
    let pg = Target::parse("postgres://u:p@db:5432/alfred").unwrap();
    assert_eq!(
        (pg.backend, pg.target.as_str()),
        (Backend::Postgres, "postgres://u:p@db:5432/alfred")
    );
    assert_eq!(Target::parse("postgresql://db/a").unwrap().backend, Backend::Postgres);

    let file = Target::parse("sqlite://data/alfred.db").unwrap();
    assert_eq!(
        (file.backend, file.target.as_str()),
        (Backend::Sqlite, "data/alfred.db")
    );
    assert_eq!(file.create_dir, Some(PathBuf::from("data")));
    assert!(!file.in_memory);
    assert_eq!(
        Target::parse("sqlite:///var/lib/alfred.db").unwrap().target,
        "/var/lib/alfred.db"
    );
    assert_eq!(Target::parse("alfred.db").unwrap().create_dir, None);

    for memory in [":memory:", "sqlite://:memory:", "sqlite::memory:"] {
        let m = Target::parse(memory).unwrap();
        assert!(m.in_memory && m.pool_size == 1, "{memory}");
    }
    for bad in ["", "sqlite://", "mysql://db/a"] {
        let e = Target::parse(bad).unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)) && !e.is_retryable(), "{bad}");
    }
}

#[test]
fn migration_sets_have_the_same_versions() {
    let names = |backend: &str| -> Vec<String> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("schema/migrations")
            .join(backend);
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(!names("postgres").is_empty());
    assert_eq!(names("postgres"), names("sqlite"));
}

/// The versions of the shipped migrations (`2026-11-25-000000_init` → `20261125000000`),
/// in order, so that adding a migration does not mean editing every count here.
fn shipped_versions() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/migrations/postgres");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.split('_').next().unwrap().replace('-', "")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn in_memory_sqlite_keeps_its_one_database() {
    let store = Store::open(":memory:").unwrap();
    assert_eq!(store.migrate().unwrap(), shipped_versions());
    committed(
        store
            .commit_event(&commit(Some("w"), "ann", vec![put("shopping", "tea", 1)], t(9, 0)))
            .unwrap(),
    );
    // Later calls get the same (only) connection, hence the same database.
    assert_eq!(store.load_data().unwrap().list("shopping").len(), 1);
    assert!(store.migrate().unwrap().is_empty());
}

#[test]
fn unreachable_postgres_is_a_retryable_error() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let e = Store::open("postgres://postgres@127.0.0.1:1/none").unwrap_err();
    assert!(
        matches!(e, StoreError::Connection(_)),
        "the driver's reason, not a pool timeout: {e}"
    );
    assert!(e.is_retryable(), "{e}");
}

// ---------------------------------------------------------------------------------------
// Migrations (by hand: they start from an unmigrated database)

fn migrations_apply_and_are_idempotent(store: &Store) {
    let first = store.migrate().unwrap();
    assert_eq!(first, shipped_versions());
    assert_eq!(first[0], "20261125000000");
    assert!(store.migrate().unwrap().is_empty(), "second run applies nothing");
    // Every table exists and is empty.
    assert_eq!(counts(store), [0; 5]);
    let mut c = store.conn().unwrap();
    let _: i64 = records::table.count().get_result(&mut *c).unwrap();
    let _: i64 = super::schema::queue_jobs::table.count().get_result(&mut *c).unwrap();
    // The down migrations work too: revert everything, then migrate again.
    match &mut *c {
        AnyConnection::Postgresql(pg) => pg.revert_all_migrations(PG_MIGRATIONS).map(|_| ()),
        AnyConnection::Sqlite(lite) => lite.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    }
    .unwrap();
    drop(c);
    assert_eq!(store.migrate().unwrap(), first);
    store.ping().unwrap();
}

#[test]
fn migrations_sqlite() {
    let db = TestDb::sqlite();
    migrations_apply_and_are_idempotent(db.store());
}

#[test]
fn sqlite_connections_get_the_pragmas() {
    #[derive(QueryableByName)]
    struct Pragma {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let db = TestDb::sqlite();
    // Every pooled connection, not only the first: hold all four at once.
    let mut conns: Vec<PooledConn> = (0..4).map(|_| db.store().conn().unwrap()).collect();
    for conn in &mut conns {
        let AnyConnection::Sqlite(c) = &mut **conn else {
            panic!("SQLite expected")
        };
        let mut pragma = |name: &str, column: &str| -> String {
            diesel::sql_query(format!("SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"))
                .get_result::<Pragma>(c)
                .unwrap()
                .value
        };
        assert_eq!(pragma("journal_mode", "journal_mode"), "wal");
        assert_eq!(pragma("busy_timeout", "timeout"), "5000");
        assert_eq!(pragma("foreign_keys", "foreign_keys"), "1");
    }
}

#[test]
fn migrations_postgres() {
    let db = TestDb::postgres();
    migrations_apply_and_are_idempotent(db.store());
}

#[test]
fn concurrent_migrations_postgres() {
    // Several processes start at once; the advisory lock lets one migrate and the
    // others find nothing to do.
    let db = TestDb::postgres();
    let base = pg_base();
    let Cleanup::Postgres { name, .. } = &db.cleanup else {
        unreachable!()
    };
    let url = format!("{base}/{name}");
    let applied: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Store::open(&url).unwrap().migrate().unwrap().len()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(applied.iter().sum::<usize>(), shipped_versions().len(), "{applied:?}");
    assert_eq!(
        applied.iter().filter(|&&n| n > 0).count(),
        1,
        "one process applies all: {applied:?}"
    );
}

// ---------------------------------------------------------------------------------------
// commit_event

on_both_backends!(commit_applies_data_like_household_apply, |store| {
    let seed = std::env::var("ALFRED_STORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_a1f3_u64);
    let mut rng = Rng(seed);
    let mut model = HouseholdData::default();
    for n in 0..60 {
        let mut effects = Vec::new();
        for _ in 0..rng.below(7) {
            let change = rng.change();
            model.apply(&change);
            effects.push(Effect::Data(change));
            // Other effects interleaved must not disturb the data.
            match rng.below(6) {
                0 => effects.push(send("ann", "ok")),
                1 => effects.push(Effect::Error {
                    flow: None,
                    step: None,
                    message: "ignored".into(),
                }),
                _ => {}
            }
        }
        let wamid = (rng.below(4) != 0).then(|| format!("wamid.{n}"));
        committed(
            store
                .commit_event(&commit(wamid.as_deref(), "ann", effects, t(9, 0)))
                .unwrap(),
        );
        assert_eq!(
            store.load_data().unwrap(),
            normalized(model.clone()),
            "seed {seed:#x}, after commit {n}"
        );
    }
    assert!(
        !model.lists.is_empty() && !model.records.is_empty(),
        "the generator exercised both"
    );
});

on_both_backends!(list_order_is_first_insertion_order, |store| {
    let effects = vec![
        put("shopping", "milk", 1),
        put("shopping", "eggs", 1),
        put("shopping", "tea", 1),
        put("shopping", "milk", 5), // replaced in place: stays first
        Effect::Data(DataChange::ListRemove {
            list: "shopping".into(),
            key: "eggs".into(),
        }),
        put("shopping", "eggs", 2), // re-added: now last
    ];
    committed(store.commit_event(&commit(None, "ann", effects, t(9, 0))).unwrap());
    let data = store.load_data().unwrap();
    let keys: Vec<(&str, u32)> = data.list("shopping").iter().map(|i| (i.key.as_str(), i.qty)).collect();
    assert_eq!(keys, [("milk", 5), ("tea", 1), ("eggs", 2)]);
});

on_both_backends!(duplicate_wamid_changes_nothing, |store| {
    let state = ConversationState {
        wait_seq: 7,
        ..Default::default()
    };
    let first = EventCommit {
        state: state.clone(),
        ..commit(
            Some("wamid.dup"),
            "ann",
            vec![
                put("shopping", "bananas", 1),
                send("ann", "Added bananas"),
                Effect::StartTimer(timer("t1", t(18, 0), "remind")),
            ],
            t(9, 0),
        )
    };
    assert_eq!(committed(store.commit_event(&first).unwrap()).len(), 1);
    let before = (
        store.load_data().unwrap(),
        counts(store),
        store.pending_timers().unwrap(),
    );

    let again = EventCommit {
        state: ConversationState::default(),
        ..commit(
            Some("wamid.dup"),
            "ann",
            vec![
                put("shopping", "milk", 1),
                send("ann", "Added milk"),
                Effect::CancelTimer { id: "t1".into() },
            ],
            t(9, 1),
        )
    };
    assert_eq!(store.commit_event(&again).unwrap(), CommitOutcome::Duplicate);
    assert_eq!(
        (
            store.load_data().unwrap(),
            counts(store),
            store.pending_timers().unwrap()
        ),
        before
    );
    assert_eq!(store.load_conversation("ann").unwrap(), state);
});

on_both_backends!(concurrent_duplicates_commit_once, |store| {
    // Eight workers got the same redelivered message: exactly one commit wins. Each
    // also adds the same list key, which must merge, not fail.
    let outcomes: Vec<CommitOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                s.spawn(move || {
                    let c = commit(
                        Some("wamid.race"),
                        "ann",
                        vec![put("shopping", "milk", i + 1), send("ann", "ok")],
                        t(9, 0),
                    );
                    store.commit_event(&c).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, CommitOutcome::Committed { .. }))
        .count();
    assert_eq!(wins, 1, "{outcomes:?}");
    assert_eq!(counts(store)[2], 1, "one outbox row");

    // Distinct messages touching the same item concurrently all commit.
    std::thread::scope(|s| {
        for i in 0..8u32 {
            s.spawn(move || {
                let c = commit(
                    Some(&format!("wamid.{i}")),
                    "bob",
                    vec![put("shopping", "milk", i + 1)],
                    t(9, 0),
                );
                committed(store.commit_event(&c).unwrap());
            });
        }
    });
    assert_eq!(store.load_data().unwrap().list("shopping").len(), 1);
    assert_eq!(counts(store)[1], 9, "nine markers");
});

on_both_backends!(conversation_round_trips, |store| {
    assert_eq!(store.load_conversation("nobody").unwrap(), ConversationState::default());
    let state = ConversationState {
        // Built from JSON, as the store reads it, so that fields the core adds later
        // (with serde defaults) do not break this test.
        frames: vec![
            serde_json::from_value::<Frame>(json!({
                "flow": "shopping",
                "version": "abc123",
                "step": "ask_qty",
                "slots": {"item": "bananas", "n": 2.5},
                "vars": {"nested": {"b": [1, null, "é"], "a": true}},
                "attempts": 2,
                "waiting": true,
                "returns": "reask",
                "captures": {"item": "bananas"},
                "choices": [{"id": "yes", "title": "Yes ✅"}],
            }))
            .unwrap(),
        ],
        // Nanoseconds survive: the state is JSON, not a TIMESTAMP column.
        expires_at: Some(t(10, 0) + Duration::nanoseconds(123_456_789)),
        wait_seq: 42,
    };
    let c = EventCommit {
        state: state.clone(),
        ..commit(Some("w1"), "ann", vec![], t(9, 0))
    };
    committed(store.commit_event(&c).unwrap());
    assert_eq!(store.load_conversation("ann").unwrap(), state);
    assert_eq!(store.load_conversation("bob").unwrap(), ConversationState::default());

    // A later commit replaces it (upsert).
    committed(store.commit_event(&commit(Some("w2"), "ann", vec![], t(9, 5))).unwrap());
    assert_eq!(store.load_conversation("ann").unwrap(), ConversationState::default());
});

on_both_backends!(outbox_lifecycle, |store| {
    let buttons = OutMessage::Buttons {
        body: "Done?".into(),
        buttons: vec![Choice {
            id: "y".into(),
            title: "Yes".into(),
            description: None,
        }],
        footer: Some("Alfred".into()),
    };
    let effects = vec![
        send("ann", "first"),
        Effect::Send(Outbound {
            to: "bob".into(),
            message: buttons.clone(),
            fallback: None,
            outside_window: Default::default(),
        }),
    ];
    let ids = committed(
        store
            .commit_event(&commit(Some("wamid.in"), "ann", effects, t(9, 0)))
            .unwrap(),
    );
    let [a, b] = ids[..] else { panic!("{ids:?}") };
    assert!(a < b, "ids follow the Send order");

    let row_b = store.outbox_row(b).unwrap().unwrap();
    assert_eq!(row_b.member, "bob");
    assert_eq!(row_b.out_message().unwrap(), buttons);
    assert_eq!(row_b.status, OutboxStatus::Pending);
    assert_eq!(row_b.inbound_wamid.as_deref(), Some("wamid.in"));
    assert_eq!(
        (row_b.attempts, row_b.created_at, row_b.published_at),
        (0, t(9, 0), None)
    );
    assert_eq!(store.outbox_row(b + 100).unwrap(), None);

    // Publishing and the sweep.
    assert!(
        store.unpublished_outbox(t(8, 59), 10).unwrap().is_empty(),
        "too young for the sweep"
    );
    let swept: Vec<i64> = store
        .unpublished_outbox(t(9, 0), 10)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(swept, [a, b]);
    assert_eq!(store.unpublished_outbox(t(9, 0), 1).unwrap().len(), 1, "limit");
    assert_eq!(store.mark_published(&[a], t(9, 1)).unwrap(), 1);
    assert_eq!(
        store.mark_published(&[a], t(9, 2)).unwrap(),
        0,
        "first publish time kept"
    );
    assert_eq!(store.mark_published(&[], t(9, 2)).unwrap(), 0);
    assert_eq!(store.outbox_row(a).unwrap().unwrap().published_at, Some(t(9, 1)));
    let swept: Vec<i64> = store
        .unpublished_outbox(t(9, 5), 10)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(swept, [b]);

    // Sent once, and only once.
    assert!(store.mark_sent(a, "wamid.out.A", t(9, 2)).unwrap());
    assert!(!store.mark_sent(a, "wamid.out.A2", t(9, 3)).unwrap(), "already sent");
    let row_a = store.outbox_row(a).unwrap().unwrap();
    assert_eq!(row_a.status, OutboxStatus::Sent);
    assert_eq!(
        (row_a.wamid.as_deref(), row_a.sent_at, row_a.attempts),
        (Some("wamid.out.A"), Some(t(9, 2)), 1)
    );

    // Delivery states only move forward; failed is terminal.
    let delivery = |s: &Store| s.outbox_row(a).unwrap().unwrap().delivery;
    assert!(store.update_delivery("wamid.out.A", "delivered", None).unwrap());
    assert_eq!(delivery(store), Some(DeliveryState::Delivered));
    assert!(
        store.update_delivery("wamid.out.A", "sent", None).unwrap(),
        "late 'sent': found, ignored"
    );
    assert_eq!(delivery(store), Some(DeliveryState::Delivered));
    assert!(store.update_delivery("wamid.out.A", "read", None).unwrap());
    assert_eq!(delivery(store), Some(DeliveryState::Read));
    assert!(
        store
            .update_delivery("wamid.out.A", "failed", Some((131026, "undeliverable".into())))
            .unwrap()
    );
    let row_a = store.outbox_row(a).unwrap().unwrap();
    assert_eq!(row_a.delivery, Some(DeliveryState::Failed));
    assert_eq!(
        (row_a.error_code, row_a.last_error.as_deref()),
        (Some(131026), Some("undeliverable"))
    );
    assert!(store.update_delivery("wamid.out.A", "read", None).unwrap());
    assert_eq!(delivery(store), Some(DeliveryState::Failed));
    assert!(!store.update_delivery("wamid.unknown", "read", None).unwrap());
    let e = store.update_delivery("wamid.out.A", "exploded", None).unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)) && !e.is_retryable());

    // Retry, then dead-letter.
    assert!(store.mark_retry(b, Some(130429), "rate limited", t(9, 10)).unwrap());
    let row_b = store.outbox_row(b).unwrap().unwrap();
    assert_eq!(row_b.status, OutboxStatus::Failed);
    assert_eq!(
        (row_b.attempts, row_b.next_attempt_at, row_b.error_code),
        (1, Some(t(9, 10)), Some(130429))
    );
    assert!(store.retry_due(t(9, 9), 10).unwrap().is_empty());
    assert_eq!(store.retry_due(t(9, 10), 10).unwrap()[0].id, b);
    assert!(
        store.unpublished_outbox(t(10, 0), 10).unwrap().is_empty(),
        "failed rows are not re-published"
    );
    assert!(store.mark_retry(b, None, "timeout", t(9, 20)).unwrap());
    assert!(store.mark_dead(b, Some(131026), "undeliverable").unwrap());
    let row_b = store.outbox_row(b).unwrap().unwrap();
    assert_eq!(row_b.status, OutboxStatus::Dead);
    assert_eq!((row_b.attempts, row_b.next_attempt_at), (3, None));
    assert_eq!(
        (row_b.error_code, row_b.last_error.as_deref()),
        (Some(131026), Some("undeliverable"))
    );
    assert!(!store.mark_sent(b, "wamid.out.B", t(9, 30)).unwrap(), "dead stays dead");
    assert!(!store.mark_retry(b, None, "x", t(9, 30)).unwrap());
    assert!(!store.mark_dead(a, None, "x").unwrap(), "sent stays sent");
    assert!(store.retry_due(t(12, 0), 10).unwrap().is_empty());

    // A wamid names one message: reusing it is a permanent error.
    let ids = committed(
        store
            .commit_event(&commit(None, "ann", vec![send("ann", "x")], t(9, 0)))
            .unwrap(),
    );
    let e = store.mark_sent(ids[0], "wamid.out.A", t(9, 40)).unwrap_err();
    assert!(!e.is_retryable(), "{e}");
});

on_both_backends!(timers_upsert_and_cancel, |store| {
    let c = commit(
        None,
        "ann",
        vec![
            Effect::StartTimer(timer("t1", t(10, 0), "a")),
            Effect::StartTimer(timer("t2", t(9, 0), "b")),
        ],
        t(8, 0),
    );
    committed(store.commit_event(&c).unwrap());
    assert_eq!(
        store.pending_timers().unwrap(),
        [timer("t2", t(9, 0), "b"), timer("t1", t(10, 0), "a")]
    );

    // Starting an existing id replaces it.
    let c = commit(
        None,
        "ann",
        vec![Effect::StartTimer(timer("t1", t(8, 30), "c"))],
        t(8, 1),
    );
    committed(store.commit_event(&c).unwrap());
    assert_eq!(
        store.pending_timers().unwrap(),
        [timer("t1", t(8, 30), "c"), timer("t2", t(9, 0), "b")]
    );

    // Cancel (an unknown id is a no-op), and start+cancel in one commit leaves nothing.
    let c = commit(
        None,
        "ann",
        vec![
            Effect::CancelTimer { id: "t2".into() },
            Effect::CancelTimer { id: "nope".into() },
            Effect::StartTimer(timer("t3", t(11, 0), "d")),
            Effect::CancelTimer { id: "t3".into() },
        ],
        t(8, 2),
    );
    committed(store.commit_event(&c).unwrap());
    assert_eq!(store.pending_timers().unwrap(), [timer("t1", t(8, 30), "c")]);
});

on_both_backends!(a_failing_effect_rolls_back_everything, |store| {
    // A database-side failure at the *last* effect, injected with a trigger: every
    // earlier write of the same commit (marker, state, data, outbox, timer) must vanish.
    let trigger = match store.backend() {
        Backend::Sqlite => {
            "CREATE TRIGGER boom BEFORE INSERT ON timers WHEN NEW.id = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.id = 'boom' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER boom BEFORE INSERT ON timers FOR EACH ROW EXECUTE FUNCTION boom();"
        }
    };
    store.conn().unwrap().batch_execute(trigger).unwrap();
    committed(
        store
            .commit_event(&commit(Some("w0"), "ann", vec![put("shopping", "tea", 1)], t(8, 0)))
            .unwrap(),
    );
    let before = (store.load_data().unwrap(), counts(store));

    let effects = vec![
        put("shopping", "bananas", 2),
        Effect::Data(DataChange::ListClear {
            list: "shopping".into(),
        }),
        send("ann", "Added bananas"),
        Effect::StartTimer(timer("fine", t(12, 0), "x")),
        Effect::StartTimer(timer("boom", t(12, 0), "x")),
    ];
    let failing = EventCommit {
        state: ConversationState {
            wait_seq: 1,
            ..Default::default()
        },
        ..commit(Some("wamid.fail"), "bob", effects.clone(), t(9, 0))
    };
    let e = store.commit_event(&failing).unwrap_err();
    assert!(e.to_string().contains("injected failure"), "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!((store.load_data().unwrap(), counts(store)), before);
    assert_eq!(store.load_conversation("bob").unwrap(), ConversationState::default());
    assert!(store.pending_timers().unwrap().is_empty());

    // The marker was rolled back too: the redelivery (without the poison) commits.
    let retried = EventCommit {
        effects: effects[..4].to_vec(),
        ..failing
    };
    assert_eq!(committed(store.commit_event(&retried).unwrap()).len(), 1);
    assert!(store.load_data().unwrap().list("shopping").is_empty());
    assert_eq!(store.pending_timers().unwrap().len(), 1);
});

on_both_backends!(write_helper_commits_or_rolls_back, |store| {
    // `Store::write` is what the SQL-table queue will build on.
    let insert = |conn: &mut AnyConnection, id: &str| {
        diesel::insert_into(processed_inbound::table)
            .values((
                processed_inbound::wamid.eq(id),
                processed_inbound::member.eq("ann"),
                processed_inbound::processed_at.eq(conn::to_db(t(9, 0))),
            ))
            .execute(conn)
    };
    store.write(|c| Ok(insert(c, "kept")?)).unwrap();
    let e = store
        .write(|c| {
            insert(c, "rolled back")?;
            insert(c, "kept")?; // primary key violation
            Ok(())
        })
        .unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(counts(store)[1], 1);
});

// ---------------------------------------------------------------------------------------
// Several workers: optimistic concurrency and arrival order

on_both_backends!(a_stale_conversation_commit_is_a_conflict_and_writes_nothing, |store| {
    let (_, absent) = store.load_conversation_versioned("ann").unwrap();
    assert_eq!(absent, StateCheck::Absent);
    // Two workers loaded "no conversation"; the first commit wins, the second conflicts.
    let first = EventCommit {
        state_check: absent,
        ..commit(Some("w1"), "ann", vec![send("ann", "one")], t(9, 0))
    };
    committed(store.commit_event(&first).unwrap());
    let before = counts(store);
    let second = EventCommit {
        state_check: absent,
        ..commit(Some("w2"), "ann", vec![send("ann", "two")], t(9, 0))
    };
    assert_eq!(store.commit_event(&second).unwrap(), CommitOutcome::Conflict);
    assert_eq!(
        counts(store),
        before,
        "a conflict writes nothing, not even the wamid marker"
    );

    // Reloading gives the current version; a commit against it succeeds and bumps it.
    let (_, at) = store.load_conversation_versioned("ann").unwrap();
    assert_eq!(at, StateCheck::At(1));
    let retry = EventCommit {
        state_check: at,
        ..commit(Some("w2"), "ann", vec![send("ann", "two")], t(9, 0))
    };
    committed(store.commit_event(&retry).unwrap());
    assert_eq!(store.load_conversation_versioned("ann").unwrap().1, StateCheck::At(2));
    // The old version no longer matches.
    assert_eq!(
        store
            .commit_event(&EventCommit {
                state_check: at,
                ..commit(Some("w3"), "ann", vec![], t(9, 0))
            })
            .unwrap(),
        CommitOutcome::Conflict
    );
});

on_both_backends!(a_commit_on_stale_household_data_is_a_conflict, |store| {
    let (data, v0) = store.load_data_versioned().unwrap();
    assert!(data.list("shopping").is_empty());
    // Ann's worker and Ben's worker both read version v0; Ann's commit changes the list.
    let ann = EventCommit {
        data_version: Some(v0),
        ..commit(Some("a1"), "ann", vec![put("shopping", "milk", 1)], t(9, 0))
    };
    committed(store.commit_event(&ann).unwrap());
    let ben = EventCommit {
        data_version: Some(v0),
        ..commit(Some("b1"), "ben", vec![put("shopping", "eggs", 1)], t(9, 0))
    };
    assert_eq!(store.commit_event(&ben).unwrap(), CommitOutcome::Conflict);
    // A commit that changes no data does not care about the data version.
    let read_only = EventCommit {
        data_version: Some(v0),
        ..commit(Some("b2"), "ben", vec![send("ben", "1 item")], t(9, 0))
    };
    committed(store.commit_event(&read_only).unwrap());

    // The cache noticed the new version: Ben's rerun sees milk and keeps it.
    let (data, v1) = store.load_data_versioned().unwrap();
    assert_eq!(v1, v0 + 1);
    assert_eq!(data.list("shopping").len(), 1);
    let ben = EventCommit {
        data_version: Some(v1),
        ..commit(Some("b1"), "ben", vec![put("shopping", "eggs", 1)], t(9, 0))
    };
    committed(store.commit_event(&ben).unwrap());
    let keys: Vec<String> = store
        .load_data_versioned()
        .unwrap()
        .0
        .list("shopping")
        .iter()
        .map(|i| i.key.clone())
        .collect();
    assert_eq!(keys, ["milk", "eggs"]);
});

on_both_backends!(arrival_order_holds_back_a_message_until_its_predecessor, |store| {
    let order = |seq, force| OrderCheck {
        sender: "s1".into(),
        seq,
        force,
    };
    let numbered = |wamid: &str, seq, force| EventCommit {
        order: Some(order(seq, force)),
        ..commit(Some(wamid), "ann", vec![send("ann", wamid)], t(9, 0))
    };
    // Message 2 arrives at a worker before message 1 is handled: held, nothing written.
    let before = counts(store);
    assert_eq!(
        store.commit_event(&numbered("m2", 2, false)).unwrap(),
        CommitOutcome::Held
    );
    assert_eq!(counts(store), before);
    committed(store.commit_event(&numbered("m1", 1, false)).unwrap());
    committed(store.commit_event(&numbered("m2", 2, false)).unwrap());
    // A redelivery of 1 is not held (it is at or below the last) and dedupes as usual.
    assert_eq!(
        store.commit_event(&numbered("m1", 1, false)).unwrap(),
        CommitOutcome::Duplicate
    );
    // 3 never comes (dead-lettered): 4 is held until forced, then the order moves on.
    assert_eq!(
        store.commit_event(&numbered("m4", 4, false)).unwrap(),
        CommitOutcome::Held
    );
    committed(store.commit_event(&numbered("m4", 4, true)).unwrap());
    committed(store.commit_event(&numbered("m5", 5, false)).unwrap());
    // A late 3 still goes through rather than being lost.
    committed(store.commit_event(&numbered("m3", 3, false)).unwrap());
    // Other senders are independent; a non-member's number is used up without an event.
    let other = OrderCheck {
        sender: "s2".into(),
        seq: 1,
        force: false,
    };
    store.advance_order(&other, t(9, 0)).unwrap();
    let next = EventCommit {
        order: Some(OrderCheck { seq: 2, ..other }),
        ..commit(Some("o2"), "bob", vec![], t(9, 0))
    };
    committed(store.commit_event(&next).unwrap());
});

on_both_backends!(window_bookkeeping, |store| {
    // An inbound message stamps the member's window; a timer event does not.
    assert_eq!(store.last_inbound("ann").unwrap(), None);
    committed(
        store
            .commit_event(&commit(Some("wamid.w1"), "ann", vec![], t(8, 0)))
            .unwrap(),
    );
    committed(store.commit_event(&commit(None, "ann", vec![], t(9, 0))).unwrap());
    assert_eq!(store.last_inbound("ann").unwrap(), Some(t(8, 0)));
    assert_eq!(store.last_inbound("bob").unwrap(), None);

    // The fallback and policy travel with the row.
    let template = OutMessage::Template {
        name: "nudge".into(),
        language: "en_US".into(),
        params: vec!["x".into()],
    };
    let effects = vec![
        Effect::Send(Outbound {
            to: "ann".into(),
            message: OutMessage::Text { body: "later".into() },
            fallback: Some(template.clone()),
            outside_window: alfred_core::window::WindowPolicy::Drop,
        }),
        send("ann", "plain"),
    ];
    let ids = committed(store.commit_event(&commit(None, "ann", effects, t(10, 0))).unwrap());
    let plan = store.outbox_row(ids[0]).unwrap().unwrap().window_plan().unwrap();
    assert_eq!(plan.fallback, Some(template.clone()));
    assert_eq!(plan.outside_window, alfred_core::window::WindowPolicy::Drop);
    assert_eq!(
        store.outbox_row(ids[1]).unwrap().unwrap().fallback,
        None,
        "default plan: no JSON"
    );

    // A parked row is not the sweep's; the member writing un-parks it, once.
    assert!(store.mark_deferred(ids[1], t(10, 0)).unwrap());
    let unpublished = |s: &Store| -> Vec<i64> {
        s.unpublished_outbox(t(23, 0), 10)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(unpublished(store), vec![ids[0]]);
    assert_eq!(store.wake_deferred("bob", t(11, 0)).unwrap(), Vec::<i64>::new());
    assert_eq!(store.wake_deferred("ann", t(11, 0)).unwrap(), vec![ids[1]]);
    assert_eq!(store.wake_deferred("ann", t(11, 0)).unwrap(), Vec::<i64>::new());
    assert_eq!(
        unpublished(store),
        vec![ids[0], ids[1]],
        "until published, the sweep recovers it"
    );

    // Meta says 131047 after the send: a fallback row, once.
    assert!(store.mark_sent(ids[0], "wamid.out", t(10, 1)).unwrap());
    let fb = store
        .window_closed_after_send("wamid.out", t(10, 2))
        .unwrap()
        .expect("a fallback row");
    let row = store.outbox_row(fb).unwrap().unwrap();
    assert_eq!(row.out_message().unwrap(), template);
    assert_eq!(
        (row.status, row.window_action.as_deref()),
        (OutboxStatus::Pending, Some("template"))
    );
    assert_eq!(
        store.outbox_row(ids[0]).unwrap().unwrap().window_action.as_deref(),
        Some("replaced")
    );
    assert_eq!(store.window_closed_after_send("wamid.out", t(10, 3)).unwrap(), None);
    assert_eq!(store.window_closed_after_send("wamid.unknown", t(10, 3)).unwrap(), None);
});

// ---------------------------------------------------------------------------------------
// The member roster (changed by admins over chat)

on_both_backends!(stored_members_replace_the_roster_and_are_cached_by_version, |store| {
    use alfred_core::flow::Member;
    use alfred_core::model::Role;
    let member = |name: &str, phone: &str, role: Role, timezone: chrono_tz::Tz| Member {
        name: name.into(),
        phone: Some(phone.into()),
        user_id: None,
        role,
        timezone,
        language: "en".into(),
    };
    // Nothing stored: household.yaml's members are in effect.
    assert_eq!(store.members_versioned().unwrap(), None);
    assert_eq!(store.load_data().unwrap().members, None);
    let roster = vec![
        member("Anna", "+31612345001", Role::Admin, chrono_tz::Europe::Amsterdam),
        member("Lisa", "+12125550100", Role::Child, chrono_tz::America::New_York),
    ];
    let set = |members: &Vec<Member>| {
        vec![Effect::Data(DataChange::SetMembers {
            members: members.clone(),
        })]
    };
    committed(
        store
            .commit_event(&commit(None, "Anna", set(&roster), t(9, 0)))
            .unwrap(),
    );
    assert_eq!(store.load_data().unwrap().members.as_ref(), Some(&roster));
    assert_eq!(store.members_versioned().unwrap().as_deref(), Some(&roster));
    // A new roster replaces the whole old one, order included; the cache follows the version.
    let next = vec![
        member("Lisa", "+12125550100", Role::Admin, chrono_tz::America::New_York),
        member("Ben", "+31612345002", Role::Adult, chrono_tz::Europe::London),
    ];
    committed(store.commit_event(&commit(None, "Anna", set(&next), t(9, 1))).unwrap());
    assert_eq!(store.members_versioned().unwrap().as_deref(), Some(&next));
    assert_eq!(store.load_data().unwrap().members.as_ref(), Some(&next));
});
