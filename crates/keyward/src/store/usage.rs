//! The usage ledger's tables: the requests (`usage_batches`, kept `usage_retention`) and hourly
//! roll-ups (`usage_hourly`, kept `usage_rollup_retention`), with the names they repeat (keys,
//! clients, dialects, models, profiles, limits) kept once in `usage_names` and referred to by
//! number. No prompt or answer content is ever in them.
//!
//! The ledger writes them from its own thread in batches ([`SqliteStore::record_usage`]: the
//! requests and their roll-ups in one transaction); `keyward usage`, the dashboard and the key
//! limits read them.
//!
//! A batch's requests are one row, packed ([`usage_batch`]): SQLite's cost per request was most
//! of the ledger's. A batch's number is its first request's arrival ([`row_id`]: milliseconds
//! since the epoch, shifted left by [`SEQ_BITS`], plus a sequence number), and a batch spans at
//! most [`MAX_SPAN_MS`] of arrivals, so the requests of a range of time are in a range of batches
//! with no index on time. The roll-ups answer whole hours; the batches answer the rest (the part
//! of an hour a report starts in, the latest requests, a key's arrivals in the last minute).

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::sqlite::SqliteStore;
use super::usage_batch::{self, NameNumbers, PackedRequest};
use super::StoreResult;
use crate::ledger::Tokens;

/// The ledger's schema (migration 4).
pub(super) const MIGRATION: &str = r#"
CREATE TABLE usage_names (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
);
CREATE TABLE usage_requests (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    key         INTEGER NOT NULL,
    client      INTEGER NOT NULL,
    dialect     INTEGER NOT NULL,
    asked       INTEGER NOT NULL,
    served      INTEGER NOT NULL,
    profile     INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    input       INTEGER NOT NULL,
    cached      INTEGER NOT NULL,
    output      INTEGER NOT NULL,
    reasoning   INTEGER NOT NULL,
    first_byte_ms INTEGER,
    total_ms    INTEGER NOT NULL,
    hops        INTEGER NOT NULL,
    refused     INTEGER NOT NULL
);
CREATE INDEX usage_requests_at ON usage_requests (at);
CREATE INDEX usage_requests_key ON usage_requests (key, at);
CREATE TABLE usage_hourly (
    hour        INTEGER NOT NULL,
    key         INTEGER NOT NULL,
    client      INTEGER NOT NULL,
    model       INTEGER NOT NULL,
    profile     INTEGER NOT NULL,
    requests    INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    refused     INTEGER NOT NULL,
    input       INTEGER NOT NULL,
    cached      INTEGER NOT NULL,
    output      INTEGER NOT NULL,
    reasoning   INTEGER NOT NULL,
    PRIMARY KEY (hour, key, client, model, profile)
) WITHOUT ROWID;
"#;

/// The rows keyed by their arrival (migration 5): each old row's number becomes its time's
/// ([`row_id`]), its sequence number its place among the rows of the same millisecond (the new
/// numbers are all above the old, so none collides on the way); the time column and its index
/// go, and the index by key keeps only rows with a key.
pub(super) const TIME_KEYED_MIGRATION: &str = r#"
DROP INDEX usage_requests_at;
DROP INDEX usage_requests_key;
UPDATE usage_requests SET id = numbered.id
FROM (SELECT id AS old, (at << 20) + ROW_NUMBER() OVER (PARTITION BY at ORDER BY id) - 1 AS id
      FROM usage_requests) AS numbered
WHERE usage_requests.id = numbered.old;
ALTER TABLE usage_requests DROP COLUMN at;
CREATE INDEX usage_requests_key ON usage_requests (key, id) WHERE key != 0;
"#;

/// The schema version whose migration packs the requests into batches ([`PACKED_MIGRATION`],
/// then [`pack_rows_of_schema_5`]).
pub(super) const PACKED_SCHEMA: usize = 6;

/// The requests packed a batch to a row (migration 6): a batch's number and its last request's
/// arrival bound the times it holds; `keys` has a bit for each gateway key among its requests
/// ([`key_bit`]), so a key's arrivals are read from its batches only.
pub(super) const PACKED_MIGRATION: &str = r#"
CREATE TABLE usage_batches (
    id          INTEGER PRIMARY KEY,
    last_ms     INTEGER NOT NULL,
    requests    INTEGER NOT NULL,
    keys        INTEGER NOT NULL,
    packed      BLOB NOT NULL
);
"#;

/// Name number 0: none (no key, no model served, ...).
const NONE: i64 = 0;
const HOUR_MS: i64 = 3_600_000;
/// Batches deleted per transaction when pruning, so the store's write lock is never held long.
const PRUNE_CHUNK: i64 = 64;
/// The bits of a batch's number (and of a schema-5 row's) below its arrival time: batches that
/// begin in one millisecond (`TIME_KEYED_MIGRATION` writes `<< 20`).
const SEQ_BITS: u32 = 20;
const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;

/// The first number of `at_ms` (every batch beginning in that millisecond or later is at or
/// after it).
fn row_id(at_ms: i64) -> i64 {
    at_ms.saturating_mul(1 << SEQ_BITS)
}

/// When the batch (or schema-5 row) numbered `id` began, in milliseconds since the epoch.
fn arrival_of(id: i64) -> i64 {
    id >> SEQ_BITS
}

/// One request, as the ledger writes it (its names borrowed from the request's record).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UsageRow<'a> {
    /// When the request arrived, in milliseconds since the epoch.
    pub at_ms: i64,
    pub key: Option<Cow<'a, str>>,
    pub client: &'static str,
    pub dialect: &'static str,
    pub asked: Option<&'a str>,
    pub served: Option<&'a str>,
    pub profile: Option<&'a str>,
    pub status: u16,
    pub tokens: Tokens,
    pub first_byte_ms: Option<u32>,
    pub total_ms: u32,
    pub hops: u8,
    /// The limit that refused it, if one did.
    pub refused: Option<&'static str>,
}

impl UsageRow<'_> {
    /// Its names, in the order of [`NameNumbers`].
    fn names(&self) -> [Option<&str>; 7] {
        [
            self.key.as_deref(),
            Some(self.client),
            Some(self.dialect),
            self.asked,
            self.served,
            self.profile,
            self.refused,
        ]
    }
}

/// The numbers one writer gives: its names' (those written so far; names are never removed, so
/// they stay valid) and the sequence its batches' numbers end in.
#[derive(Debug)]
pub(crate) struct UsageIds {
    names: HashMap<String, i64>,
    /// The next batch's sequence number. It starts anywhere, so that two processes writing
    /// batches that begin in one millisecond seldom pick the same number (when they do, the
    /// later batch takes the next free one).
    seq: u32,
}

