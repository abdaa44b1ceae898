//! The usage ledger's tables: one row per request (`usage_requests`, kept `usage_retention`) and
//! hourly roll-ups (`usage_hourly`, kept `usage_rollup_retention`), with the names they repeat
//! (keys, clients, dialects, models, profiles, limits) kept once in `usage_names` and referred to
//! by number, so a row is a few dozen bytes. No prompt or answer content is ever in them.
//!
//! The ledger writes them from its own thread in batches ([`SqliteStore::record_usage`]: rows and
//! roll-ups in one transaction); `keyward usage`, the dashboard and the key limits read them.
//!
//! A row's number is its arrival time ([`row_id`]: milliseconds since the epoch, shifted left by
//! [`SEQ_BITS`], plus a sequence number), so the table's own order is time order: a range of time
//! is a range of rows, with no index on time for every row to keep up. The one secondary index,
//! by key, holds only rows that came with a gateway key (what the key limits read back).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::sqlite::SqliteStore;
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

/// Name number 0: none (no key, no model served, ...).
const NONE: i64 = 0;
const HOUR_MS: i64 = 3_600_000;
/// Rows deleted per transaction when pruning, so the store's write lock is never held long.
const PRUNE_CHUNK: i64 = 5_000;
/// The bits of a row's number below its arrival time: rows of one millisecond (the SQL here and
/// `TIME_KEYED_MIGRATION` write `>> 20` and `<< 20`).
const SEQ_BITS: u32 = 20;
const SEQ_MASK: u32 = (1 << SEQ_BITS) - 1;

/// The first row number of `at_ms` (every row of that millisecond or later is at or after it).
fn row_id(at_ms: i64) -> i64 {
    at_ms.saturating_mul(1 << SEQ_BITS)
}

/// When the row numbered `id` arrived, in milliseconds since the epoch.
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
    /// Its names, in the order of [`insert_sql`]'s name columns.
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
/// they stay valid) and the sequence its rows' numbers end in.
#[derive(Debug)]
pub(crate) struct UsageIds {
    names: HashMap<String, i64>,
    /// The next row's sequence number. It starts anywhere, so that two processes writing rows
    /// of one millisecond seldom pick the same number (when they do, the later row takes the
    /// next free one).
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

/// The statements rows are inserted with, by how many rows each writes (the biggest that fits
/// first; 64 rows bind 1,024 values, well under SQLite's bound).
const ROWS_PER_INSERT: [usize; 4] = [64, 16, 4, 1];
const COLUMNS: usize = 16;

/// `or`: what a conflicting row number does (`""`: fails the statement, `"OR IGNORE"`: leaves
/// the row out).
fn insert_sql(rows: usize, or: &str) -> String {
    let row = format!("({})", vec!["?"; COLUMNS].join(","));
    format!(
        "INSERT {or} INTO usage_requests (id, key, client, dialect, asked, served, profile, status,
            input, cached, output, reasoning, first_byte_ms, total_ms, hops, refused)
         VALUES {}",
        vec![row; rows].join(",")
    )
}

/// The column of [`insert_sql`] that may be null (`first_byte_ms`: no byte came).
const NULLABLE: usize = 12;

/// A row's values in the order of [`insert_sql`]'s columns, with its number and its names'
/// (the [`NULLABLE`] one as -1 when it has none).
fn row_values(row: &UsageRow<'_>, id: i64, names: &[i64; 7]) -> [i64; COLUMNS] {
    let [key, client, dialect, asked, served, profile, refused] = *names;
    let t = &row.tokens;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    [
        id,
        key,
        client,
        dialect,
        asked,
        served,
        profile,
        i64::from(row.status),
        count(t.input),
        count(t.cached),
        count(t.output),
        count(t.reasoning),
        row.first_byte_ms.map_or(-1, i64::from),
        i64::from(row.total_ms),
        i64::from(row.hops),
        refused,
    ]
}

/// Binds `rows`' values to `insert`, row after row.
fn bind_rows<'a>(
    insert: &mut rusqlite::Statement<'_>,
    rows: impl Iterator<Item = (&'a UsageRow<'a>, i64, &'a [i64; 7])>,
) -> rusqlite::Result<()> {
    for (index, (row, id, names)) in rows.enumerate() {
        let first = index * COLUMNS + 1;
        for (column, value) in row_values(row, id, names).into_iter().enumerate() {
            // Integers bound as such: the general path through `ToSql` costs as much again.
            if column == NULLABLE && value < 0 {
                insert.raw_bind_parameter(first + column, rusqlite::types::Null)?;
            } else {
                insert.raw_bind_parameter(first + column, value)?;
            }
        }
    }
    Ok(())
}

fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS) * 3600
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
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
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        // In order of arrival: each row lands at the table's end, after the one before it (no
        // page split in the middle), and rows of one millisecond are numbered as they came.
        let mut sorted: Vec<&UsageRow<'_>> = rows.iter().collect();
        sorted.sort_by_key(|row| row.at_ms);
        let rows = &sorted[..];
        let names = name_numbers(&tx, &mut ids.names, rows).map_err(|e| self.err(e))?;
        let numbers: Vec<i64> = rows
            .iter()
            .map(|row| {
                let id = row_id(row.at_ms).saturating_add(i64::from(ids.seq));
                ids.seq = (ids.seq + 1) & SEQ_MASK;
                id
            })
            .collect();
        // Many rows per statement: a statement's run (its cursors opened, its halt) costs as
        // much as the row it writes.
        let mut written = 0;
        for (size, sql) in ROWS_PER_INSERT.iter().zip(INSERTS.iter()) {
            let size = *size;
            if rows.len() - written < size {
                continue;
            }
            let mut insert = tx.prepare_cached(sql).map_err(|e| self.err(e))?;
            while rows.len() - written >= size {
                let chunk = written..written + size;
                let values = rows[chunk.clone()]
                    .iter()
                    .zip(&numbers[chunk.clone()])
                    .zip(&names[chunk.clone()])
                    .map(|((row, id), names)| (*row, *id, names));
                bind_rows(&mut insert, values).map_err(|e| self.err(e))?;
                match insert.raw_execute() {
                    Ok(_) => {}
                    // Another process wrote a row of the same millisecond under one of these
                    // numbers; the statement wrote none of its rows.
                    Err(e) if number_taken(&e) => insert_each(
                        &tx,
                        &rows[chunk.clone()],
                        &numbers[chunk.clone()],
                        &names[chunk],
                    )
                    .map_err(|e| self.err(e))?,
                    Err(e) => return Err(self.err(e)),
                }
                written += size;
            }
        }
        let mut hours: HashMap<[i64; 5], UsageTotals> = HashMap::new();
        // The group of the rows just before, summed: rows in a row mostly share one.
        let mut run: Option<([i64; 5], UsageTotals)> = None;
        for (row, [key, client, _, asked, served, profile, refused]) in rows.iter().zip(&names) {
            let model = if *served != NONE { *served } else { *asked };
            let group = [hour_of(row.at_ms), *key, *client, model, *profile];
            let totals = UsageTotals {
                requests: 1,
                errors: u64::from(row.status >= 400),
                refused: u64::from(*refused != NONE),
                tokens: row.tokens,
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
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO usage_hourly (hour, key, client, model, profile, requests, errors, refused,
                        input, cached, output, reasoning)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (hour, key, client, model, profile) DO UPDATE SET
                        requests = requests + excluded.requests, errors = errors + excluded.errors,
                        refused = refused + excluded.refused, input = input + excluded.input,
                        cached = cached + excluded.cached, output = output + excluded.output,
                        reasoning = reasoning + excluded.reasoning",
                )
                .map_err(|e| self.err(e))?;
            for ([hour, key, client, model, profile], totals) in &hours {
                let t = &totals.tokens;
                upsert
                    .execute(params![
                        hour,
                        key,
                        client,
                        model,
                        profile,
                        totals.requests as i64,
                        totals.errors as i64,
                        totals.refused as i64,
                        t.input as i64,
                        t.cached as i64,
                        t.output as i64,
                        t.reasoning as i64
                    ])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Deletes rows that arrived before `rows_before_ms` and roll-ups of hours before
    /// `hours_before` (seconds), a chunk per transaction; how many of each went.
    pub(crate) fn prune_usage(
        &self,
        rows_before_ms: i64,
        hours_before: i64,
    ) -> StoreResult<(usize, usize)> {
        let mut rows = 0;
        loop {
            let deleted = self
                .conn()
                .execute(
                    "DELETE FROM usage_requests WHERE id IN
                        (SELECT id FROM usage_requests WHERE id < ?1 LIMIT ?2)",
                    params![row_id(rows_before_ms), PRUNE_CHUNK],
                )
                .map_err(|e| self.err(e))?;
            rows += deleted;
            if deleted < PRUNE_CHUNK as usize {
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
        Ok((rows, hours))
    }

    /// Totals since `since_ms`, grouped: whole hours from the roll-ups, the part of the first
    /// hour after `since_ms` from the rows (when the rows reach back that far).
    pub(crate) fn usage_groups(&self, since_ms: i64, by: GroupBy) -> StoreResult<Vec<UsageGroup>> {
        let conn = self.conn();
        let oldest_row: Option<i64> = conn
            .query_row("SELECT MIN(id) FROM usage_requests", [], |row| row.get(0))
            .map_err(|e| self.err(e))?;
        let precise = oldest_row.is_some_and(|oldest| arrival_of(oldest) <= since_ms);
        let first_whole_hour = if precise {
            (since_ms + HOUR_MS - 1).div_euclid(HOUR_MS) * 3600
        } else {
            hour_of(since_ms)
        };
        let (rollup_group, row_group) = match by {
            GroupBy::Key => ("key", "key"),
            GroupBy::Client => ("client", "client"),
            GroupBy::Model => ("model", "CASE WHEN served != 0 THEN served ELSE asked END"),
            GroupBy::Profile => ("profile", "profile"),
            // Times: the bucket's start, in seconds since the epoch.
            GroupBy::Hour => ("hour", "((id >> 20) / 3600000) * 3600"),
            GroupBy::Day => ("(hour / 86400) * 86400", "((id >> 20) / 86400000) * 86400"),
        };
        let named = !matches!(by, GroupBy::Hour | GroupBy::Day);
        let sums = "COUNT(*), SUM(status >= 400), SUM(refused != 0), SUM(input), SUM(cached), SUM(output), SUM(reasoning)";
        let rollup_sums = "SUM(requests), SUM(errors), SUM(refused), SUM(input), SUM(cached), SUM(output), SUM(reasoning)";
        let sql = format!(
            "SELECT g, SUM(n), SUM(e), SUM(r), SUM(i), SUM(c), SUM(o), SUM(x) FROM (
                SELECT {rollup_group} AS g, {rollup_sums_cols}
                FROM usage_hourly WHERE hour >= ?1 GROUP BY 1
                UNION ALL
                SELECT {row_group} AS g, {sums_cols}
                FROM usage_requests WHERE ?3 AND id >= ?2 AND id < ?4 GROUP BY 1
             ) GROUP BY g ORDER BY {order}",
            rollup_sums_cols = alias(rollup_sums),
            sums_cols = alias(sums),
            order = if named {
                "SUM(i) + SUM(o) DESC, g"
            } else {
                "g"
            },
        );
        let mut statement = conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(
                params![
                    first_whole_hour,
                    row_id(since_ms),
                    precise,
                    row_id(first_whole_hour.saturating_mul(1000))
                ],
                |row| {
                    let numbers: [i64; 7] = [
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                        row.get(7)?,
                    ];
                    Ok((row.get::<_, i64>(0)?, numbers))
                },
            )
            .map_err(|e| self.err(e))?;
        let mut groups = Vec::new();
        for row in rows {
            let (group, [n, e, r, i, c, o, x]) = row.map_err(|e| self.err(e))?;
            let group = if named {
                name_of(&conn, group).map_err(|e| self.err(e))?
            } else {
                DateTime::from_timestamp(group, 0).map(|t| t.to_rfc3339())
            };
            groups.push(UsageGroup {
                group,
                totals: UsageTotals {
                    requests: to_u64(n),
                    errors: to_u64(e),
                    refused: to_u64(r),
                    tokens: Tokens {
                        input: to_u64(i),
                        cached: to_u64(c),
                        output: to_u64(o),
                        reasoning: to_u64(x),
                    },
                },
            });
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
        let mut statement = conn
            .prepare(
                "SELECT r.id >> 20, k.name, c.name, d.name, a.name, s.name, p.name, r.status, r.input, r.cached,
                        r.output, r.reasoning, r.first_byte_ms, r.total_ms, r.hops, l.name
                 FROM (SELECT * FROM usage_requests ORDER BY id DESC LIMIT ?1) AS r
                 LEFT JOIN usage_names k ON k.id = r.key
                 LEFT JOIN usage_names c ON c.id = r.client
                 LEFT JOIN usage_names d ON d.id = r.dialect
                 LEFT JOIN usage_names a ON a.id = r.asked
                 LEFT JOIN usage_names s ON s.id = r.served
                 LEFT JOIN usage_names p ON p.id = r.profile
                 LEFT JOIN usage_names l ON l.id = r.refused
                 ORDER BY r.id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([limit as i64], |row| {
                Ok(RequestRecord {
                    at: DateTime::from_timestamp_millis(row.get(0)?).unwrap_or_default(),
                    key: row.get(1)?,
                    client: row.get(2)?,
                    dialect: row.get(3)?,
                    asked: row.get(4)?,
                    served: row.get(5)?,
                    profile: row.get(6)?,
                    status: row.get(7)?,
                    tokens: Tokens {
                        input: to_u64(row.get(8)?),
                        cached: to_u64(row.get(9)?),
                        output: to_u64(row.get(10)?),
                        reasoning: to_u64(row.get(11)?),
                    },
                    first_byte_ms: row.get(12)?,
                    total_ms: row.get(13)?,
                    hops: row.get(14)?,
                    refused: row.get(15)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
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
        let mut statement = conn
            .prepare_cached(
                // `key != 0`: what the index by key holds.
                "SELECT id >> 20 FROM usage_requests WHERE key = ?1 AND key != 0 AND id >= ?2 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map(params![id, row_id(since_ms)], |row| row.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
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

/// [`insert_sql`] for each of [`ROWS_PER_INSERT`], built once.
static INSERTS: LazyLock<[String; 4]> =
    LazyLock::new(|| ROWS_PER_INSERT.map(|rows| insert_sql(rows, "")));

/// The numbers of each row's names (in [`UsageRow::names`]' order), new names written. Rows
/// in a batch mostly repeat the names of the row before: those are not looked up again.
fn name_numbers(
    tx: &rusqlite::Transaction<'_>,
    known: &mut HashMap<String, i64>,
    rows: &[&UsageRow<'_>],
) -> rusqlite::Result<Vec<[i64; 7]>> {
    let mut numbers = Vec::with_capacity(rows.len());
    let mut last_names: [Option<&str>; 7] = [None; 7];
    let mut last = [NONE; 7];
    for row in rows {
        for (slot, name) in row.names().into_iter().enumerate() {
            if name != last_names[slot] {
                last[slot] = name_number(tx, known, name)?;
                last_names[slot] = name;
            }
        }
        numbers.push(last);
    }
    Ok(numbers)
}

fn name_number(
    tx: &rusqlite::Transaction<'_>,
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

/// Whether an insert failed on a row number already taken.
fn number_taken(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(failure, _)
        if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Writes rows one at a time, each under the first free number of its millisecond from the one
/// it was given.
fn insert_each(
    tx: &rusqlite::Transaction<'_>,
    rows: &[&UsageRow<'_>],
    numbers: &[i64],
    names: &[[i64; 7]],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(&insert_sql(1, "OR IGNORE"))?;
    for ((row, &first), names) in rows.iter().zip(numbers).zip(names) {
        let mut id = first;
        loop {
            bind_rows(&mut insert, std::iter::once((*row, id, names)))?;
            if insert.raw_execute()? == 1 {
                break;
            }
            id = row_id(arrival_of(id)) + ((id + 1) & i64::from(SEQ_MASK));
            if id == first {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY),
                    Some("every row number of the request's millisecond is taken".into()),
                ));
            }
        }
    }
    Ok(())
}

/// Each `SUM(...)` of a list named for the outer query's columns.
fn alias(sums: &str) -> String {
    sums.split(", ")
        .zip(["n", "e", "r", "i", "c", "o", "x"])
        .map(|(sum, name)| format!("{sum} AS {name}"))
        .collect::<Vec<_>>()
        .join(", ")
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
    use crate::store::{Cooldown, PoolStore};

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

    /// A store of the ledger's first schema (rows numbered as they were written, an index on
    /// their time) keeps every row when opened, numbered by arrival, rows of one millisecond
    /// apart; it answers every reader as a store written by this version does, and takes new
    /// rows, in a millisecond it already holds too.
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

        // The same rows in a store of schema 4, numbered in another order than they arrived.
        let dir = tempfile::tempdir()?;
        {
            let conn = store_of_version(dir.path(), 4)?;
            conn.execute(
                "ATTACH ?1 AS current",
                [current.path().to_str().ok_or("path")?],
            )?;
            conn.execute_batch(
                "INSERT INTO usage_names SELECT * FROM current.usage_names;
                 INSERT INTO usage_hourly SELECT * FROM current.usage_hourly;
                 INSERT INTO usage_requests (id, at, key, client, dialect, asked, served, profile,
                    status, input, cached, output, reasoning, first_byte_ms, total_ms, hops, refused)
                 SELECT ROW_NUMBER() OVER (ORDER BY id DESC), id >> 20, key, client, dialect, asked,
                    served, profile, status, input, cached, output, reasoning, first_byte_ms,
                    total_ms, hops, refused
                 FROM current.usage_requests;",
            )?;
        }
        let migrated = SqliteStore::open_for_usage(dir.path())?;
        assert_eq!(
            migrated.schema_version()?,
            super::super::sqlite::MIGRATIONS.len() as i64
        );
        assert_eq!(migrated.latest_requests(100)?.len(), rows.len());
        for since in [hour - 4 * HOUR_MS, hour - HOUR_MS / 2 - 1, hour + 5_000] {
            assert_eq!(answers(&migrated, since)?, answers(&current, since)?);
        }
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

    /// A batch written many rows per statement keeps every row whole, in order: 75 rows go as
    /// 64, 4, 4 and three single ones.
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
