/*
 * store: the schema, as versioned migrations for both dialects (SPEC §6).
 *
 * Version 1 is the initial schema; version 2 adds the run log's
 * claim_token (the idempotency key that lets a claim be re-sent after a
 * lost connection or from a node's spool without recording a run twice);
 * version 3 an id-only index on jobs for cheap paging; version 4 an index
 * of open runs by node; version 5 the attempts of runs that retried;
 * version 6 the user a cmd job runs as and its resource limits; version 7
 * the audit log; version 8 the range of fires a `missed` run-log row
 * stands for; version 9 the alert outbox and the settings table; version 10
 * a job's node_selector; version 11 broadcast jobs (max_running, the run
 * log's per-node claim key claim_node).
 * Append new migrations at the end; never edit an applied one. Each
 * back-end applies them under a lock and records each in cronix_schema.
 *
 * MySQL notes: utf8mb4 everywhere; names and uuids use utf8mb4_bin so
 * uniqueness is exact (as in SQLite); big texts are MEDIUMTEXT. DDL is not
 * transactional in MySQL, so every migration is a single statement per
 * table (CREATE TABLE with its indexes inline; one ALTER per change).
 */
#include "store/store-int.h"

/* ---- version 1: initial schema ----------------------------------------- */

static const char *const v1_sqlite[] = {
    "CREATE TABLE cronix_job ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL, command TEXT NOT NULL, type INTEGER NOT NULL,"
    " spec TEXT NOT NULL, timeout INTEGER NOT NULL DEFAULT 0,"
    " retry_times INTEGER NOT NULL DEFAULT 0,"
    " retry_interval INTEGER NOT NULL DEFAULT 0,"
    " allocation INTEGER NOT NULL, run_on TEXT NOT NULL DEFAULT '',"
    " notify_status INTEGER NOT NULL DEFAULT 2,"
    " notify_type INTEGER NOT NULL DEFAULT 0,"
    " notify_to_array TEXT NOT NULL DEFAULT '[]',"
    " note TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL, timezone TEXT NOT NULL DEFAULT '',"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " concurrency TEXT NOT NULL DEFAULT 'forbid',"
    " misfire TEXT NOT NULL DEFAULT 'run_once',"
    " starting_deadline INTEGER NOT NULL DEFAULT 600,"
    " http_method TEXT NOT NULL DEFAULT 'GET',"
    " http_headers TEXT NOT NULL DEFAULT '{}',"
    " http_body TEXT NOT NULL DEFAULT '', env TEXT NOT NULL DEFAULT '{}',"
    " workdir TEXT NOT NULL DEFAULT '')",
    "CREATE UNIQUE INDEX cronix_job_name ON cronix_job(name)",
    "CREATE INDEX cronix_job_run_on ON cronix_job(run_on)",
    "CREATE TABLE cronix_job_log ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, job_id INTEGER NOT NULL,"
    " name TEXT NOT NULL DEFAULT '', node_uuid TEXT NOT NULL DEFAULT '',"
    " hostname TEXT NOT NULL DEFAULT '', ip TEXT NOT NULL DEFAULT '',"
    " command TEXT NOT NULL DEFAULT '', spec TEXT NOT NULL DEFAULT '',"
    " `trigger` TEXT NOT NULL DEFAULT 'cron', scheduled_at INTEGER NULL,"
    " start_time INTEGER NOT NULL DEFAULT 0,"
    " end_time INTEGER NOT NULL DEFAULT 0,"
    " success INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL DEFAULT 'running',"
    " exit_code INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0, output TEXT NOT NULL DEFAULT '')",
    "CREATE UNIQUE INDEX cronix_job_log_fire"
    " ON cronix_job_log(job_id, scheduled_at)",
    "CREATE INDEX cronix_job_log_start ON cronix_job_log(start_time)",
    "CREATE INDEX cronix_job_log_job_start"
    " ON cronix_job_log(job_id, start_time)",
    "CREATE TABLE cronix_node ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE,"
    " hostname TEXT NOT NULL DEFAULT '', ip TEXT NOT NULL DEFAULT '',"
    " pid INTEGER NOT NULL DEFAULT 0, version TEXT NOT NULL DEFAULT '',"
    " status INTEGER NOT NULL DEFAULT 1, up INTEGER NOT NULL DEFAULT 0,"
    " down INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE cronix_user ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE,"
    " password_hash TEXT NOT NULL, email TEXT NOT NULL DEFAULT '',"
    " feishu_id TEXT NOT NULL DEFAULT '', role TEXT NOT NULL,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL)",
    "CREATE TABLE cronix_token ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE,"
    " user_id INTEGER NOT NULL, kind TEXT NOT NULL,"
    " expires INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL)",
    "CREATE INDEX cronix_token_user ON cronix_token(user_id)",
    NULL};

