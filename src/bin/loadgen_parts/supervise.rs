//! The supervision benchmark's two modes (issue 6): `loadgen seed` fills the interaction read
//! model with N interactions straight through SQL, and `loadgen query` measures the list, the
//! advanced search, full-text search and the CSV export against a running server.
//!
//! Why seed the read model directly: the figures asked for are the query side (list, search,
//! export) over 1,000,000 interactions; producing them through webhooks would take the
//! ingestion benchmark's ~5 minutes per million messages per backend and measure ingestion
//! again. The rows are shaped like the projector's (same columns, realistic spread of
//! accounts, statuses, agents, tags, dispositions, dates and message words), the accounts and
//! the agent are real aggregates created through the API, so visibility rules are exercised
//! as in production. Rebuild speed is measured separately on a log produced by real traffic
//! (scripts/bench-supervision.sh).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{client, expect_json, percentile, proc_status_kb, round2, wait_healthy};

/// `loadgen seed` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Base URL of the running server (accounts and the agent are created through it).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Admin token.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The server's database (the same URL `serve` uses).
    #[arg(long)]
    pub database_url: String,
    /// Interactions to insert.
    #[arg(long, default_value_t = 1_000_000)]
    pub interactions: u64,
    /// Accounts they are spread over (created through the API).
    #[arg(long, default_value_t = 10)]
    pub accounts: u64,
    /// Rows per INSERT statement (one transaction each).
    #[arg(long, default_value_t = 50_000)]
    pub batch: u64,
    /// Write {"accounts": [...], "agent_token": ..., "agent_account": ...} here.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
}

/// `loadgen query` options.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// Base URL of the running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Supervisor or admin token.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The seed's output (accounts, agent token).
    #[arg(long)]
    pub seed: std::path::PathBuf,
    /// Requests per query kind.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// PID of the server, for its memory during the export.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Skip the full export (it reads every row).
    #[arg(long)]
    pub skip_export: bool,
    /// A label copied into the JSON result.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
}

const STATUSES: [&str; 6] = ["closed", "disposed", "disposed", "disposed", "assigned", "queued"];
const WORDS: [&str; 16] = [
    "order",
    "refund",
    "delivery",
    "invoice",
    "password",
    "warranty",
    "broken",
    "upgrade",
    "cancel",
    "address",
    "payment",
    "coupon",
    "tracking",
    "return",
    "exchange",
    "subscription",
];
const TAGS: [&str; 4] = ["vip", "complaint", "billing", "followup"];
const DISPOSITIONS: [&str; 4] = ["resolved", "callback", "escalated", "spam"];
const AGENTS: u64 = 50;
const QUEUES: u64 = 8;
/// Opened-at spread: 180 days ending now.
const SPAN_MS: i64 = 180 * 86_400_000;

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `CASE (expr) WHEN 0 THEN 'a' ... END` picking from `values`.
fn pick(expr: &str, values: &[&str]) -> String {
    let mut sql = format!("CASE ({expr}) % {}", values.len());
    for (i, v) in values.iter().enumerate() {
        sql.push_str(&format!(" WHEN {i} THEN '{v}'"));
    }
    sql.push_str(" END");
    sql
}

/// The id of the `n`th seeded row of a kind, as a UUID-shaped string.
fn uuid_sql(pg: bool, prefix: &str, n: &str) -> String {
    if pg {
        format!("'{prefix}-0000-7000-8000-' || lpad(({n})::text, 12, '0')")
    } else {
        format!("'{prefix}-0000-7000-8000-' || printf('%012d', {n})")
    }
}

pub fn seed(args: SeedArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_seed(args))
}

