//! The rationale store: one SQLite file. Each row is keyed by (model sha, prompt version, dataset, user,
//! target item, seed, method, params), so re-running skips what exists and a crash can never duplicate a
//! row. Every finished rationale is committed on its own (WAL journal): after `kill -9` everything already
//! reported done is there. Later stages (Tree-of-Thought) write their refined rationales into the same
//! table with their own `method` and `params` (depth, branching, beam, score kind) and `score`.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{RationaleError, Result};
use crate::parse::Status;

const SCHEMA_VERSION: i64 = 1;

/// The identity of one stored rationale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub model_sha: String,
    pub prompt_version: String,
    pub dataset: String,
    pub user: String,
    pub target: String,
    pub seed: i64,
    /// "initial" for step 2; ToT methods later.
    pub method: String,
    /// Canonical JSON of the method's settings that change the text (sampling, prompt options).
    pub params: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub key: Key,
    /// History item ids shown in the prompt, oldest first.
    pub history: Vec<String>,
    pub rationale: Option<String>,
    pub raw: String,
    pub status: Status,
    /// Samples drawn until this one (1 = the first).
    pub attempts: i64,
    pub prompt_tokens: i64,
    pub new_tokens: i64,
    pub finish: String,
    pub score: Option<f64>,
    pub model_name: String,
    pub created_unix: i64,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let err = |msg: String| RationaleError::Store { path: path.to_path_buf(), msg };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create its folder: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let s = Store { conn, path: path.to_path_buf() };
        s.init().map_err(|e| err(format!("not a usable rationale store: {e}")))?;
        Ok(s)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()
            .map_err(|e| RationaleError::Store { path: ":memory:".into(), msg: e.to_string() })?;
        let s = Store { conn, path: ":memory:".into() };
        s.init().map_err(|e| s.err(e))?;
        Ok(s)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> RationaleError {
        RationaleError::Store { path: self.path.clone(), msg: e.to_string() }
    }

    fn init(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let _: String = self.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        self.conn.execute_batch(
            "PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS rationales (
                model_sha TEXT NOT NULL, prompt_version TEXT NOT NULL, dataset TEXT NOT NULL,
                user TEXT NOT NULL, target TEXT NOT NULL, seed INTEGER NOT NULL,
                method TEXT NOT NULL, params TEXT NOT NULL,
                history TEXT NOT NULL, rationale TEXT, raw TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
                prompt_tokens INTEGER NOT NULL, new_tokens INTEGER NOT NULL, finish TEXT NOT NULL,
                score REAL, model_name TEXT NOT NULL, created_unix INTEGER NOT NULL,
                PRIMARY KEY (model_sha, prompt_version, dataset, user, target, seed, method, params)
             );",
        )?;
        let v: Option<String> =
            self.conn.query_row("SELECT value FROM meta WHERE key='schema'", [], |r| r.get(0)).optional()?;
        match v {
            None => {
                self.conn.execute("INSERT INTO meta VALUES ('schema', ?1)", [SCHEMA_VERSION.to_string()])?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(rusqlite::Error::InvalidParameterName(format!(
                    "schema version {v}, this pulse reads {SCHEMA_VERSION}"
                )))
            }
        }
        Ok(())
    }

    /// (user, target) pairs already stored for a run's fixed key parts.
    pub fn done(&self, proto: &Key) -> Result<std::collections::HashSet<(String, String)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT user, target FROM rationales WHERE model_sha=?1 AND prompt_version=?2 AND dataset=?3
                 AND seed=?4 AND method=?5 AND params=?6",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(
                params![proto.model_sha, proto.prompt_version, proto.dataset, proto.seed, proto.method, proto.params],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Insert one record (its own transaction). Returns false if the key already existed (nothing changed).
    pub fn insert(&self, r: &Record) -> Result<bool> {
        Self::insert_on(&self.conn, r).map_err(|e| self.err(e))
    }

    /// Insert many records in one transaction: all of them or, on any error, none. Records whose key is
    /// already stored are left as they are. Returns how many were new.
    pub fn insert_all(&self, recs: &[Record]) -> Result<usize> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let mut n = 0;
        for r in recs {
            n += usize::from(Self::insert_on(&tx, r).map_err(|e| self.err(e))?);
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    fn insert_on(conn: &Connection, r: &Record) -> rusqlite::Result<bool> {
        let k = &r.key;
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO rationales VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)",
                params![
                    k.model_sha,
                    k.prompt_version,
                    k.dataset,
                    k.user,
                    k.target,
                    k.seed,
                    k.method,
                    k.params,
                    serde_json::to_string(&r.history).expect("strings serialise"),
                    r.rationale,
                    r.raw,
                    r.status.as_str(),
                    r.attempts,
                    r.prompt_tokens,
                    r.new_tokens,
                    r.finish,
                    r.score,
                    r.model_name,
                    r.created_unix
                ],
            )?;
        Ok(n == 1)
    }

    /// Every record (optionally of one method), in a stable order.
    pub fn records(&self, method: Option<&str>) -> Result<Vec<Record>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT model_sha, prompt_version, dataset, user, target, seed, method, params, history, rationale,
                        raw, status, prompt_tokens, new_tokens, finish, score, model_name, created_unix, attempts
                 FROM rationales WHERE (?1 IS NULL OR method = ?1)
                 ORDER BY dataset, method, model_sha, prompt_version, seed, params, user, target",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![method], |r| {
                // A column that does not decode is a conversion error naming its index.
                let bad = |i: usize, e: String| {
                    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
                };
                let history: String = r.get(8)?;
                let status: String = r.get(11)?;
                Ok(Record {
                    key: Key {
                        model_sha: r.get(0)?,
                        prompt_version: r.get(1)?,
                        dataset: r.get(2)?,
                        user: r.get(3)?,
                        target: r.get(4)?,
                        seed: r.get(5)?,
                        method: r.get(6)?,
                        params: r.get(7)?,
                    },
                    history: serde_json::from_str(&history).map_err(|e| bad(8, format!("bad history: {e}")))?,
                    rationale: r.get(9)?,
                    raw: r.get(10)?,
                    status: Status::parse(&status).ok_or_else(|| bad(11, format!("unknown status {status:?}")))?,
                    prompt_tokens: r.get(12)?,
                    new_tokens: r.get(13)?,
                    finish: r.get(14)?,
                    score: r.get(15)?,
                    model_name: r.get(16)?,
                    created_unix: r.get(17)?,
                    attempts: r.get(18)?,
                })
            })
            .map_err(|e| self.err(e))?;
        let out = rows.collect::<rusqlite::Result<Vec<Record>>>().map_err(|e| self.err(e))?;
        Ok(out)
    }

    pub fn count(&self) -> Result<usize> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM rationales", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(n as usize)
    }
}