#define MY_TABLE " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
static const char *const v1_mysql[] = {
    "CREATE TABLE IF NOT EXISTS cronix_job ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
    " command MEDIUMTEXT NOT NULL, type INT NOT NULL,"
    " spec VARCHAR(1024) NOT NULL, timeout INT NOT NULL DEFAULT 0,"
    " retry_times INT NOT NULL DEFAULT 0,"
    " retry_interval INT NOT NULL DEFAULT 0, allocation INT NOT NULL,"
    " run_on VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    "  NOT NULL DEFAULT '',"
    " notify_status INT NOT NULL DEFAULT 2,"
    " notify_type INT NOT NULL DEFAULT 0,"
    " notify_to_array TEXT NOT NULL, note TEXT NOT NULL,"
    " created BIGINT NOT NULL, updated BIGINT NOT NULL,"
    " timezone VARCHAR(64) NOT NULL DEFAULT '',"
    " enabled TINYINT NOT NULL DEFAULT 1,"
    " concurrency VARCHAR(16) NOT NULL DEFAULT 'forbid',"
    " misfire VARCHAR(16) NOT NULL DEFAULT 'run_once',"
    " starting_deadline INT NOT NULL DEFAULT 600,"
    " http_method VARCHAR(16) NOT NULL DEFAULT 'GET',"
    " http_headers MEDIUMTEXT NOT NULL, http_body MEDIUMTEXT NOT NULL,"
    " env MEDIUMTEXT NOT NULL, workdir VARCHAR(1024) NOT NULL DEFAULT '',"
    " UNIQUE KEY cronix_job_name (name), KEY cronix_job_run_on "
    "(run_on))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS cronix_job_log ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, job_id BIGINT NOT NULL,"
    " name VARCHAR(128) NOT NULL DEFAULT '',"
    " node_uuid VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    "  NOT NULL DEFAULT '',"
    " hostname VARCHAR(255) NOT NULL DEFAULT '',"
    " ip VARCHAR(64) NOT NULL DEFAULT '', command MEDIUMTEXT NOT NULL,"
    " spec VARCHAR(1024) NOT NULL DEFAULT '',"
    " `trigger` VARCHAR(16) NOT NULL DEFAULT 'cron',"
    " scheduled_at BIGINT NULL, start_time BIGINT NOT NULL DEFAULT 0,"
    " end_time BIGINT NOT NULL DEFAULT 0, success TINYINT NOT NULL DEFAULT 0,"
    " status VARCHAR(16) NOT NULL DEFAULT 'running',"
    " exit_code INT NOT NULL DEFAULT 0, attempts INT NOT NULL DEFAULT 0,"
    " output MEDIUMTEXT NOT NULL,"
    " UNIQUE KEY cronix_job_log_fire (job_id, scheduled_at),"
    " KEY cronix_job_log_start (start_time),"
    " KEY cronix_job_log_job_start (job_id, start_time))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS cronix_node ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " uuid VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
    " hostname VARCHAR(255) NOT NULL DEFAULT '',"
    " ip VARCHAR(64) NOT NULL DEFAULT '', pid INT NOT NULL DEFAULT 0,"
    " version VARCHAR(64) NOT NULL DEFAULT '',"
    " status INT NOT NULL DEFAULT 1, up BIGINT NOT NULL DEFAULT 0,"
    " down BIGINT NOT NULL DEFAULT 0, UNIQUE KEY cronix_node_uuid "
    "(uuid))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS cronix_user ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    "  NOT NULL, password_hash VARCHAR(255) NOT NULL,"
    " email VARCHAR(255) NOT NULL DEFAULT '',"
    " feishu_id VARCHAR(128) NOT NULL DEFAULT '',"
    " role VARCHAR(16) NOT NULL, created BIGINT NOT NULL,"
    " updated BIGINT NOT NULL, UNIQUE KEY cronix_user_name "
    "(username))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS cronix_token ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " hash CHAR(64) CHARACTER SET ascii NOT NULL, user_id BIGINT NOT NULL,"
    " kind VARCHAR(16) NOT NULL, expires BIGINT NOT NULL DEFAULT 0,"
    " created BIGINT NOT NULL, UNIQUE KEY cronix_token_hash (hash),"
    " KEY cronix_token_user (user_id))" MY_TABLE,
    NULL};

/* ---- version 2: claim tokens ------------------------------------------- */