async fn run_seed(args: SeedArgs) -> anyhow::Result<()> {
    if args.interactions == 0 || args.accounts == 0 || args.batch == 0 {
        bail!("--interactions, --accounts and --batch must be positive");
    }
    let http = client(30, 8)?;
    let base = args.url.trim_end_matches('/');
    wait_healthy(&http, base).await?;
    let run = std::process::id() % 100_000;
    let mut accounts = Vec::new();
    for n in 0..args.accounts {
        let account = expect_json(
            http.post(format!("{base}/api/accounts"))
                .bearer_auth(&args.token)
                .json(&json!({"name": format!("Bench {n}"), "key": format!("B{n}"), "provider": {
                    "type": "meta", "business_account_id": "100000000000001", "app_id": "4242",
                    "phone_number_id": format!("2000{run}{n:04}"), "access_token": "bench-access-token",
                    "app_secret": "bench-app-secret-0123456789abcdef", "verify_token": "bench-verify",
                    "api_base_url": "http://127.0.0.1:9", "api_version": "v23.0"}}))
                .send()
                .await?,
            "POST /api/accounts",
        )
        .await?;
        accounts.push(account["account_id"].as_str().context("account_id")?.to_owned());
    }
    let agent = expect_json(
        http.post(format!("{base}/api/agents"))
            .bearer_auth(&args.token)
            .json(&json!({"name": "Bench agent"}))
            .send()
            .await?,
        "POST /api/agents",
    )
    .await?;
    let agent_id = agent["agent_id"].as_str().context("agent_id")?.to_owned();
    let agent_token = agent["token"].as_str().context("token")?.to_owned();
    expect_json(
        http.post(format!("{base}/api/accounts/{}/agents", accounts[0]))
            .bearer_auth(&args.token)
            .json(&json!({"agent_id": agent_id}))
            .send()
            .await?,
        "POST /api/accounts/{id}/agents",
    )
    .await?;

    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(2).connect(&args.database_url).await?;
    let pg = is_postgres(&args.database_url);
    let now = chrono::Utc::now().timestamp_millis();
    let account_case = {
        let refs: Vec<&str> = accounts.iter().map(String::as_str).collect();
        pick("i * 7", &refs)
    };
    let started = Instant::now();
    let mut from = 0u64;
    while from < args.interactions {
        let to = (from + args.batch).min(args.interactions);
        // Deterministic pseudo-random spread from the row number (Knuth's multiplicative hash).
        let h = "((i * 2654435761) % 4294967296)";
        let opened = format!("({now} - (({h} % 1000000) * {}))", SPAN_MS / 1_000_000);
        let series = format!(
            "WITH RECURSIVE s(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {to})"
        );
        let status = pick(&format!("{h} / 7"), &STATUSES);
        let closed = format!("CASE WHEN ({status}) IN ('closed', 'disposed') THEN {opened} + 600000 END");
        let list_sql = format!(
            "INSERT INTO interaction_list (interaction_id, account_id, queue_id, agent_id, customer, customer_name,
                status, last_message_at, last_message_preview, last_message_direction, unread_count, message_count,
                opened_at, assigned_at, closed_at, disposed_at, disposition, updated_at, tags, unread)
             {series}
             SELECT {id}, {account_case}, {queue}, {agent}, '+1555' || ({h} % 10000000), 'Customer ' || ({h} % 100000),
                {status}, {opened} + 300000, 'Question about my ' || {word}, 'in', ({h} / 11) % 3, 2,
                {opened}, {opened} + 60000, {closed},
                CASE WHEN ({status}) = 'disposed' THEN {opened} + 660000 END,
                CASE WHEN ({status}) = 'disposed' THEN {disposition} END, {opened} + 660000,
                CASE WHEN {h} % 5 = 0 THEN '[\"' || {tag} || '\"]' ELSE '[]' END, 0
             FROM s",
            id = uuid_sql(pg, "00000001", "i"),
            queue = uuid_sql(pg, "00000002", &format!("{h} % {QUEUES}")),
            agent = uuid_sql(pg, "00000003", &format!("{h} % {AGENTS}")),
            word = pick(&format!("{h} / 13"), &WORDS),
            disposition = pick(&format!("{h} / 17"), &DISPOSITIONS),
            tag = pick(&format!("{h} / 19"), &TAGS),
        );
        let messages_sql = format!(
            "INSERT INTO interaction_messages (message_id, interaction_id, direction, kind, body, status, at, seq)
             {series}
             SELECT {mid_in}, {id}, 'in', 'text',
                    'Hi, I have a question about my ' || {w1} || ' and the ' || {w2} || ' number ' || i,
                    'received', {opened} + 1000, 2 FROM s
             UNION ALL
             SELECT {mid_out}, {id}, 'out', 'text', 'Thanks, I am checking your ' || {w1} || ' now.',
                    'delivered', {opened} + 300000, 5 FROM s",
            mid_in = uuid_sql(pg, "00000004", "i"),
            mid_out = uuid_sql(pg, "00000005", "i"),
            id = uuid_sql(pg, "00000001", "i"),
            w1 = pick(&format!("{h} / 13"), &WORDS),
            w2 = pick(&format!("{h} / 23"), &WORDS),
        );
        let tags_sql = format!(
            "INSERT INTO interaction_tags (interaction_id, tag)
             {series}
             SELECT {id}, {tag} FROM s WHERE {h} % 5 = 0",
            id = uuid_sql(pg, "00000001", "i"),
            tag = pick(&format!("{h} / 19"), &TAGS),
        );
        let mut tx = pool.begin().await?;
        for sql in [&list_sql, &messages_sql, &tags_sql] {
            sqlx::query(sql).execute(&mut *tx).await.with_context(|| format!("seeding rows {from}..{to}"))?;
        }
        tx.commit().await?;
        from = to;
        eprintln!(
            "seeded {from} / {} interactions ({:.0} rows/s)",
            args.interactions,
            from as f64 / started.elapsed().as_secs_f64()
        );
    }
    // Planner statistics, as the server keeps them (autovacuum on PostgreSQL, an hourly
    // ANALYZE on SQLite: `workers::planner`); a million rows arrived in a minute here.
    sqlx::query(if pg { "ANALYZE" } else { "ANALYZE interaction_list" }).execute(&pool).await?;
    let out = json!({"accounts": accounts, "agent_token": agent_token, "agent_account": accounts[0],
        "interactions": args.interactions, "seconds": round2(started.elapsed().as_secs_f64())});
    println!("{out}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)?;
    }
    Ok(())
}