impl Default for UsageIds {
    fn default() -> Self {
        Self {
            names: HashMap::new(),
            seq: rand::random::<u32>() & SEQ_MASK,
        }
    }
}

/// What `keyward usage --by` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum GroupBy {
    Key,
    Client,
    Model,
    Profile,
    Hour,
    Day,
}

/// Requests and tokens of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct UsageTotals {
    pub requests: u64,
    /// Answered with an error status (refusals by a limit included).
    pub errors: u64,
    /// Refused by a key's limit.
    pub refused: u64,
    #[serde(flatten)]
    pub tokens: Tokens,
}

impl UsageTotals {
    pub(crate) fn add(&mut self, other: &UsageTotals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.refused += other.refused;
        self.tokens.add(&other.tokens);
    }
}

/// One line of a usage report: a group's name (a key, a client, ... or an hour's or a day's
/// start) and its totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UsageGroup {
    /// `None`: requests without one (no key, no model served).
    pub group: Option<String>,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// One request, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RequestRecord {
    pub at: DateTime<Utc>,
    pub key: Option<String>,
    pub client: Option<String>,
    pub dialect: Option<String>,
    pub asked: Option<String>,
    pub served: Option<String>,
    pub profile: Option<String>,
    pub status: u16,
    #[serde(flatten)]
    pub tokens: Tokens,
    pub first_byte_ms: Option<u32>,
    pub total_ms: u32,
    pub hops: u8,
    pub refused: Option<String>,
}

/// A refresh the journal holds (never its tokens).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RefreshRecord {
    pub profile: String,
    pub trigger: String,
    pub state: String,
    pub detail: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

/// Tokens per time bucket and group, for the dashboard's charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SeriesPoint {
    /// The bucket's number from the series' start.
    pub bucket: i64,
    pub group: Option<String>,
    pub requests: u64,
    pub tokens: u64,
}

/// Requests a batch holds at most (a few tens of kilobytes packed): the latest requests are
/// read from the newest batches without unpacking much more than they show.
const MAX_PER_BATCH: usize = 1024;
/// How far apart in arrival a batch's first and last request may be. A request is recorded when
/// it ends, so one written batch can hold a request that arrived long before the others (a long
/// stream): it goes to a batch of its own time.
const MAX_SPAN_MS: i64 = 60_000;

fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS) * 3600
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The bit of `usage_batches.keys` a key's name number sets (numbers share bits past 62: a
/// batch found by a key's bit is still searched for the key).
fn key_bit(key: i64) -> i64 {
    1 << key.rem_euclid(62)
}

/// A request as a batch holds it.
fn packed(row: &UsageRow<'_>, names: NameNumbers) -> PackedRequest {
    PackedRequest {
        at_ms: row.at_ms,
        names,
        status: row.status,
        tokens: row.tokens,
        first_byte_ms: row.first_byte_ms,
        total_ms: row.total_ms,
        hops: row.hops,
    }
}

/// `requests` (in order of arrival) cut into batches of at most [`MAX_PER_BATCH`] spanning at
/// most [`MAX_SPAN_MS`].
fn batches(requests: &[PackedRequest]) -> impl Iterator<Item = &[PackedRequest]> {
    let mut rest = requests;
    std::iter::from_fn(move || {
        let first = rest.first()?.at_ms;
        let len = rest
            .iter()
            .take(MAX_PER_BATCH)
            .take_while(|request| request.at_ms - first <= MAX_SPAN_MS)
            .count()
            .max(1);
        let (batch, after) = rest.split_at(len);
        rest = after;
        Some(batch)
    })
}

/// Writes one batch under the first free number of its first request's millisecond from the
/// writer's sequence (another process may have written a batch of the same millisecond).
fn insert_batch(
    tx: &rusqlite::Connection,
    ids: &mut UsageIds,
    batch: &[PackedRequest],
) -> rusqlite::Result<()> {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(());
    };
    let blob = usage_batch::pack(first.at_ms, batch.iter().copied());
    let keys = batch
        .iter()
        .filter(|request| request.key() != NONE)
        .fold(0, |bits, request| bits | key_bit(request.key()));
    let mut insert = tx.prepare_cached(INSERT_BATCH)?;
    for _ in 0..=SEQ_MASK {
        let id = row_id(first.at_ms).saturating_add(i64::from(ids.seq));
        ids.seq = (ids.seq + 1) & SEQ_MASK;
        if insert.execute(params![id, last.at_ms, batch.len() as i64, keys, blob])? == 1 {
            return Ok(());
        }
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY),
        Some("every batch number of the request's millisecond is taken".into()),
    ))
}

/// The statements a batch is written with, each spelt without a spare space: the statement
/// cache hashes and copies a statement's text each time it is used.
const INSERT_BATCH: &str =
    "INSERT OR IGNORE INTO usage_batches(id,last_ms,requests,keys,packed)VALUES(?,?,?,?,?)";
const UPSERT_HOUR: &str = "INSERT INTO usage_hourly VALUES(?,?,?,?,?,?,?,?,?,?,?,?)\
    ON CONFLICT DO UPDATE SET requests=requests+excluded.requests,errors=errors+excluded.errors,\
    refused=refused+excluded.refused,input=input+excluded.input,cached=cached+excluded.cached,\
    output=output+excluded.output,reasoning=reasoning+excluded.reasoning";

/// Adds `requests` to their hours' roll-ups.
fn add_to_hours(tx: &rusqlite::Connection, requests: &[PackedRequest]) -> rusqlite::Result<()> {
    let mut hours: HashMap<[i64; 5], UsageTotals> = HashMap::new();
    // The group of the requests just before, summed: requests in a row mostly share one.
    let mut run: Option<([i64; 5], UsageTotals)> = None;
    for request in requests {
        let model = if request.served() != NONE {
            request.served()
        } else {
            request.asked()
        };
        let group = [
            hour_of(request.at_ms),
            request.key(),
            request.client(),
            model,
            request.profile(),
        ];
        let totals = UsageTotals {
            requests: 1,
            errors: u64::from(request.status >= 400),
            refused: u64::from(request.refused() != NONE),
            tokens: request.tokens,
        };
        match &mut run {
            Some((last, sum)) if *last == group => sum.add(&totals),
            _ => {
                if let Some((last, sum)) = run.replace((group, totals)) {
                    hours.entry(last).or_default().add(&sum);
                }
            }
        }
    }
    if let Some((last, sum)) = run {
        hours.entry(last).or_default().add(&sum);
    }
    // Statements are looked up by their text (hashed and copied on each use): kept short.
    let mut upsert = tx.prepare_cached(UPSERT_HOUR)?;
    for ([hour, key, client, model, profile], totals) in &hours {
        let t = &totals.tokens;
        upsert.execute(params![
            hour,
            key,
            client,
            model,
            profile,
            to_i64(totals.requests),
            to_i64(totals.errors),
            to_i64(totals.refused),
            to_i64(t.input),
            to_i64(t.cached),
            to_i64(t.output),
            to_i64(t.reasoning)
        ])?;
    }
    Ok(())
}