static const char *const v2_sqlite[] = {
    "ALTER TABLE cronix_job_log ADD COLUMN claim_token TEXT NULL",
    "CREATE UNIQUE INDEX cronix_job_log_claim ON cronix_job_log(claim_token)",
    NULL};
static const char *const v2_mysql[] = {
    "ALTER TABLE cronix_job_log ADD COLUMN claim_token CHAR(32)"
    " CHARACTER SET ascii NULL,"
    " ADD UNIQUE KEY cronix_job_log_claim (claim_token)",
    NULL};

/* ---- version 3: an index for paging jobs -------------------------------- */

/* /job/search pages jobs by id with OFFSET. Walking the table itself reads
 * every skipped row whole; this index holds ids alone, so the walk touches
 * a few pages (SQLite picks it as a covering index; MySQL is told to in the
 * unfiltered search, see store.c). */
static const char *const v3_sqlite[] = {
    "CREATE INDEX cronix_job_page ON cronix_job(id)", NULL};
static const char *const v3_mysql[] = {
    "ALTER TABLE cronix_job ADD KEY cronix_job_page (id)", NULL};

/* ---- version 4: runs still open, by node --------------------------------- */

/* When a node dies, its runs left "running" are marked lost
 * (cx_store_run_mark_lost); few rows are running, so this index finds them
 * without reading the log. */
static const char *const v4_sqlite[] = {
    "CREATE INDEX cronix_job_log_open ON cronix_job_log(status, node_uuid)",
    NULL};
static const char *const v4_mysql[] = {
    "ALTER TABLE cronix_job_log ADD KEY cronix_job_log_open (status, "
    "node_uuid)",
    NULL};

/* ---- version 5: every attempt of a run ---------------------------------- */

/* A run's row keeps its last attempt; the attempts of runs that retried are
 * kept here, one row each, keyed by (run_id, attempt) so a re-sent attempt
 * is stored once. start_time is indexed for the retention purge. No
 * foreign key: a run's attempts may arrive from a node's spool in any
 * order, and the run log is purged by time anyway. */
static const char *const v5_sqlite[] = {
    "CREATE TABLE cronix_job_attempt ("
    " run_id INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    " start_time INTEGER NOT NULL DEFAULT 0,"
    " end_time INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL DEFAULT '', exit_code INTEGER NOT NULL DEFAULT 0,"
    " output TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, attempt))",
    "CREATE INDEX cronix_job_attempt_start ON cronix_job_attempt(start_time)",
    NULL};
static const char *const v5_mysql[] = {
    "CREATE TABLE IF NOT EXISTS cronix_job_attempt ("
    " run_id BIGINT NOT NULL, attempt INT NOT NULL,"
    " start_time BIGINT NOT NULL DEFAULT 0,"
    " end_time BIGINT NOT NULL DEFAULT 0,"
    " status VARCHAR(16) NOT NULL DEFAULT '',"
    " exit_code INT NOT NULL DEFAULT 0, output MEDIUMTEXT NOT NULL,"
    " PRIMARY KEY (run_id, attempt),"
    " KEY cronix_job_attempt_start (start_time))" MY_TABLE,
    NULL};

/* ---- version 6: who a job runs as, what it may use ---------------------- */

static const char *const v6_sqlite[] = {
    "ALTER TABLE cronix_job ADD COLUMN run_as TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE cronix_job ADD COLUMN limit_memory_mb INTEGER NOT NULL"
    " DEFAULT 0",
    "ALTER TABLE cronix_job ADD COLUMN limit_nproc INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE cronix_job ADD COLUMN limit_cpu_s INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE cronix_job ADD COLUMN limit_nofile INTEGER NOT NULL"
    " DEFAULT 0",
    NULL};
static const char *const v6_mysql[] = {
    "ALTER TABLE cronix_job ADD COLUMN run_as VARCHAR(32) NOT NULL DEFAULT '',"
    " ADD COLUMN limit_memory_mb INT NOT NULL DEFAULT 0,"
    " ADD COLUMN limit_nproc INT NOT NULL DEFAULT 0,"
    " ADD COLUMN limit_cpu_s INT NOT NULL DEFAULT 0,"
    " ADD COLUMN limit_nofile INT NOT NULL DEFAULT 0",
    NULL};

/* ---- version 7: the audit log ------------------------------------------- */

/* One row per change made through the API (and per login attempt): who,
 * from where, what, the redacted state before and after. Searched newest
 * first by time, user or kind, and purged by time (all three indexed). */