pub fn query(args: QueryArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(run_query(args))
}

/// One query kind: a GET path (with `{account}`), or a POST search body.
struct Kind {
    name: &'static str,
    agent: bool,
    request: Request,
}

enum Request {
    Get(String),
    /// Follow `X-Next-Cursor` this many pages from the path.
    Pages(String, usize),
    Search(Value),
}

async fn timed(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    request: &Request,
) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let rows = match request {
        Request::Get(path) => {
            let body =
                expect_json(http.get(format!("{base}{path}")).bearer_auth(token).send().await?, path).await?;
            body.as_array().map(Vec::len).unwrap_or(0)
        }
        Request::Pages(path, pages) => {
            let mut url = format!("{base}{path}");
            let mut rows = 0;
            for _ in 0..*pages {
                let response = http.get(&url).bearer_auth(token).send().await?;
                let next =
                    response.headers().get("x-next-cursor").and_then(|v| v.to_str().ok()).map(str::to_owned);
                rows += expect_json(response, path).await?.as_array().map(Vec::len).unwrap_or(0);
                let Some(next) = next else { break };
                url = format!("{base}{path}&cursor={next}");
            }
            rows
        }
        Request::Search(body) => {
            let answer = expect_json(
                http.post(format!("{base}/api/interactions/search"))
                    .bearer_auth(token)
                    .json(body)
                    .send()
                    .await?,
                "POST /api/interactions/search",
            )
            .await?;
            answer["items"].as_array().map(Vec::len).unwrap_or(0)
        }
    };
    Ok((started.elapsed(), rows))
}