/// Runs `write` in an immediate transaction, begun and committed through cached statements:
/// parsing `BEGIN` and `COMMIT` anew cost a batch of a few dozen requests as much as writing it.
fn immediate_transaction<T>(
    conn: &rusqlite::Connection,
    write: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let written = write(conn).and_then(|value| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(value)
    });
    if written.is_err() && !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "could not roll back a usage ledger transaction");
        }
    }
    written
}

/// Calls `each` with every request that arrived in `[from_ms, until_ms)`, batch by batch (in
/// order of the batches' numbers; within a batch in order of arrival). `key`: only the batches
/// that may hold that key's requests (the caller still checks each request's key).
fn each_request_between(
    conn: &rusqlite::Connection,
    from_ms: i64,
    until_ms: i64,
    key: Option<i64>,
    mut each: impl FnMut(&PackedRequest),
) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(
        "SELECT id, packed FROM usage_batches
         WHERE id >= ?1 AND id < ?2 AND last_ms >= ?3 AND (?4 = 0 OR (keys & ?4) != 0)
         ORDER BY id",
    )?;
    let mut rows = statement.query(params![
        row_id(from_ms.saturating_sub(MAX_SPAN_MS)),
        row_id(until_ms),
        from_ms,
        key.map_or(0, key_bit)
    ])?;
    while let Some(row) = rows.next()? {
        for request in unpacked(row)? {
            if (from_ms..until_ms).contains(&request.at_ms) {
                each(&request);
            }
        }
    }
    Ok(())
}

/// The requests of a batch row (its number in column 0, its blob in column 1).
fn unpacked(row: &rusqlite::Row<'_>) -> rusqlite::Result<Vec<PackedRequest>> {
    let id: i64 = row.get(0)?;
    let blob = row.get_ref(1)?.as_blob()?;
    usage_batch::unpack(arrival_of(id), blob).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// Names by number, each looked up once per call.
struct NameCache<'c> {
    conn: &'c rusqlite::Connection,
    known: HashMap<i64, Option<String>>,
}

impl<'c> NameCache<'c> {
    fn new(conn: &'c rusqlite::Connection) -> Self {
        Self {
            conn,
            known: HashMap::new(),
        }
    }

    fn name(&mut self, id: i64) -> rusqlite::Result<Option<String>> {
        if let Some(name) = self.known.get(&id) {
            return Ok(name.clone());
        }
        let name = name_of(self.conn, id)?;
        self.known.insert(id, name.clone());
        Ok(name)
    }
}

impl SqliteStore {
    /// Writes `rows` and adds them to their hours' roll-ups, in one transaction.
    pub(crate) fn record_usage(
        &self,
        ids: &mut UsageIds,
        rows: &[UsageRow<'_>],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let conn = self.conn();
        let mut sorted: Vec<&UsageRow<'_>> = rows.iter().collect();
        sorted.sort_by_key(|row| row.at_ms);
        immediate_transaction(&conn, |tx| {
            let names = name_numbers(tx, &mut ids.names, &sorted)?;
            let requests: Vec<PackedRequest> = sorted
                .iter()
                .zip(names)
                .map(|(row, names)| packed(row, names))
                .collect();
            for batch in batches(&requests) {
                insert_batch(tx, ids, batch)?;
            }
            add_to_hours(tx, &requests)
        })
        .map_err(|e| self.err(e))
    }

    /// Deletes the requests that arrived before `rows_before_ms` (whole batches: a batch goes
    /// once its last request is that old) and roll-ups of hours before `hours_before` (seconds),
    /// a chunk per transaction; how many of each went.
    pub(crate) fn prune_usage(
        &self,
        rows_before_ms: i64,
        hours_before: i64,
    ) -> StoreResult<(usize, usize)> {
        let mut requests = 0;
        loop {
            let conn = self.conn();
            let mut delete = conn
                .prepare_cached(
                    "DELETE FROM usage_batches WHERE id IN
                        (SELECT id FROM usage_batches WHERE id < ?1 AND last_ms < ?2 LIMIT ?3)
                     RETURNING requests",
                )
                .map_err(|e| self.err(e))?;
            let deleted = delete
                .query_map(
                    params![row_id(rows_before_ms), rows_before_ms, PRUNE_CHUNK],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(|e| self.err(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err(e))?;
            requests += deleted.iter().map(|n| to_u64(*n) as usize).sum::<usize>();
            if deleted.len() < PRUNE_CHUNK as usize {
                break;
            }
        }
        let hours = self
            .conn()
            .execute(
                "DELETE FROM usage_hourly WHERE hour < ?1",
                params![hours_before],
            )
            .map_err(|e| self.err(e))?;
        Ok((requests, hours))
    }

    /// Totals since `since_ms`, grouped: whole hours from the roll-ups, the part of the first
    /// hour after `since_ms` from the requests (when the batches reach back that far).
    pub(crate) fn usage_groups(&self, since_ms: i64, by: GroupBy) -> StoreResult<Vec<UsageGroup>> {
        let conn = self.conn();
        let oldest: Option<i64> = conn
            .query_row("SELECT MIN(id) FROM usage_batches", [], |row| row.get(0))
            .map_err(|e| self.err(e))?;
        let precise = oldest.is_some_and(|oldest| arrival_of(oldest) <= since_ms);
        let first_whole_hour = if precise {
            (since_ms + HOUR_MS - 1).div_euclid(HOUR_MS) * 3600
        } else {
            hour_of(since_ms)
        };
        let rollup_group = match by {
            GroupBy::Key => "key",
            GroupBy::Client => "client",
            GroupBy::Model => "model",
            GroupBy::Profile => "profile",
            // Times: the bucket's start, in seconds since the epoch.
            GroupBy::Hour => "hour",
            GroupBy::Day => "(hour / 86400) * 86400",
        };
        let mut sums: HashMap<i64, UsageTotals> = HashMap::new();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {rollup_group}, SUM(requests), SUM(errors), SUM(refused), SUM(input),
                    SUM(cached), SUM(output), SUM(reasoning)
                 FROM usage_hourly WHERE hour >= ?1 GROUP BY 1"
            ))
            .map_err(|e| self.err(e))?;
        let mut rows = statement
            .query([first_whole_hour])
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let totals = (|| {
                Ok::<_, rusqlite::Error>(UsageTotals {
                    requests: to_u64(row.get(1)?),
                    errors: to_u64(row.get(2)?),
                    refused: to_u64(row.get(3)?),
                    tokens: Tokens {
                        input: to_u64(row.get(4)?),
                        cached: to_u64(row.get(5)?),
                        output: to_u64(row.get(6)?),
                        reasoning: to_u64(row.get(7)?),
                    },
                })
            })()
            .map_err(|e| self.err(e))?;
            let group: i64 = row.get(0).map_err(|e| self.err(e))?;
            sums.entry(group).or_default().add(&totals);
        }
        if precise {
            each_request_between(
                &conn,
                since_ms,
                first_whole_hour.saturating_mul(1000),
                None,
                |request| {
                    let group = match by {
                        GroupBy::Key => request.key(),
                        GroupBy::Client => request.client(),
                        GroupBy::Model if request.served() != NONE => request.served(),
                        GroupBy::Model => request.asked(),
                        GroupBy::Profile => request.profile(),
                        GroupBy::Hour => hour_of(request.at_ms),
                        GroupBy::Day => request.at_ms.div_euclid(86_400_000) * 86_400,
                    };
                    sums.entry(group).or_default().add(&UsageTotals {
                        requests: 1,
                        errors: u64::from(request.status >= 400),
                        refused: u64::from(request.refused() != NONE),
                        tokens: request.tokens,
                    });
                },
            )
            .map_err(|e| self.err(e))?;
        }
        let named = !matches!(by, GroupBy::Hour | GroupBy::Day);
        let mut sums: Vec<(i64, UsageTotals)> = sums.into_iter().collect();
        if named {
            // The biggest spenders first.
            let spent =
                |totals: &UsageTotals| totals.tokens.input.saturating_add(totals.tokens.output);
            sums.sort_by(|(a, a_totals), (b, b_totals)| {
                spent(b_totals).cmp(&spent(a_totals)).then(a.cmp(b))
            });
        } else {
            sums.sort_by_key(|(group, _)| *group);
        }
        let mut names = NameCache::new(&conn);
        let mut groups = Vec::with_capacity(sums.len());
        for (group, totals) in sums {
            let group = if named {
                names.name(group).map_err(|e| self.err(e))?
            } else {
                DateTime::from_timestamp(group, 0).map(|t| t.to_rfc3339())
            };
            groups.push(UsageGroup { group, totals });
        }
        Ok(groups)
    }