static const char *const v7_sqlite[] = {
    "CREATE TABLE cronix_audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL DEFAULT 0,"
    " username TEXT NOT NULL DEFAULT '', addr TEXT NOT NULL DEFAULT '',"
    " kind TEXT NOT NULL, target TEXT NOT NULL DEFAULT '',"
    " before_json TEXT NOT NULL DEFAULT '',"
    " after_json TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX cronix_audit_at ON cronix_audit(at)",
    "CREATE INDEX cronix_audit_user ON cronix_audit(username, at)",
    "CREATE INDEX cronix_audit_kind ON cronix_audit(kind, at)", NULL};
static const char *const v7_mysql[] = {
    "CREATE TABLE IF NOT EXISTS cronix_audit ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, at BIGINT NOT NULL,"
    " user_id BIGINT NOT NULL DEFAULT 0,"
    " username VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    "  NOT NULL DEFAULT '',"
    " addr VARCHAR(64) NOT NULL DEFAULT '',"
    " kind VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
    " target VARCHAR(255) NOT NULL DEFAULT '',"
    " before_json MEDIUMTEXT NOT NULL, after_json MEDIUMTEXT NOT NULL,"
    " KEY cronix_audit_at (at), KEY cronix_audit_user (username, at),"
    " KEY cronix_audit_kind (kind, at))" MY_TABLE,
    NULL};

/* ---- version 8: missed fires as ranges ---------------------------------- */

/* A fire no node ran is logged as status `missed`; one row may stand for a
 * range of them (scheduled_at = the first, missed_last the last,
 * missed_count how many), so a day of downtime of a job firing every
 * second is one row, not 86 400. 0 on every other row. */
static const char *const v8_sqlite[] = {
    "ALTER TABLE cronix_job_log ADD COLUMN missed_count INTEGER NOT NULL"
    " DEFAULT 0",
    "ALTER TABLE cronix_job_log ADD COLUMN missed_last INTEGER NOT NULL"
    " DEFAULT 0",
    NULL};
static const char *const v8_mysql[] = {
    "ALTER TABLE cronix_job_log ADD COLUMN missed_count BIGINT NOT NULL"
    " DEFAULT 0, ADD COLUMN missed_last BIGINT NOT NULL DEFAULT 0",
    NULL};

/* ---- version 9: the alert outbox ---------------------------------------- */

/* A run's final record sets notify_pending in the same statement when its
 * job alerts on the outcome (cx_store_run_finish, cx_store_run_mark_lost);
 * the leader turns flagged runs into cronix_notify_log rows and sends
 * those. Few rows are ever flagged, so the index finds them at once.
 * cronix_notify_log's ukey ("run:<id>:<event>", "node:<uuid>:<ms>:<ch>")
 * is what makes an event alert once across leader changes. cronix_setting
 * holds named JSON documents edited through the API (notify channels).
 * Users gain the ids the robots mention them by; jobs the events they
 * alert on and a max_duration. */
static const char *const v9_sqlite[] = {
    "ALTER TABLE cronix_job_log ADD COLUMN notify_pending INTEGER NOT NULL"
    " DEFAULT 0",
    "CREATE INDEX cronix_job_log_notify ON cronix_job_log(notify_pending)",
    "CREATE TABLE cronix_notify_log ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, ukey TEXT NOT NULL UNIQUE,"
    " event TEXT NOT NULL, run_id INTEGER NOT NULL DEFAULT 0,"
    " job_id INTEGER NOT NULL DEFAULT 0,"
    " node_uuid TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',"
    " channel INTEGER NOT NULL DEFAULT 0,"
    " recipients TEXT NOT NULL DEFAULT '[]',"
    " state TEXT NOT NULL DEFAULT 'pending',"
    " attempts INTEGER NOT NULL DEFAULT 0, answer TEXT NOT NULL DEFAULT '',"
    " created INTEGER NOT NULL, next_at INTEGER NOT NULL DEFAULT 0,"
    " done_at INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX cronix_notify_log_due ON cronix_notify_log(state, next_at)",
    "CREATE TABLE cronix_setting (name TEXT PRIMARY KEY NOT NULL,"
    " value TEXT NOT NULL, updated INTEGER NOT NULL)",
    "ALTER TABLE cronix_user ADD COLUMN mobile TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE cronix_user ADD COLUMN dingtalk_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE cronix_user ADD COLUMN wecom_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE cronix_user ADD COLUMN slack_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE cronix_job ADD COLUMN notify_events TEXT NOT NULL"
    " DEFAULT ''",
    "ALTER TABLE cronix_job ADD COLUMN max_duration INTEGER NOT NULL"
    " DEFAULT 0",
    NULL};