/// The rationale of each split user's explained choice (the last training item), keyed by split-user
/// index: the first of `methods` (in order of preference) the store has for it. Rows of other datasets,
/// and rows whose target is not the user's last training item (another split), are ignored. Also returns
/// how many users each method supplied.
pub fn rationales_by_user(
    store: &Store,
    methods: &[String],
    ds: &pulse_data::Dataset,
    split: &pulse_data::Split,
) -> Result<(std::collections::BTreeMap<usize, String>, Vec<(String, usize)>)> {
    use std::collections::HashMap;
    let mut want: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, su) in split.users.iter().enumerate() {
        if su.train.len() >= 2 {
            let last = *su.train.last().expect("non-empty");
            want.insert((ds.users[su.user as usize].id.as_str(), ds.items[last as usize].id.as_str()), i);
        }
    }
    let mut chosen = std::collections::BTreeMap::new();
    let mut counts = Vec::new();
    for m in methods {
        let mut n = 0;
        for r in store.records(Some(m))? {
            if r.key.dataset != ds.name {
                continue;
            }
            let (Some(rat), Some(&i)) = (r.rationale, want.get(&(r.key.user.as_str(), r.key.target.as_str()))) else { continue };
            if let std::collections::btree_map::Entry::Vacant(e) = chosen.entry(i) {
                e.insert(rat);
                n += 1;
            }
        }
        counts.push((m.clone(), n));
    }
    Ok((chosen, counts))
}