    /// Tokens and requests per bucket of `bucket_secs` from `since_hour` (an hour's start, in
    /// seconds), by key or by client, from the roll-ups.
    pub(crate) fn usage_series(
        &self,
        since_hour: i64,
        bucket_secs: i64,
        by: GroupBy,
    ) -> StoreResult<Vec<SeriesPoint>> {
        let group = match by {
            GroupBy::Client => "client",
            GroupBy::Model => "model",
            GroupBy::Profile => "profile",
            _ => "key",
        };
        let conn = self.conn();
        let mut statement = conn
            .prepare(&format!(
                "SELECT (hour - ?1) / ?2, {group}, SUM(requests), SUM(input) + SUM(output)
                 FROM usage_hourly WHERE hour >= ?1 GROUP BY 1, 2 ORDER BY 1, 2"
            ))
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![since_hour, bucket_secs.max(1)], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut points = Vec::new();
        for row in rows {
            let (bucket, group, requests, tokens) = row.map_err(|e| self.err(e))?;
            points.push(SeriesPoint {
                bucket,
                group: name_of(&conn, group).map_err(|e| self.err(e))?,
                requests: to_u64(requests),
                tokens: to_u64(tokens),
            });
        }
        Ok(points)
    }

    /// The latest `limit` requests, newest first.
    pub(crate) fn latest_requests(&self, limit: usize) -> StoreResult<Vec<RequestRecord>> {
        let conn = self.conn();
        let latest = latest_packed(&conn, limit).map_err(|e| self.err(e))?;
        let mut names = NameCache::new(&conn);
        let mut records = Vec::with_capacity(latest.len());
        for request in latest {
            let mut name = |id: i64| names.name(id).map_err(|e| self.err(e));
            records.push(RequestRecord {
                at: DateTime::from_timestamp_millis(request.at_ms).unwrap_or_default(),
                key: name(request.key())?,
                client: name(request.client())?,
                dialect: name(request.dialect())?,
                asked: name(request.asked())?,
                served: name(request.served())?,
                profile: name(request.profile())?,
                status: request.status,
                tokens: request.tokens,
                first_byte_ms: request.first_byte_ms,
                total_ms: request.total_ms,
                hops: request.hops,
                refused: name(request.refused())?,
            });
        }
        Ok(records)
    }

