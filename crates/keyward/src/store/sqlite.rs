//! The embedded store: one SQLite file under `$KEYWARD_HOME`, WAL mode, `synchronous=FULL` so every
//! commit is on disk when it returns, `secure_delete` so erased token material does not linger in
//! free pages. Mode 0600 in a 0700 directory.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::*;

/// Migrations in order; the schema version is the number applied.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE spent_tokens (
    fingerprint TEXT PRIMARY KEY,
    profile     TEXT NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT,
    at          TEXT NOT NULL
);
CREATE TABLE refresh_journal (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    profile     TEXT NOT NULL,
    spent       TEXT NOT NULL,
    successor   TEXT,
    trigger     TEXT NOT NULL,
    state       TEXT NOT NULL,
    answer      TEXT,
    detail      TEXT,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX refresh_journal_open ON refresh_journal (profile, state);
CREATE INDEX refresh_journal_successor ON refresh_journal (successor);
CREATE TABLE lineage (
    profile     TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL,
    current     TEXT,
    changed_at  TEXT,
    changed_by  TEXT
);
CREATE TABLE health_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    profile     TEXT NOT NULL,
    at          TEXT NOT NULL,
    health      TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX health_events_profile ON health_events (profile, id);
"#,
    r#"
CREATE TABLE cooldowns (
    profile     TEXT PRIMARY KEY,
    until       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    since       TEXT NOT NULL
);
CREATE TABLE usage_windows (
    profile     TEXT PRIMARY KEY,
    usage       TEXT NOT NULL
);
"#,
    // Usage windows by name, whatever the provider calls them, in its order. The rows of the
    // JSON table before (Codex's `primary` and `secondary` windows) are carried over; a row that
    // is not such JSON is left behind, as reading it did before.
    r#"
CREATE TABLE usage_window (
    profile         TEXT NOT NULL,
    position        INTEGER NOT NULL,
    name            TEXT NOT NULL,
    used_percent    REAL NOT NULL,
    window_minutes  INTEGER,
    resets_at       TEXT,
    observed_at     TEXT NOT NULL,
    PRIMARY KEY (profile, position)
);
INSERT INTO usage_window (profile, position, name, used_percent, window_minutes, resets_at, observed_at)
SELECT profile, name = 'secondary', name,
       json_extract(window_json, '$.used_percent'),
       json_extract(window_json, '$.window_minutes'),
       json_extract(window_json, '$.resets_at'),
       json_extract(usage_json, '$.observed_at')
FROM (
    SELECT old.profile AS profile, entry.key AS name, old.usage_json AS usage_json,
           CASE WHEN entry.type = 'object' THEN entry.value ELSE '{}' END AS window_json
    FROM (SELECT profile, CASE WHEN json_valid(usage) THEN usage ELSE '{}' END AS usage_json
          FROM usage_windows) AS old,
         json_each(old.usage_json) AS entry
)
WHERE name IN ('primary', 'secondary')
  AND json_type(window_json, '$.used_percent') IN ('integer', 'real')
  AND json_type(usage_json, '$.observed_at') = 'text';
DROP TABLE usage_windows;
"#,
    // The usage ledger: one row per request and hourly roll-ups.
    super::usage::MIGRATION,
    // The ledger's rows numbered by their arrival, without an index on time.
    super::usage::TIME_KEYED_MIGRATION,
    // The ledger's requests packed a batch to a row (then `usage::pack_rows_of_schema_5`).
    super::usage::PACKED_MIGRATION,
];

const HEALTH_HISTORY_KEPT: i64 = 500;