static const char *const v9_mysql[] = {
    "ALTER TABLE cronix_job_log ADD COLUMN notify_pending TINYINT NOT NULL"
    " DEFAULT 0, ADD KEY cronix_job_log_notify (notify_pending)",
    "CREATE TABLE IF NOT EXISTS cronix_notify_log ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " ukey VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,"
    " event VARCHAR(16) NOT NULL, run_id BIGINT NOT NULL DEFAULT 0,"
    " job_id BIGINT NOT NULL DEFAULT 0,"
    " node_uuid VARCHAR(64) NOT NULL DEFAULT '', detail MEDIUMTEXT NOT NULL,"
    " channel INT NOT NULL DEFAULT 0, recipients MEDIUMTEXT NOT NULL,"
    " state VARCHAR(16) NOT NULL DEFAULT 'pending',"
    " attempts INT NOT NULL DEFAULT 0, answer TEXT NOT NULL,"
    " created BIGINT NOT NULL, next_at BIGINT NOT NULL DEFAULT 0,"
    " done_at BIGINT NOT NULL DEFAULT 0,"
    " UNIQUE KEY cronix_notify_log_ukey (ukey),"
    " KEY cronix_notify_log_due (state, next_at))" MY_TABLE,
    "CREATE TABLE IF NOT EXISTS cronix_setting ("
    " name VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
    " value MEDIUMTEXT NOT NULL, updated BIGINT NOT NULL)" MY_TABLE,
    "ALTER TABLE cronix_user ADD COLUMN mobile VARCHAR(32) NOT NULL DEFAULT"
    " '', ADD COLUMN dingtalk_id VARCHAR(128) NOT NULL DEFAULT '',"
    " ADD COLUMN wecom_id VARCHAR(128) NOT NULL DEFAULT '',"
    " ADD COLUMN slack_id VARCHAR(64) NOT NULL DEFAULT ''",
    "ALTER TABLE cronix_job ADD COLUMN notify_events VARCHAR(128) NOT NULL"
    " DEFAULT '', ADD COLUMN max_duration INT NOT NULL DEFAULT 0",
    NULL};

/* ---- version 10: which nodes may run a job ------------------------------- */

static const char *const v10_sqlite[] = {
    "ALTER TABLE cronix_job ADD COLUMN node_selector TEXT NOT NULL"
    " DEFAULT ''",
    NULL};
static const char *const v10_mysql[] = {
    "ALTER TABLE cronix_job ADD COLUMN node_selector VARCHAR(1024) NOT NULL"
    " DEFAULT ''",
    NULL};

/* ---- version 11: broadcast jobs ----------------------------------------- */

/* A broadcast job (allocation 3) runs each fire once on every matching
 * node: its rows carry the node in claim_node, every other row '', and the
 * fire's unique key becomes (job_id, scheduled_at, claim_node) -- still
 * exactly one row per fire for single-node jobs, one per node for
 * broadcast ones. max_running bounds how many nodes run one fire. */
static const char *const v11_sqlite[] = {
    "ALTER TABLE cronix_job ADD COLUMN max_running INTEGER NOT NULL"
    " DEFAULT 0",
    "ALTER TABLE cronix_job_log ADD COLUMN claim_node TEXT NOT NULL"
    " DEFAULT ''",
    "DROP INDEX cronix_job_log_fire",
    "CREATE UNIQUE INDEX cronix_job_log_fire"
    " ON cronix_job_log(job_id, scheduled_at, claim_node)",
    NULL};
static const char *const v11_mysql[] = {
    "ALTER TABLE cronix_job ADD COLUMN max_running INT NOT NULL DEFAULT 0",
    "ALTER TABLE cronix_job_log ADD COLUMN claim_node VARCHAR(64)"
    " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',"
    " DROP INDEX cronix_job_log_fire, ADD UNIQUE KEY cronix_job_log_fire"
    " (job_id, scheduled_at, claim_node)",
    NULL};

const struct cx__migration cx__migrations[] = {
    {1, {v1_sqlite, v1_mysql}},    {2, {v2_sqlite, v2_mysql}},
    {3, {v3_sqlite, v3_mysql}},    {4, {v4_sqlite, v4_mysql}},
    {5, {v5_sqlite, v5_mysql}},    {6, {v6_sqlite, v6_mysql}},
    {7, {v7_sqlite, v7_mysql}},    {8, {v8_sqlite, v8_mysql}},
    {9, {v9_sqlite, v9_mysql}},    {10, {v10_sqlite, v10_mysql}},
    {11, {v11_sqlite, v11_mysql}},
};
const int cx__migrations_n = (int)CX_ARRAY_LEN(cx__migrations);