    /// The latest `limit` refreshes of the journal, newest first: who asked, how it ended.
    pub(crate) fn refresh_events(&self, limit: usize) -> StoreResult<Vec<RefreshRecord>> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(
                "SELECT profile, trigger, state, detail, started_at, updated_at
                 FROM refresh_journal ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([limit as i64], |row| {
                Ok(RefreshRecord {
                    profile: row.get(0)?,
                    trigger: row.get(1)?,
                    state: row.get(2)?,
                    detail: row.get(3)?,
                    started_at: row.get(4)?,
                    updated_at: row.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// When `key`'s requests since `since_ms` arrived (every process's), oldest first.
    pub(crate) fn key_arrivals(&self, key: &str, since_ms: i64) -> StoreResult<Vec<i64>> {
        let conn = self.conn();
        let Some(id) = id_of(&conn, key).map_err(|e| self.err(e))? else {
            return Ok(Vec::new());
        };
        let mut arrivals = Vec::new();
        each_request_between(&conn, since_ms, i64::MAX, Some(id), |request| {
            if request.key() == id {
                arrivals.push(request.at_ms);
            }
        })
        .map_err(|e| self.err(e))?;
        arrivals.sort_unstable();
        Ok(arrivals)
    }

    /// `key`'s tokens (input and output) per hour from `since_hour` (seconds), oldest first.
    pub(crate) fn key_hours(&self, key: &str, since_hour: i64) -> StoreResult<Vec<(i64, u64)>> {
        let conn = self.conn();
        let Some(id) = id_of(&conn, key).map_err(|e| self.err(e))? else {
            return Ok(Vec::new());
        };
        let mut statement = conn
            .prepare_cached(
                "SELECT hour, SUM(input) + SUM(output) FROM usage_hourly
                 WHERE key = ?1 AND hour >= ?2 GROUP BY hour ORDER BY hour",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![id, since_hour], |row| {
                Ok((row.get::<_, i64>(0)?, to_u64(row.get(1)?)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The tokens (input and output) `profile` served since `since_hour` (seconds), by key
    /// (`None`: requests without a key).
    pub(crate) fn profile_tokens_by_key(
        &self,
        profile: &str,
        since_hour: i64,
    ) -> StoreResult<Vec<(Option<String>, u64)>> {
        let conn = self.conn();
        let Some(id) = id_of(&conn, profile).map_err(|e| self.err(e))? else {
            return Ok(Vec::new());
        };
        let mut statement = conn
            .prepare_cached(
                "SELECT n.name, SUM(h.input) + SUM(h.output) FROM usage_hourly h
                 LEFT JOIN usage_names n ON n.id = h.key
                 WHERE h.profile = ?1 AND h.hour >= ?2 GROUP BY h.key",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![id, since_hour], |row| {
                Ok((row.get::<_, Option<String>>(0)?, to_u64(row.get(1)?)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// The numbers of each row's names (in [`UsageRow::names`]' order), new names written. Rows
/// in a batch mostly repeat the names of the row before: those are not looked up again.
fn name_numbers(
    tx: &rusqlite::Connection,
    known: &mut HashMap<String, i64>,
    rows: &[&UsageRow<'_>],
) -> rusqlite::Result<Vec<[i64; 7]>> {
    let mut numbers = Vec::with_capacity(rows.len());
    let mut last_names: [Option<&str>; 7] = [None; 7];
    let mut last = [NONE; 7];
    for row in rows {
        for (slot, name) in row.names().into_iter().enumerate() {
            if !same_name(name, last_names[slot]) {
                last[slot] = name_number(tx, known, name)?;
                last_names[slot] = name;
            }
        }
        numbers.push(last);
    }
    Ok(numbers)
}

/// Whether two names are one: the ledger shares each name among its requests, so the same
/// spelling is nearly always the same memory, and that is checked before the letters.
fn same_name(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b) || a == b,
        (a, b) => a.is_none() && b.is_none(),
    }
}

fn name_number(
    tx: &rusqlite::Connection,
    known: &mut HashMap<String, i64>,
    name: Option<&str>,
) -> rusqlite::Result<i64> {
    let Some(name) = name else {
        return Ok(NONE);
    };
    if let Some(&id) = known.get(name) {
        return Ok(id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO usage_names (name) VALUES (?1)")?
        .execute([name])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM usage_names WHERE name = ?1")?
        .query_row([name], |row| row.get(0))?;
    known.insert(name.to_string(), id);
    Ok(id)
}

/// The latest `limit` requests, newest first (requests of one millisecond in the order of their
/// batches' numbers, then of arrival, reversed).
fn latest_packed(
    conn: &rusqlite::Connection,
    limit: usize,
) -> rusqlite::Result<Vec<PackedRequest>> {
    let mut latest: Vec<(i64, usize, PackedRequest)> = Vec::new();
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut statement =
        conn.prepare_cached("SELECT id, packed FROM usage_batches ORDER BY id DESC")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        // The batches still to read began no later than this one, and a batch spans at most
        // MAX_SPAN_MS: once `limit` requests are newer than all it can hold, the rest are older.
        if latest.len() >= limit && arrival_of(id) + MAX_SPAN_MS < latest[limit - 1].2.at_ms {
            break;
        }
        latest.extend(
            unpacked(row)?
                .into_iter()
                .enumerate()
                .map(|(index, request)| (id, index, request)),
        );
        latest.sort_unstable_by_key(|(id, index, request)| {
            std::cmp::Reverse((request.at_ms, *id, *index))
        });
        latest.truncate(limit);
    }
    Ok(latest.into_iter().map(|(_, _, request)| request).collect())
}

/// Packs the requests of a store of schema 5 (a row each in `usage_requests`) into batches, and
/// drops their table: the second half of migration 6.
pub(super) fn pack_rows_of_schema_5(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut ids = UsageIds::default();
    let mut select = tx.prepare(
        "SELECT id, key, client, dialect, asked, served, profile, refused, status, input, cached,
            output, reasoning, first_byte_ms, total_ms, hops
         FROM usage_requests ORDER BY id",
    )?;
    let mut rows = select.query([])?;
    let mut pending = Vec::with_capacity(MAX_PER_BATCH);
    while let Some(row) = rows.next()? {
        let mut names = [NONE; 7];
        for (column, name) in names.iter_mut().enumerate() {
            *name = row.get(column + 1)?;
        }
        pending.push(PackedRequest {
            at_ms: arrival_of(row.get(0)?),
            names,
            status: row.get(8)?,
            tokens: Tokens {
                input: to_u64(row.get(9)?),
                cached: to_u64(row.get(10)?),
                output: to_u64(row.get(11)?),
                reasoning: to_u64(row.get(12)?),
            },
            first_byte_ms: row.get(13)?,
            total_ms: row.get(14)?,
            hops: row.get(15)?,
        });
        if pending.len() == MAX_PER_BATCH {
            for batch in batches(&pending) {
                insert_batch(tx, &mut ids, batch)?;
            }
            pending.clear();
        }
    }
    for batch in batches(&pending) {
        insert_batch(tx, &mut ids, batch)?;
    }
    drop(rows);
    drop(select);
    tx.execute_batch("DROP TABLE usage_requests;")
}

fn id_of(conn: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM usage_names WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()
}

fn name_of(conn: &rusqlite::Connection, id: i64) -> rusqlite::Result<Option<String>> {
    if id == NONE {
        return Ok(None);
    }
    conn.prepare_cached("SELECT name FROM usage_names WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Cooldown, PoolStore, StoreError};

    const NOW_MS: i64 = 1_800_000_000_000;

    fn row(
        at_ms: i64,
        key: Option<&'static str>,
        client: &'static str,
        tokens: u64,
    ) -> UsageRow<'static> {
        UsageRow {
            at_ms,
            key: key.map(Cow::Borrowed),
            client,
            dialect: "chat",
            asked: Some("claude-sonnet-4-5"),
            served: Some("gpt-6.1-sol"),
            profile: Some("openai-codex:default"),
            status: 200,
            tokens: Tokens {
                input: tokens,
                cached: tokens / 2,
                output: tokens / 10,
                reasoning: 0,
            },
            first_byte_ms: Some(40),
            total_ms: 900,
            hops: 0,
            refused: None,
        }
    }

    fn store() -> Result<(tempfile::TempDir, SqliteStore), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open_for_usage(dir.path())?;
        Ok((dir, store))
    }

    /// A store in `dir` as keyward's `version` left it.
    fn store_of_version(
        dir: &std::path::Path,
        version: usize,
    ) -> Result<rusqlite::Connection, Box<dyn std::error::Error>> {
        let conn = rusqlite::Connection::open(dir.join("keyward.db"))?;
        for migration in &super::super::sqlite::MIGRATIONS[..version] {
            conn.execute_batch(migration)?;
        }
        conn.pragma_update(None, "user_version", version as i64)?;
        Ok(conn)
    }

    /// A store of the version before the ledger keeps what it held and gains the ledger's
    /// tables.
    #[test]
    fn an_older_store_gains_the_ledger() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let conn = store_of_version(dir.path(), 3)?;
            conn.execute(
                "INSERT INTO cooldowns (profile, until, reason, since) VALUES ('openai-codex:default', '2030-01-01T00:00:00Z', 'usage limit', '2026-01-01T00:00:00Z')",
                [],
            )?;
        }
        let store = SqliteStore::open_for_usage(dir.path())?;
        assert_eq!(
            store.schema_version()?,
            super::super::sqlite::MIGRATIONS.len() as i64
        );
        assert_eq!(store.cooldowns()?.len(), 1);
        let cooldown: &Cooldown = &store.cooldowns()?[0].1;
        assert_eq!(cooldown.reason, "usage limit");
        store.record_usage(
            &mut UsageIds::default(),
            &[row(NOW_MS, Some("a"), "curl", 10)],
        )?;
        assert_eq!(store.latest_requests(10)?.len(), 1);
        Ok(())
    }

    /// Everything the ledger's readers ask of a store, from `since_ms` on.
    fn answers(store: &SqliteStore, since_ms: i64) -> Result<String, Box<dyn std::error::Error>> {
        let mut answers = Vec::new();
        for by in [
            GroupBy::Key,
            GroupBy::Client,
            GroupBy::Model,
            GroupBy::Profile,
            GroupBy::Hour,
            GroupBy::Day,
        ] {
            answers.push(format!("{by:?}: {:?}", store.usage_groups(since_ms, by)?));
            answers.push(format!(
                "{by:?}: {:?}",
                store.usage_series(since_ms / 1000 / 3600 * 3600, 3600, by)?
            ));
        }
        // Newest first; rows of one millisecond in any order.
        let latest = store.latest_requests(100)?;
        let mut records: Vec<String> = latest.iter().map(|r| format!("{r:?}")).collect();
        records.sort();
        answers.push(format!(
            "{:?}",
            latest.iter().map(|r| r.at).collect::<Vec<_>>()
        ));
        answers.push(records.join("\n"));
        answers.push(format!("{:?}", store.key_arrivals("agent", since_ms)?));
        answers.push(format!("{:?}", store.key_hours("agent", since_ms / 1000)?));
        answers.push(format!(
            "{:?}",
            store.profile_tokens_by_key("openai-codex:default", since_ms / 1000)?
        ));
        Ok(answers.join("\n"))
    }

    /// A store of schema `version` (4: a row per request numbered as written, here newest
    /// first, with its time in an indexed column; 5: a row per request numbered by arrival) in
    /// `dir` holding `rows`, with the names and roll-ups `current` holds for them.
    fn write_rows_of_schema(
        dir: &std::path::Path,
        version: usize,
        current: &SqliteStore,
        rows: &[UsageRow<'_>],
    ) -> Result<(), Box<dyn std::error::Error>> {
        let conn = store_of_version(dir, version)?;
        conn.execute(
            "ATTACH ?1 AS current",
            [current.path().to_str().ok_or("path")?],
        )?;
        conn.execute_batch(
            "INSERT INTO usage_names SELECT * FROM current.usage_names;
             INSERT INTO usage_hourly SELECT * FROM current.usage_hourly;",
        )?;
        let number = |name: Option<&str>| -> rusqlite::Result<i64> {
            Ok(id_of(&conn, name.unwrap_or(""))?.unwrap_or(NONE))
        };
        let mut sorted: Vec<&UsageRow<'_>> = rows.iter().collect();
        sorted.sort_by_key(|row| row.at_ms);
        for (place, row) in sorted.iter().enumerate() {
            let (id, at) = match version {
                4 => ((rows.len() - place) as i64, Some(row.at_ms)),
                _ => (row_id(row.at_ms) + place as i64, None),
            };
            let mut values: Vec<rusqlite::types::Value> = vec![id.into()];
            values.extend(at.map(Into::into));
            for name in row.names() {
                values.push(number(name)?.into());
            }
            let t = &row.tokens;
            values.extend([
                i64::from(row.status).into(),
                to_i64(t.input).into(),
                to_i64(t.cached).into(),
                to_i64(t.output).into(),
                to_i64(t.reasoning).into(),
                row.first_byte_ms.map(i64::from).into(),
                i64::from(row.total_ms).into(),
                i64::from(row.hops).into(),
            ]);
            let at_column = if version == 4 { "at, " } else { "" };
            let marks = vec!["?"; values.len()].join(", ");
            conn.execute(
                &format!(
                    "INSERT INTO usage_requests (id, {at_column}key, client, dialect, asked, served,
                        profile, refused, status, input, cached, output, reasoning, first_byte_ms,
                        total_ms, hops) VALUES ({marks})"
                ),
                rusqlite::params_from_iter(values),
            )?;
        }
        Ok(())
    }

    /// A store of the ledger's first schema (rows numbered as they were written, an index on
    /// their time) or of its second (a row per request numbered by arrival) keeps every request
    /// when opened, packed in batches; it answers every reader as a store written by this version
    /// does, and takes new requests, in a millisecond it already holds too.
    #[test]
    fn a_store_of_the_first_ledger_schema_keeps_its_rows() -> Result<(), Box<dyn std::error::Error>>
    {
        let hour = NOW_MS.div_euclid(HOUR_MS) * HOUR_MS;
        let rows = [
            row(hour - 3 * HOUR_MS, Some("agent"), "curl", 2000),
            row(hour - HOUR_MS + 10_000, Some("agent"), "curl", 1000),
            row(hour - HOUR_MS / 2, Some("agent"), "claude-code", 100),
            row(hour + 5_000, Some("agent"), "curl", 10),
            row(hour + 5_000, None, "codex", 1),
            row(hour + 5_000, Some("scripts"), "codex", 3),
            row(hour + 6_000, None, "codex", 4),
        ];
        let (_current_dir, current) = store()?;
        current.record_usage(&mut UsageIds::default(), &rows)?;

        for version in [4, 5] {
            let dir = tempfile::tempdir()?;
            write_rows_of_schema(dir.path(), version, &current, &rows)?;
            let migrated = SqliteStore::open_for_usage(dir.path())?;
            assert_eq!(
                migrated.schema_version()?,
                super::super::sqlite::MIGRATIONS.len() as i64
            );
            assert_eq!(migrated.latest_requests(100)?.len(), rows.len());
            for since in [hour - 4 * HOUR_MS, hour - HOUR_MS / 2 - 1, hour + 5_000] {
                assert_eq!(
                    answers(&migrated, since)?,
                    answers(&current, since)?,
                    "schema {version}"
                );
            }
        }
        let dir = tempfile::tempdir()?;
        write_rows_of_schema(dir.path(), 4, &current, &rows)?;
        let migrated = SqliteStore::open_for_usage(dir.path())?;
        let new = [row(hour + 5_000, Some("agent"), "curl", 20)];
        migrated.record_usage(&mut UsageIds::default(), &new)?;
        current.record_usage(&mut UsageIds::default(), &new)?;
        assert_eq!(
            migrated.key_arrivals("agent", hour)?,
            vec![hour + 5_000, hour + 5_000]
        );
        assert_eq!(answers(&migrated, hour)?, answers(&current, hour)?);
        Ok(())
    }

    /// Two writers (two processes) that give rows of one millisecond the same numbers: the
    /// later rows take the next free ones, and every row is kept.
    #[test]
    fn rows_numbered_alike_by_two_writers_are_all_kept() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, store) = store()?;
        let first = UsageIds::default();
        let seq = first.seq;
        let rows: Vec<UsageRow<'_>> = (0..5)
            .map(|n| row(NOW_MS, Some("agent"), "curl", n))
            .collect();
        for _ in 0..2 {
            let mut ids = UsageIds {
                names: HashMap::new(),
                seq,
            };
            store.record_usage(&mut ids, &rows)?;
        }
        // A third, its numbers at the millisecond's last, wrapping to its first.
        let mut last = UsageIds {
            names: HashMap::new(),
            seq: SEQ_MASK,
        };
        store.record_usage(&mut last, &rows[..2])?;
        assert_eq!(store.key_arrivals("agent", NOW_MS)?, vec![NOW_MS; 12]);
        let groups = store.usage_groups(NOW_MS, GroupBy::Key)?;
        assert_eq!(groups[0].totals.requests, 12);
        assert_eq!(groups[0].totals.tokens.input, 2 * 10 + 1);
        Ok(())
    }

    /// Totals since a moment in an hour: that hour's part from the rows, the hours after from
    /// the roll-ups, grouped by key; no row before the moment counts.
    #[test]
    fn totals_since_a_moment() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, store) = store()?;
        let hour = NOW_MS.div_euclid(HOUR_MS) * HOUR_MS;
        let mut names = UsageIds::default();
        store.record_usage(
            &mut names,
            &[
                row(hour - HOUR_MS + 10_000, Some("agent"), "curl", 1000),
                row(hour - HOUR_MS / 2, Some("agent"), "claude-code", 100),
                row(hour + 5_000, Some("agent"), "curl", 10),
                row(hour + 6_000, None, "codex", 1),
            ],
        )?;
        let since = hour - HOUR_MS / 2 - 1;
        let groups = store.usage_groups(since, GroupBy::Key)?;
        assert_eq!(
            groups
                .iter()
                .map(|g| (g.group.clone(), g.totals.requests, g.totals.tokens.input))
                .collect::<Vec<_>>(),
            vec![(Some("agent".to_string()), 2, 110), (None, 1, 1)]
        );
        let clients = store.usage_groups(since, GroupBy::Client)?;
        assert_eq!(clients.len(), 3);
        let hours = store.usage_groups(hour - 2 * HOUR_MS, GroupBy::Hour)?;
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].totals.requests, 2);
        let series = store.usage_series(hour / 1000 - 3600, 3600, GroupBy::Client)?;
        assert!(series
            .iter()
            .any(|p| p.bucket == 1 && p.group.as_deref() == Some("codex")));
        Ok(())
    }

    /// Pruning drops rows past their retention and keeps the hourly roll-ups, which then answer.
    #[test]
    fn rollups_outlive_rows() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, store) = store()?;
        let old = NOW_MS - 40 * 24 * HOUR_MS;
        store.record_usage(
            &mut UsageIds::default(),
            &[
                row(old, Some("agent"), "curl", 500),
                row(NOW_MS, Some("agent"), "curl", 5),
            ],
        )?;
        let (rows, hours) = store.prune_usage(NOW_MS - 30 * 24 * HOUR_MS, 0)?;
        assert_eq!((rows, hours), (1, 0));
        assert_eq!(store.latest_requests(10)?.len(), 1);
        let groups = store.usage_groups(old - HOUR_MS, GroupBy::Key)?;
        assert_eq!(
            groups[0].totals.tokens.input, 505,
            "the old hour from its roll-up"
        );
        assert_eq!(store.key_hours("agent", old / 1000 - 3600)?.len(), 2);
        assert_eq!(store.key_arrivals("agent", NOW_MS - 1)?, vec![NOW_MS]);
        assert_eq!(store.key_arrivals("nobody", 0)?, Vec::<i64>::new());
        Ok(())
    }

    /// A batch keeps every request whole, in order.
    #[test]
    fn a_batch_keeps_every_row() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, store) = store()?;
        let rows: Vec<UsageRow> = (0..75)
            .map(|n| {
                let mut r = row(NOW_MS + n, [Some("agent"), None][n as usize % 2], "curl", 7);
                r.first_byte_ms = (n % 3 != 0).then_some(n as u32);
                r.total_ms = 1000 + n as u32;
                r.refused = (n == 74).then_some("requests_per_minute");
                r
            })
            .collect();
        store.record_usage(&mut UsageIds::default(), &rows)?;
        let latest = store.latest_requests(100)?;
        assert_eq!(latest.len(), 75);
        for (record, row) in latest.iter().rev().zip(&rows) {
            assert_eq!(record.at.timestamp_millis(), row.at_ms);
            assert_eq!(record.key.as_deref(), row.key.as_deref());
            assert_eq!(record.first_byte_ms, row.first_byte_ms);
            assert_eq!(record.total_ms, row.total_ms);
            assert_eq!(record.tokens, row.tokens);
            assert_eq!(record.refused.as_deref(), row.refused);
        }
        let groups = store.usage_groups(NOW_MS - 1, GroupBy::Key)?;
        assert_eq!(groups.iter().map(|g| g.totals.requests).sum::<u64>(), 75);
        Ok(())
    }

    /// Requests written in any batches, arriving in any order over minutes (a long stream is
    /// recorded when it ends, after requests that arrived later): every reader answers what the
    /// requests themselves say.
    #[test]
    fn readers_answer_what_the_requests_say() -> Result<(), Box<dyn std::error::Error>> {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        const KEYS: [Option<&str>; 3] = [Some("agent"), Some("scripts"), None];
        let request = (0i64..5 * 60_000, 0usize..3, 1u64..50);
        let writes = proptest::collection::vec(proptest::collection::vec(request, 1..30), 1..6);
        let mut runner = TestRunner::new(Config {
            cases: 24,
            ..Config::default()
        });
        let hour = NOW_MS.div_euclid(HOUR_MS) * HOUR_MS;
        runner.run(
            &(writes, 0i64..5 * 60_000, 1usize..40),
            |(writes, since, limit)| {
                let (_dir, store) = store().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut ids = UsageIds::default();
                let mut all = Vec::new();
                for write in &writes {
                    let rows: Vec<UsageRow<'_>> = write
                        .iter()
                        .map(|&(at, key, tokens)| row(hour + at, KEYS[key], "curl", tokens))
                        .collect();
                    store
                        .record_usage(&mut ids, &rows)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    all.extend(rows);
                }
                let fail = |e: StoreError| TestCaseError::fail(e.to_string());
                let mut arrivals: Vec<i64> = all.iter().map(|r| r.at_ms).collect();
                arrivals.sort_unstable_by(|a, b| b.cmp(a));
                let latest = store.latest_requests(limit).map_err(fail)?;
                let latest: Vec<i64> = latest.iter().map(|r| r.at.timestamp_millis()).collect();
                prop_assert_eq!(&latest[..], &arrivals[..limit.min(arrivals.len())]);
                let since = hour + since;
                let mut agent: Vec<i64> = all
                    .iter()
                    .filter(|r| r.key.as_deref() == Some("agent") && r.at_ms >= since)
                    .map(|r| r.at_ms)
                    .collect();
                agent.sort_unstable();
                prop_assert_eq!(store.key_arrivals("agent", since).map_err(fail)?, agent);
                for (key, group) in store
                    .usage_groups(since, GroupBy::Key)
                    .map_err(fail)?
                    .iter()
                    .map(|g| (g.group.clone(), g))
                {
                    let mine = all
                        .iter()
                        .filter(|r| r.key.as_deref() == key.as_deref() && r.at_ms >= since);
                    prop_assert_eq!(group.totals.requests, mine.clone().count() as u64);
                    prop_assert_eq!(
                        group.totals.tokens.input,
                        mine.map(|r| r.tokens.input).sum::<u64>()
                    );
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// A write that fails leaves nothing of itself, and the next one is written.
    #[test]
    fn a_failed_write_leaves_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, store) = store()?;
        let conn = store.conn();
        let request = packed(&row(NOW_MS, None, "curl", 5), [NONE; 7]);
        let failed: rusqlite::Result<()> = immediate_transaction(&conn, |tx| {
            insert_batch(tx, &mut UsageIds::default(), &[request])?;
            tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        assert!(conn.is_autocommit(), "rolled back");
        immediate_transaction(&conn, |tx| add_to_hours(tx, &[request]))?;
        drop(conn);
        assert_eq!(store.latest_requests(10)?.len(), 0);
        let groups = store.usage_groups(NOW_MS - HOUR_MS, GroupBy::Key)?;
        assert_eq!(groups.len(), 1, "{groups:?}");
        Ok(())
    }

    /// What a million requests take in the store (`scripts/bench ledger` reports it):
    /// `cargo test --release -p keyward --lib -- --ignored bytes_per_million --nocapture`.
    #[test]
    #[ignore = "a figure for BENCHMARKS.md; writes about 100 MB"]
    fn bytes_per_million_requests() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, store) = store()?;
        let mut names = UsageIds::default();
        let keys = [
            Some("claude-code"),
            Some("scripts"),
            Some("agent-1"),
            Some("agent-2"),
            None,
        ];
        let clients = [
            "claude-code",
            "codex",
            "openai-python",
            "curl",
            "opencode",
            "unknown",
        ];
        let models = [
            "gpt-6.1-sol",
            "gpt-6-astra",
            "gpt-6-luna",
            "claude-sonnet-4-5",
        ];
        let profiles = ["openai-codex:default", "openai-codex:work", "openai:backup"];
        let total = 1_000_000usize;
        let start = NOW_MS - 7 * 24 * HOUR_MS;
        let mut batch = Vec::with_capacity(4096);
        for n in 0..total {
            let mut r = row(
                start + (n as i64) * 600,
                keys[n % 5],
                clients[n % 6],
                2000 + (n % 7000) as u64,
            );
            r.served = Some(models[n % 4]);
            r.profile = Some(profiles[n % 3]);
            r.tokens.output = 50 + (n % 900) as u64;
            r.tokens.reasoning = (n % 300) as u64;
            r.first_byte_ms = Some(200 + (n % 800) as u32);
            r.total_ms = 1000 + (n % 30_000) as u32;
            batch.push(r);
            if batch.len() == 4096 {
                store.record_usage(&mut names, &batch)?;
                batch.clear();
            }
        }
        store.record_usage(&mut names, &batch)?;
        store
            .conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        let bytes: u64 = ["keyward.db", "keyward.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "figures: the usage ledger holds {total} requests (a week of 7 days, 5 keys, 6 clients, 4 models, 3 profiles) in {:.1} MB: {:.0} bytes per request, {:.0} MB per million",
            bytes as f64 / 1e6,
            bytes as f64 / total as f64,
            bytes as f64 / total as f64
        );
        Ok(())
    }
}