#[derive(Debug)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) `keyward.db` in `dir`.
    pub(crate) fn open(dir: &Path) -> StoreResult<Self> {
        let path = dir.join("keyward.db");
        let fail = |doing: &'static str| {
            let path = path.display().to_string();
            move |source| StoreError::File {
                path,
                doing,
                source,
            }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail("cannot create its directory"))?;
        // Tokens pass through these files: none may be a link, another user's, or writable by
        // one. Checked before anything opens them, so a link is never followed.
        for file in crate::host::store_files(&path) {
            crate::host::check_store_file(&file).map_err(|source| StoreError::NotPrivate {
                path: path.display().to_string(),
                source,
            })?;
        }
        // Create the file ourselves so it is 0600 from its first byte; SQLite gives its -wal and
        // -shm files the database file's mode. Only when it does not exist yet (O_EXCL, which
        // never follows a link): closing any descriptor of the file would drop every POSIX lock
        // this process's open connections hold on it, and another process closing its connection
        // would then take itself for the last one and delete the write-ahead log under them, so
        // that their later commits land in an unlinked file.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail("cannot create")(e)),
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(fail("cannot set mode 0600"))?;
        let fail_db = |e| db_error(&path, e);
        // NOFOLLOW: a link planted since the check above is refused rather than followed.
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(fail_db)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(fail_db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; PRAGMA foreign_keys=ON;",
        )
        .map_err(fail_db)?;
        let store = Self {
            path: path.clone(),
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The store as the usage ledger's writer uses it: commits wait for the write-ahead log
    /// only (`synchronous=NORMAL`: a power cut may lose the last rows, never the database), and
    /// freed pages are not overwritten (usage rows hold no secret). Both settings are this
    /// connection's only; the broker's keeps its own.
    pub(crate) fn open_for_usage(dir: &Path) -> StoreResult<Self> {
        let store = Self::open(dir)?;
        store
            .conn()
            .execute_batch("PRAGMA synchronous=NORMAL; PRAGMA secure_delete=OFF;")
            .map_err(|e| store.err(e))?;
        Ok(store)
    }

    /// Token material the journal just erased still sits in the write-ahead log's older page
    /// images until a checkpoint; copy the log into the (secure-delete) database and truncate it
    /// so no erased token rests on disk. Best effort: a reader in another process can hold the
    /// log, and the next erase tries again.
    fn forget_erased(&self) {
        let result = self
            .conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            });
        match result {
            Ok(0) => {}
            Ok(_) => tracing::debug!("the write-ahead log is in use by another reader; it is truncated at the next erase"),
            Err(e) => tracing::warn!(error = %e, "could not truncate the write-ahead log"),
        }
    }

    pub(super) fn err(&self, e: rusqlite::Error) -> StoreError {
        db_error(&self.path, e)
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection cannot leave a half-done transaction (rusqlite rolls
        // back on drop), so a poisoned lock is still a usable connection.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew {
                path: self.path.display().to_string(),
                found: version,
                supported,
            });
        }
        for (done, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration).map_err(|e| self.err(e))?;
            if done + 1 == super::usage::PACKED_SCHEMA {
                super::usage::pack_rows_of_schema_5(&tx).map_err(|e| self.err(e))?;
            }
        }
        tx.pragma_update(None, "user_version", supported)
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    pub(crate) fn schema_version(&self) -> StoreResult<i64> {
        self.conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

fn db_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let path = path.display().to_string();
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => StoreError::Unreadable { path },
        _ => StoreError::Db { path, source: e },
    }
}

