//! A scripted week of usage written into keyward's store, for the dashboard's charts and `keyward
//! usage`: requests cannot be sent in the past, so the past is written directly. It is written
//! as the ledger's second schema held it (a row per request numbered by arrival, the names kept
//! once, hourly roll-ups), a layout plain SQL can write; keyward packs the requests into its
//! batches when it next opens the store, as it does for a user's older store.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::Result;

/// Keys, clients and their pace: every `every_mins` minutes over the last 7 days, one request.
const SCRIPT: &[(Option<&str>, &str, u64, i64)] = &[
    (Some("claude-code"), "claude-code", 9_000, 25),
    (Some("scripts"), "openai-python", 2_500, 50),
    (Some("agent"), "codex", 14_000, 70),
    (None, "curl", 600, 180),
];

/// Writes the script's requests of the last 7 days (until an hour before `now`) into the store
/// at `db` (which keyward created, with no requests yet), turning it back to schema 5; how many.
pub fn seed_usage_history(db: &Path, now: DateTime<Utc>) -> Result<usize> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(
        "DROP TABLE usage_batches;
         CREATE TABLE usage_requests (
             id INTEGER PRIMARY KEY, key INTEGER NOT NULL, client INTEGER NOT NULL,
             dialect INTEGER NOT NULL, asked INTEGER NOT NULL, served INTEGER NOT NULL,
             profile INTEGER NOT NULL, status INTEGER NOT NULL, input INTEGER NOT NULL,
             cached INTEGER NOT NULL, output INTEGER NOT NULL, reasoning INTEGER NOT NULL,
             first_byte_ms INTEGER, total_ms INTEGER NOT NULL, hops INTEGER NOT NULL,
             refused INTEGER NOT NULL);
         CREATE INDEX usage_requests_key ON usage_requests (key, id) WHERE key != 0;
         PRAGMA user_version = 5;",
    )?;
    let mut ids: HashMap<String, i64> = HashMap::new();
    let mut id = |name: Option<&str>| -> Result<i64> {
        let Some(name) = name else {
            return Ok(0);
        };
        if let Some(id) = ids.get(name) {
            return Ok(*id);
        }
        tx.execute(
            "INSERT OR IGNORE INTO usage_names (name) VALUES (?1)",
            [name],
        )?;
        let id: i64 = tx.query_row("SELECT id FROM usage_names WHERE name = ?1", [name], |r| {
            r.get(0)
        })?;
        ids.insert(name.to_string(), id);
        Ok(id)
    };
    let end = now.timestamp_millis() - 3_600_000;
    let start = end - 7 * 24 * 3_600_000;
    // Every request of the script, in the order they arrived (the ledger's order).
    let mut requests = Vec::new();
    for (n, (key, client, tokens, every)) in SCRIPT.iter().enumerate() {
        let mut at = start + n as i64 * 60_000;
        let mut i = 0u64;
        while at < end {
            // Busier in the day (UTC 8-20) than at night, and a heavier day mid-week.
            let hour_of_day = (at / 3_600_000) % 24;
            let day = (at - start) / 86_400_000;
            let busy = if (8..20).contains(&hour_of_day) { 3 } else { 1 };
            let heavy = if day == 3 { 2 } else { 1 };
            requests.push((
                at,
                *key,
                *client,
                (tokens * busy * heavy + (i * 7919) % 1000) as i64,
                i,
            ));
            i += 1;
            at += every * 60_000 / busy as i64;
        }
    }
    requests.sort_by_key(|r| r.0);
    let mut hours: HashMap<(i64, i64, i64, i64, i64), [i64; 7]> = HashMap::new();
    for (n, (at, key, client, input, i)) in requests.iter().enumerate() {
        let (at, i, input) = (*at, *i, *input);
        let cached = input * 6 / 10;
        let output = input / 12;
        let reasoning = output / 3;
        let status = if i % 41 == 40 { 429 } else { 200 };
        let profile = if i % 3 == 0 {
            "openai-codex:work"
        } else {
            "openai-codex:default"
        };
        let (key_id, client_id, dialect, asked, served, profile_id) = (
            id(*key)?,
            id(Some(client))?,
            id(Some("responses"))?,
            id(Some("gpt-6.1-sol"))?,
            id(Some("gpt-6.1-sol"))?,
            id(Some(profile))?,
        );
        tx.execute(
            // A row's number is its arrival time (milliseconds) shifted left 20 bits, plus a
            // sequence number (here its place in the script: rows of one millisecond stay apart).
            "INSERT INTO usage_requests (id, key, client, dialect, asked, served, profile, status,
                input, cached, output, reasoning, first_byte_ms, total_ms, hops, refused)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, 0)",
            rusqlite::params![
                (at << 20) + n as i64,
                key_id,
                client_id,
                dialect,
                asked,
                served,
                profile_id,
                status,
                input,
                cached,
                output,
                reasoning,
                300 + (i % 500) as i64,
                4_000 + (i % 20_000) as i64
            ],
        )?;
        let sums = hours
            .entry((
                at.div_euclid(3_600_000) * 3600,
                key_id,
                client_id,
                served,
                profile_id,
            ))
            .or_default();
        for (slot, value) in sums.iter_mut().zip([
            1,
            i64::from(status >= 400),
            0,
            input,
            cached,
            output,
            reasoning,
        ]) {
            *slot += value;
        }
    }
    for ((hour, key, client, model, profile), [n, e, r, i, c, o, x]) in hours {
        tx.execute(
            "INSERT INTO usage_hourly (hour, key, client, model, profile, requests, errors, refused,
                input, cached, output, reasoning) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (hour, key, client, model, profile) DO UPDATE SET requests = requests + excluded.requests,
                errors = errors + excluded.errors, input = input + excluded.input, cached = cached + excluded.cached,
                output = output + excluded.output, reasoning = reasoning + excluded.reasoning",
            rusqlite::params![hour, key, client, model, profile, n, e, r, i, c, o, x],
        )?;
    }
    tx.commit()?;
    Ok(requests.len())
}

/// Turns the store at `db` (as [`seed_usage_history`] left it) into one the ledger's first schema
/// wrote (version 4): each row
/// numbered in the order it was written (here: newest first) with its arrival time in its own,
/// indexed, column. What `keyward` then makes of it is what it makes of a store of that version.
pub fn as_first_ledger_schema(db: &Path) -> Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "BEGIN;
         ALTER TABLE usage_requests ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
         UPDATE usage_requests SET at = id >> 20;
         UPDATE usage_requests SET id = written.id
         FROM (SELECT id AS now, ROW_NUMBER() OVER (ORDER BY id DESC) AS id FROM usage_requests)
              AS written
         WHERE usage_requests.id = written.now;
         DROP INDEX usage_requests_key;
         CREATE INDEX usage_requests_at ON usage_requests (at);
         CREATE INDEX usage_requests_key ON usage_requests (key, at);
         PRAGMA user_version = 4;
         COMMIT;",
    )?;
    Ok(())
}