async fn run_query(args: QueryArgs) -> anyhow::Result<()> {
    let seed: Value = serde_json::from_slice(&std::fs::read(&args.seed)?)?;
    let account = seed["accounts"][1].as_str().context("seed accounts")?.to_owned();
    let agent_token = seed["agent_token"].as_str().context("seed agent_token")?.to_owned();
    let http = client(600, 4)?;
    let base = args.url.trim_end_matches('/').to_owned();
    wait_healthy(&http, &base).await?;
    let month_ago =
        (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let month_ago = month_ago.replace('+', "%2B");
    let kinds = vec![
        Kind {
            name: "list_first_page",
            agent: false,
            request: Request::Get("/api/interactions?limit=50".into()),
        },
        Kind {
            name: "list_account_status_30d",
            agent: false,
            request: Request::Get(format!(
                "/api/interactions?account_id={account}&status=disposed&from={month_ago}&limit=50"
            )),
        },
        Kind {
            name: "list_tag_disposition",
            agent: false,
            request: Request::Get("/api/interactions?tag=vip&disposition=resolved&limit=50".into()),
        },
        Kind {
            name: "list_20_pages",
            agent: false,
            request: Request::Pages("/api/interactions?limit=50&state=closed".into(), 20),
        },
        Kind {
            name: "list_as_agent",
            agent: true,
            request: Request::Get("/api/interactions?limit=50".into()),
        },
        Kind {
            name: "fulltext_list",
            agent: false,
            request: Request::Get("/api/interactions?q=warranty%20refund&limit=50".into()),
        },
        Kind {
            name: "search_any_3_conditions",
            agent: false,
            request: Request::Search(json!({"match": "any", "limit": 50, "conditions": [
                {"field": "customer", "operator": "starts_with", "value": "+15551234"},
                {"field": "disposition", "operator": "equals", "value": "escalated"},
                {"field": "customer_name", "operator": "ends_with", "value": "4242", "enabled": false},
                {"field": "message_count", "operator": "greater_than", "value": "5"}]})),
        },
        Kind {
            name: "search_all_text",
            agent: false,
            request: Request::Search(json!({"match": "all", "limit": 50, "text": "invoice",
                "conditions": [{"field": "status", "operator": "equals", "value": "disposed"}]})),
        },
    ];
    let mut results = serde_json::Map::new();
    for kind in &kinds {
        let token = if kind.agent { &agent_token } else { &args.token };
        // One warm-up request (plans, caches), then the measured ones.
        timed(&http, &base, token, &kind.request).await.with_context(|| kind.name)?;
        let mut micros = Vec::with_capacity(args.iterations);
        let mut rows = 0;
        for _ in 0..args.iterations {
            let (took, n) = timed(&http, &base, token, &kind.request).await.with_context(|| kind.name)?;
            micros.push(took.as_micros() as u64);
            rows = n;
        }
        micros.sort_unstable();
        let entry = json!({"p50_ms": percentile(&micros, 50.0).map(round2), "p99_ms": percentile(&micros, 99.0).map(round2),
            "max_ms": micros.last().map(|m| round2(*m as f64 / 1000.0)), "rows": rows, "n": micros.len()});
        eprintln!("{:<26} {entry}", kind.name);
        results.insert(kind.name.into(), entry);
    }
    if !args.skip_export {
        results.insert("export".into(), export(&http, &base, &args).await?);
    }
    let out = json!({"label": args.label, "queries": results});
    println!("{out}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)?;
    }
    Ok(())
}

/// Streams the whole CSV export, counting rows, while sampling the server's resident memory.
async fn export(http: &reqwest::Client, base: &str, args: &QueryArgs) -> anyhow::Result<Value> {
    let rss = |field| args.server_pid.and_then(|pid| proc_status_kb(pid, field));
    let before = rss("VmRSS:");
    let started = Instant::now();
    let response =
        http.get(format!("{base}/api/interactions/export.csv")).bearer_auth(&args.token).send().await?;
    if !response.status().is_success() {
        bail!("export: HTTP {}", response.status());
    }
    let mut response = response;
    let (mut bytes, mut newlines, mut peak) = (0u64, 0u64, before.unwrap_or(0));
    let mut last_sample = Instant::now();
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
        newlines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if last_sample.elapsed() > Duration::from_millis(100) {
            peak = peak.max(rss("VmRSS:").unwrap_or(0));
            last_sample = Instant::now();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // Rows = lines minus the header (no field of the seeded data holds a newline).
    let rows = newlines.saturating_sub(1);
    let out = json!({"rows": rows, "bytes": bytes, "seconds": round2(secs), "rows_per_s": round2(rows as f64 / secs),
        "server_rss_before_mb": before.map(|k| round2(k as f64 / 1024.0)),
        "server_rss_peak_mb": args.server_pid.map(|_| round2(peak as f64 / 1024.0))});
    eprintln!("{:<26} {out}", "export");
    Ok(out)
}