fn now_text() -> String {
    Utc::now().to_rfc3339()
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn fingerprint(text: &str) -> Fingerprint {
    Fingerprint::from_hex(text).unwrap_or_else(|| Fingerprint::of(text))
}

fn read_spend(row: &rusqlite::Row<'_>) -> rusqlite::Result<SpendRecord> {
    let fp: String = row.get(0)?;
    let state: String = row.get(2)?;
    let at: String = row.get(4)?;
    Ok(SpendRecord {
        fingerprint: fingerprint(&fp),
        state: SpendState::parse(&state),
        detail: row.get(3)?,
        at: parse_time(&at),
    })
}

impl Store for SqliteStore {
    fn spend_record(&self, token: Fingerprint) -> StoreResult<Option<SpendRecord>> {
        self.conn()
            .query_row(
                "SELECT fingerprint, profile, state, detail, at FROM spent_tokens WHERE fingerprint = ?1",
                [token.to_hex()],
                read_spend,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn begin_spend(
        &self,
        profile: &ProfileId,
        token: Fingerprint,
        trigger: &str,
    ) -> StoreResult<SpendPermit> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let known = tx
            .query_row(
                "SELECT fingerprint, profile, state, detail, at FROM spent_tokens WHERE fingerprint = ?1",
                [token.to_hex()],
                read_spend,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(record) = known {
            return Ok(SpendPermit::Refused(record));
        }
        let now = now_text();
        tx.execute(
            "INSERT INTO spent_tokens (fingerprint, profile, state, at) VALUES (?1, ?2, 'spending', ?3)",
            params![token.to_hex(), profile.to_string(), now],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO refresh_journal (profile, spent, trigger, state, pid, started_at, updated_at)
             VALUES (?1, ?2, ?3, 'intent', ?4, ?5, ?5)",
            params![profile.to_string(), token.to_hex(), trigger, std::process::id(), now],
        )
        .map_err(|e| self.err(e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| self.err(e))?;
        Ok(SpendPermit::Granted(id))
    }

    fn record_answer(&self, id: JournalId, answer: &TokenAnswer) -> StoreResult<()> {
        let encoded = answer.journal_json();
        let successor = answer
            .refresh_token
            .as_ref()
            .map(|t| t.fingerprint().to_hex());
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let now = now_text();
        tx.execute(
            "UPDATE refresh_journal SET state = 'answered', answer = ?2, successor = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, encoded, successor, now],
        )
        .map_err(|e| self.err(e))?;
        if successor.is_some() {
            tx.execute(
                "UPDATE spent_tokens SET state = 'spent', at = ?2
                 WHERE fingerprint = (SELECT spent FROM refresh_journal WHERE id = ?1)",
                params![id, now],
            )
            .map_err(|e| self.err(e))?;
        } else {
            // The endpoint did not rotate: the old refresh token is still the live one.
            tx.execute(
                "DELETE FROM spent_tokens WHERE fingerprint = (SELECT spent FROM refresh_journal WHERE id = ?1)",
                params![id],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn record_failure(&self, id: JournalId, state: JournalState, detail: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let now = now_text();
        tx.execute(
            "UPDATE refresh_journal SET state = ?2, detail = ?3, answer = NULL, updated_at = ?4 WHERE id = ?1",
            params![id, state.as_str(), detail, now],
        )
        .map_err(|e| self.err(e))?;
        let spent = "(SELECT spent FROM refresh_journal WHERE id = ?1)";
        match state {
            JournalState::NotSpent => tx.execute(
                &format!("DELETE FROM spent_tokens WHERE fingerprint = {spent}"),
                params![id],
            ),
            _ => {
                let ledger_state = if state == JournalState::Rejected {
                    SpendState::Rejected
                } else {
                    SpendState::Unknown
                };
                tx.execute(
                    &format!(
                        "UPDATE spent_tokens SET state = ?2, detail = ?3, at = ?4 WHERE fingerprint = {spent}"
                    ),
                    params![id, ledger_state.as_str(), detail, now],
                )
            }
        }
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        drop(conn);
        self.forget_erased();
        Ok(())
    }

    fn settle(&self, id: JournalId, state: JournalState) -> StoreResult<()> {
        self.conn()
            .execute(
                "UPDATE refresh_journal SET state = ?2, answer = NULL, updated_at = ?3 WHERE id = ?1",
                params![id, state.as_str(), now_text()],
            )
            .map_err(|e| self.err(e))?;
        self.forget_erased();
        Ok(())
    }

    fn unsettled(&self, profile: &ProfileId) -> StoreResult<Vec<UnsettledRefresh>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, profile, spent, state, answer, started_at FROM refresh_journal
                 WHERE profile = ?1 AND state IN ('intent', 'answered') ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([profile.to_string()], |row| {
                let spent: String = row.get(2)?;
                let state: String = row.get(3)?;
                let answer: Option<String> = row.get(4)?;
                let started: String = row.get(5)?;
                Ok(UnsettledRefresh {
                    id: row.get(0)?,
                    spent: fingerprint(&spent),
                    state: JournalState::parse(&state),
                    answer: answer.and_then(|a| serde_json::from_str(&a).ok()),
                    started_at: parse_time(&started),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn is_successor(&self, token: Fingerprint) -> StoreResult<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM refresh_journal WHERE successor = ?1)",
                [token.to_hex()],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    fn observe_lineage(
        &self,
        profile: &ProfileId,
        current: Fingerprint,
        author: LineageAuthor,
    ) -> StoreResult<Lineage> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let known = read_lineage(&tx, profile).map_err(|e| self.err(e))?;
        if known.current == Some(current) {
            return Ok(known);
        }
        tx.execute(
            "INSERT INTO lineage (profile, generation, current, changed_at, changed_by) VALUES (?1, 1, ?2, ?3, ?4)
             ON CONFLICT (profile) DO UPDATE SET generation = generation + 1, current = ?2, changed_at = ?3, changed_by = ?4",
            params![profile.to_string(), current.to_hex(), now_text(), author.as_str()],
        )
        .map_err(|e| self.err(e))?;
        let updated = read_lineage(&tx, profile).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(updated)
    }

    #[cfg(test)]
    fn lineage(&self, profile: &ProfileId) -> StoreResult<Lineage> {
        read_lineage(&self.conn(), profile).map_err(|e| self.err(e))
    }

    fn record_health(&self, profile: &ProfileId, health: &str, detail: &str) -> StoreResult<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO health_events (profile, at, health, detail) VALUES (?1, ?2, ?3, ?4)",
            params![profile.to_string(), now_text(), health, detail],
        )
        .map_err(|e| self.err(e))?;
        conn.execute(
            "DELETE FROM health_events WHERE profile = ?1 AND id <= (SELECT MAX(id) FROM health_events WHERE profile = ?1) - ?2",
            params![profile.to_string(), HEALTH_HISTORY_KEPT],
        )
        .map(drop)
        .map_err(|e| self.err(e))
    }

    fn health_history(&self, profile: &ProfileId, limit: usize) -> StoreResult<Vec<HealthEvent>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT at, health, detail FROM health_events WHERE profile = ?1 ORDER BY id DESC LIMIT ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![profile.to_string(), limit as i64], |row| {
                let at: String = row.get(0)?;
                Ok(HealthEvent {
                    at: parse_time(&at),
                    health: row.get(1)?,
                    detail: row.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

fn read_lineage(conn: &Connection, profile: &ProfileId) -> rusqlite::Result<Lineage> {
    conn.query_row(
        "SELECT generation, current, changed_at, changed_by FROM lineage WHERE profile = ?1",
        [profile.to_string()],
        |row| {
            let generation: i64 = row.get(0)?;
            let current: Option<String> = row.get(1)?;
            let changed_at: Option<String> = row.get(2)?;
            Ok(Lineage {
                generation: generation.max(0) as u64,
                current: current.as_deref().map(fingerprint),
                changed_at: changed_at.as_deref().map(parse_time),
                changed_by: row.get(3)?,
            })
        },
    )
    .optional()
    .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&dir.path().join("home")).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    /// A store file that is a symbolic link is refused, and its target is left untouched.
    #[test]
    fn symlinked_store_files_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        for name in ["keyward.db", "keyward.db-wal"] {
            let dir = tempfile::tempdir()?;
            let home = dir.path().join("home");
            fs::create_dir(&home)?;
            let elsewhere = dir.path().join("elsewhere.db");
            std::os::unix::fs::symlink(&elsewhere, home.join(name))?;
            let refused = SqliteStore::open(&home).err().map(|e| e.to_string());
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|e| e.contains("symbolic link")),
                "{name}: {refused:?}"
            );
            assert!(!elsewhere.exists(), "{name}: the link was followed");
        }
        Ok(())
    }

    /// Once a journal entry is settled, its tokens are nowhere in the store's files, the
    /// write-ahead log included, while the store stays open (as `serve` holds it).
    #[test]
    fn settled_tokens_leave_no_trace_on_disk() -> StoreResult<()> {
        let (dir, store) = store();
        let _reader = SqliteStore::open(&dir.path().join("home"))?;
        let profile = ProfileId::codex_default();
        for n in 0..6 {
            let token = Fingerprint::of(&format!("rt_old_{n}"));
            let SpendPermit::Granted(id) = store.begin_spend(&profile, token, "test")? else {
                panic!("spend refused");
            };
            let answer = TokenAnswer {
                access_token: Secret::new(format!("at-secret-material-{n}")),
                refresh_token: Some(Secret::new(format!("rt-secret-material-{n}"))),
                id_token: None,
            };
            store.record_answer(id, &answer)?;
            store.settle(id, JournalState::Settled)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.path().join(format!("home/keyward.db{suffix}"));
            let bytes = std::fs::read(&path).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("secret-material"),
                "a token rests in {}",
                path.display()
            );
        }
        Ok(())
    }

    /// A token once granted for spending is refused forever after, also through a reopened store.
    #[test]
    fn ledger_refuses_a_second_spend_across_reopen() -> StoreResult<()> {
        let (dir, store) = store();
        let profile = ProfileId::codex_default();
        let token = Fingerprint::of("rt_1");
        let SpendPermit::Granted(id) = store.begin_spend(&profile, token, "test")? else {
            panic!("first spend refused");
        };
        let answer = TokenAnswer {
            access_token: Secret::new("at_2"),
            refresh_token: Some(Secret::new("rt_2")),
            id_token: None,
        };
        store.record_answer(id, &answer)?;
        drop(store);
        let store = SqliteStore::open(&dir.path().join("home"))?;
        match store.begin_spend(&profile, token, "test")? {
            SpendPermit::Refused(record) => assert_eq!(record.state, SpendState::Spent),
            SpendPermit::Granted(_) => panic!("spent token granted twice"),
        }
        let unsettled = store.unsettled(&profile)?;
        assert_eq!(unsettled.len(), 1);
        let kept = unsettled[0]
            .answer
            .as_ref()
            .and_then(|a| a.refresh_token.clone());
        assert_eq!(kept.as_ref().map(Secret::expose), Some("rt_2"));
        assert!(store.is_successor(Fingerprint::of("rt_2"))?);
        store.settle(id, JournalState::Settled)?;
        assert!(store.unsettled(&profile)?.is_empty());
        Ok(())
    }

    /// An unprocessed request frees the token; an unknown outcome never does.
    #[test]
    fn failures_decide_whether_the_token_is_free() -> StoreResult<()> {
        let (_dir, store) = store();
        let profile = ProfileId::codex_default();
        let free = Fingerprint::of("rt_free");
        let SpendPermit::Granted(id) = store.begin_spend(&profile, free, "test")? else {
            panic!("refused");
        };
        store.record_failure(id, JournalState::NotSpent, "connection refused")?;
        assert!(store.spend_record(free)?.is_none());
        let maybe = Fingerprint::of("rt_maybe");
        let SpendPermit::Granted(id) = store.begin_spend(&profile, maybe, "test")? else {
            panic!("refused");
        };
        store.record_failure(id, JournalState::Unknown, "timeout")?;
        assert_eq!(
            store.spend_record(maybe)?.map(|r| r.state),
            Some(SpendState::Unknown)
        );
        Ok(())
    }

    /// A damaged store file is named with what to do, not a bare SQLite message.
    #[test]
    fn a_damaged_store_is_explained() -> StoreResult<()> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("keyward.db"),
            b"not a database at all, just text",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        match SqliteStore::open(dir.path()) {
            Err(e @ StoreError::Unreadable { .. }) => {
                assert!(e.to_string().contains("move it aside"))
            }
            other => panic!("expected Unreadable, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn lineage_counts_generations_and_files_are_private() -> StoreResult<()> {
        let (_dir, store) = store();
        let profile = ProfileId::codex_default();
        let a = store.observe_lineage(&profile, Fingerprint::of("a"), LineageAuthor::Source)?;
        let again = store.observe_lineage(&profile, Fingerprint::of("a"), LineageAuthor::Source)?;
        let b = store.observe_lineage(&profile, Fingerprint::of("b"), LineageAuthor::Keyward)?;
        assert_eq!((a.generation, again.generation, b.generation), (1, 1, 2));
        assert_eq!(b.changed_by.as_deref(), Some("keyward"));
        let mode = fs::metadata(store.path()).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        assert_eq!(store.schema_version()?, MIGRATIONS.len() as i64);
        Ok(())
    }
}
