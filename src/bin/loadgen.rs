//! `loadgen`: posts correctly signed Meta webhooks at a fixed rate against a running
//! Switchboard server and reports throughput, acknowledgement latency and the server's peak
//! memory.
//!
//! ```text
//! loadgen --url http://127.0.0.1:8080 --token "$ADMIN_TOKEN" \
//!         --conversations 1000 --rate 5000 --duration 60 --server-pid "$SERVER_PID"
//! ```
//!
//! - Setup: with `--token` (an admin token, e.g. from `switchboard create-token`) it creates
//!   its own account (Meta provider, with `--app-secret`), a queue and the account's routing,
//!   so one command runs the whole thing. With `--account-id` it reuses an existing account
//!   whose app secret is `--app-secret`.
//! - Load: one inbound text message per webhook, message `i` from customer `i mod N`
//!   (`--conversations`), every message with a fresh `wamid`. Open loop: message `i` is due
//!   at `start + i / rate` whatever the server does; at most `--concurrency` requests are in
//!   flight, and when that many are outstanding the schedule keeps running. A request's
//!   latency is measured from the moment it was due (or from when it was sent, if that was
//!   earlier), so time spent waiting behind a slow server counts (no coordinated omission).
//! - The first `--warmup` seconds (which also open the N interactions) are sent but left out
//!   of the figures; `--duration` seconds are measured after them. If the server falls so far
//!   behind that the schedule overruns by more than `--max-overrun` seconds, the rest is not
//!   sent and is reported as `unsent`.
//! - Memory and CPU: with `--server-pid`, `/proc/PID/status` is sampled every 200 ms for the
//!   largest VmRSS, and VmHWM (the kernel's own peak) is read at the end; the server's CPU
//!   time, the load generator's own and the whole machine's over the measured window come
//!   from `/proc`.
//!
//! Prints a human summary, then one JSON line (also written to `--json-out`).
//!
//! `loadgen route` is the routing benchmark (issue 4): it sets up an account, a queue and
//! `--agents` agents, each with its own websocket, posts `--interactions` webhooks from as
//! many distinct customers, has every agent accept and close every offer it gets, and
//! reports offers per second and the time from webhook to `offer` frame (see [`route`]).
//!
//! ```text
//! loadgen route --url http://127.0.0.1:8080 --token "$ADMIN_TOKEN" \
//!         --interactions 10000 --agents 200 --rate 100 --server-pid "$SERVER_PID"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

/// Load generator for Switchboard: Meta webhook ingestion (default) or routing (`route`).
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    ingest: Args,
}

#[derive(Debug, Clone, Subcommand)]
enum Mode {
    /// Routing benchmark: webhooks from distinct customers offered to agents on websockets.
    Route(route::RouteArgs),
    /// Supervision benchmark, step 1: fill the interaction read model with N interactions.
    Seed(supervise::SeedArgs),
    /// Supervision benchmark, step 2: time the list, search, full-text and export.
    Query(supervise::QueryArgs),
}

#[path = "loadgen_parts/supervise.rs"]
mod supervise;

/// The ingestion benchmark's options (no subcommand).
#[derive(Debug, Clone, clap::Args)]
struct Args {
    /// Base URL of the running server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Admin token used to create the account, queue and routing the load goes to.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Use this existing account instead of creating one (its app secret must be --app-secret).
    #[arg(long)]
    account_id: Option<String>,
    /// App secret the webhooks are signed with (and the created account is given).
    #[arg(long, default_value = "loadgen-app-secret-0123456789abcdef")]
    app_secret: String,
    /// Distinct customers (conversations) the messages are spread over, round-robin.
    #[arg(long, default_value_t = 1000)]
    conversations: u64,
    /// Target rate, messages per second (one message per webhook).
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Warm-up seconds, sent at the same rate but excluded from the figures.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Maximum requests in flight.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Stop sending when the schedule is this many seconds behind; the rest counts as unsent.
    #[arg(long, default_value_t = 30)]
    max_overrun: u64,
    /// PID of the server, for its peak memory and CPU time (Linux /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Tokio worker threads of the load generator itself.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A label copied into the JSON result (e.g. `postgres`).
    #[arg(long, default_value = "")]
    label: String,
    /// Also write the JSON result to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

/// What happened to one request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When it was due, µs after the start of the schedule.
    due_us: u64,
    /// When its answer (or error) came, µs after the start.
    done_us: u64,
    /// Latency in µs (from due, or from sent if that was earlier).
    latency_us: u64,
    /// HTTP status, or 0 for a transport error, 1 for a timeout.
    status: u16,
}

const STATUS_TRANSPORT: u16 = 0;
const STATUS_TIMEOUT: u16 = 1;

fn main() -> anyhow::Result<()> {
    let args = match Cli::parse() {
        Cli { mode: Some(Mode::Route(route)), .. } => return route::main(route),
        Cli { mode: Some(Mode::Seed(seed)), .. } => return supervise::seed(seed),
        Cli { mode: Some(Mode::Query(query)), .. } => return supervise::query(query),
        Cli { mode: None, ingest } => ingest,
    };
    if args.rate <= 0.0 || args.conversations == 0 || args.concurrency == 0 {
        bail!("--rate, --conversations and --concurrency must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(args))
}

fn client(timeout_secs: u64, pool: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .http1_only()
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

async fn wait_healthy(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            other => {
                if Instant::now() > deadline {
                    bail!("{base}/healthz did not answer 200 within 30 s: {other:?}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn expect_json(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {text}");
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

/// Creates a Meta account signed with `app_secret`, a queue (`queue` is the `POST /api/queues`
/// body), and routes the account to it. Returns the account's and the queue's ids.
async fn create_account(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    app_secret: &str,
    queue: Value,
) -> anyhow::Result<(String, String)> {
    let account = expect_json(
        http.post(format!("{base}/api/accounts"))
            .bearer_auth(token)
            .json(&json!({"name": "Load test", "key": "LOAD", "provider": {
                "type": "meta", "business_account_id": "100000000000001", "app_id": "4242",
                "phone_number_id": "100000000000002", "access_token": "loadgen-access-token",
                "app_secret": app_secret, "verify_token": "loadgen-verify-token",
                // Nothing is sent to the provider during either benchmark (no agent replies):
                // a port nothing listens on.
                "api_base_url": "http://127.0.0.1:9", "api_version": "v23.0"}}))
            .send()
            .await?,
        "POST /api/accounts",
    )
    .await?;
    let account_id = account["account_id"].as_str().context("account_id in the answer")?.to_owned();
    let queue = expect_json(
        http.post(format!("{base}/api/queues")).bearer_auth(token).json(&queue).send().await?,
        "POST /api/queues",
    )
    .await?;
    let queue_id = queue["id"].as_str().context("id in the queue answer")?.to_owned();
    expect_json(
        http.put(format!("{base}/api/accounts/{account_id}/routing"))
            .bearer_auth(token)
            .json(&json!({"queue_id": queue_id}))
            .send()
            .await?,
        "PUT /api/accounts/{id}/routing",
    )
    .await?;
    Ok((account_id, queue_id))
}

/// One webhook body with one inbound text message, in Meta's shape
/// (tests/fixtures/meta_inbound_text.json).
fn webhook_body(run: &str, i: u64, conversation: u64, now_secs: i64) -> String {
    let from = format!("1555{:07}", conversation % 10_000_000);
    format!(
        concat!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"100000000000001","changes":[{{"#,
            r#""value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15557654321","#,
            r#""phone_number_id":"100000000000002"}},"contacts":[{{"profile":{{"name":"Customer {conv}"}},"#,
            r#""wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"wamid.LG{run}.{i}","#,
            r#""timestamp":"{ts}","type":"text","text":{{"body":"Hi, I need help with order {i}"}}}}]}},"#,
            r#""field":"messages"}}]}}]}}"#
        ),
        conv = conversation,
        from = from,
        run = run,
        i = i,
        ts = now_secs,
    )
}

// ---------------------------------------------------------------------------------------
// /proc sampling

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// utime + stime of a process, in clock ticks.
fn proc_cpu_ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields resume after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ... utime is field 14 overall, i.e. index 11 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Machine-wide CPU ticks: (busy, iowait, total).
fn machine_ticks() -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3];
    let iowait = v[4];
    Some((total - idle - iowait, iowait, total))
}

#[derive(Debug, Clone, Copy, Default)]
struct CpuMark {
    server: Option<u64>,
    own: Option<u64>,
    machine: Option<(u64, u64, u64)>,
    at: Option<Instant>,
}

fn cpu_mark(server_pid: Option<u32>) -> CpuMark {
    CpuMark {
        server: server_pid.and_then(|p| proc_cpu_ticks(&p.to_string())),
        own: proc_cpu_ticks("self"),
        machine: machine_ticks(),
        at: Some(Instant::now()),
    }
}

/// Clock ticks per second (USER_HZ); 100 on every Linux configuration that matters here.
const TICKS_PER_SEC: f64 = 100.0;

// ---------------------------------------------------------------------------------------
// statistics

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[idx] as f64 / 1000.0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn opt_round(x: Option<f64>) -> Value {
    x.map(|v| json!(round2(v))).unwrap_or(Value::Null)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let http = client(args.timeout, args.concurrency)?;
    let base = args.url.trim_end_matches('/').to_owned();
    wait_healthy(&http, &base).await?;
    let account_id = match (&args.account_id, &args.token) {
        (Some(id), _) => id.clone(),
        (None, Some(token)) => {
            create_account(&http, &base, token, &args.app_secret, json!({"name": "Load test"})).await?.0
        }
        (None, None) => bail!("give --token (to create an account) or --account-id"),
    };
    let endpoint = format!("{base}/webhooks/whatsapp/{account_id}");
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let secret = args.app_secret.clone().into_bytes();

    let total = ((args.warmup + args.duration) as f64 * args.rate).round() as u64;
    let warmup_us = args.warmup * 1_000_000;
    let interval_ns = 1e9 / args.rate;
    eprintln!(
        "loadgen: {total} messages at {}/s over {} conversations ({} s warm-up + {} s measured), \
         concurrency {}, account {account_id}",
        args.rate, args.conversations, args.warmup, args.duration, args.concurrency
    );

    // Memory sampler.
    let peak_rss_kb = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop_sampler = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rss_start_kb = args.server_pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
    let sampler = args.server_pid.map(|pid| {
        let peak = peak_rss_kb.clone();
        let stop = stop_sampler.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(rss) = proc_status_kb(pid, "VmRSS:") {
                    peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    });

    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let collector = tokio::spawn(async move {
        let mut samples = Vec::new();
        while let Some(s) = rx.recv().await {
            samples.push(s);
        }
        samples
    });

    let semaphore = Arc::new(Semaphore::new(args.concurrency));
    let start = Instant::now() + Duration::from_millis(50);
    let abort_at = start + Duration::from_secs(args.warmup + args.duration + args.max_overrun);
    let mut window_start: Option<CpuMark> = None;
    let mut sent = 0u64;
    let mut max_lag_us = 0u64;
    for i in 0..total {
        let due = start + Duration::from_nanos((i as f64 * interval_ns) as u64);
        let now = Instant::now();
        // The timer has millisecond resolution: anything due within the next millisecond goes
        // now (its latency is then measured from when it was actually sent).
        if due > now + Duration::from_millis(1) {
            tokio::time::sleep_until(due.into()).await;
        }
        if window_start.is_none() && due.saturating_duration_since(start).as_micros() as u64 >= warmup_us {
            window_start = Some(cpu_mark(args.server_pid));
        }
        let permit = semaphore.clone().acquire_owned().await.context("semaphore closed")?;
        let sent_at = Instant::now();
        if sent_at > abort_at {
            drop(permit);
            break;
        }
        max_lag_us = max_lag_us.max(sent_at.saturating_duration_since(due).as_micros() as u64);
        let conversation = i % args.conversations;
        let body = webhook_body(&run_id, i, conversation, chrono::Utc::now().timestamp());
        let signature = switchboard::providers::meta::sign(&secret, body.as_bytes());
        let request = http
            .post(&endpoint)
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", signature)
            .body(body);
        let tx = tx.clone();
        tokio::spawn(async move {
            let status = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Drain the body so the connection goes back to the pool.
                    let _ = response.bytes().await;
                    status
                }
                Err(e) if e.is_timeout() => STATUS_TIMEOUT,
                Err(_) => STATUS_TRANSPORT,
            };
            let done = Instant::now();
            let from = if sent_at < due { sent_at } else { due };
            let _ = tx.send(Sample {
                due_us: due.saturating_duration_since(start).as_micros() as u64,
                done_us: done.saturating_duration_since(start).as_micros() as u64,
                latency_us: done.saturating_duration_since(from).as_micros() as u64,
                status,
            });
            drop(permit);
        });
        sent += 1;
    }
    drop(tx);
    // Wait for everything in flight.
    let _all = semaphore.acquire_many(args.concurrency as u32).await.context("semaphore closed")?;
    let window_end = cpu_mark(args.server_pid);
    stop_sampler.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let samples = collector.await.context("collector")?;

    // ---- figures over the measured window
    let measured: Vec<&Sample> = samples.iter().filter(|s| s.due_us >= warmup_us).collect();
    let scheduled_measured = total.saturating_sub((args.warmup as f64 * args.rate).round() as u64);
    let unsent = total - sent;
    let mut ok_lat: Vec<u64> = measured.iter().filter(|s| s.status == 200).map(|s| s.latency_us).collect();
    ok_lat.sort_unstable();
    let ok = ok_lat.len() as u64;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for s in measured.iter().filter(|s| s.status != 200) {
        let key = match s.status {
            STATUS_TRANSPORT => "transport".to_owned(),
            STATUS_TIMEOUT => "timeout".to_owned(),
            n => n.to_string(),
        };
        *errors.entry(key).or_default() += 1;
    }
    // Throughput: OK answers (to any request, warm-up ones included) that arrived inside the
    // measured window, per second of that window. When the server keeps up this is the target
    // rate; when it does not, it is what the server sustained.
    let window_end_us = warmup_us + args.duration * 1_000_000;
    let mut per_sec: Vec<u64> = vec![0; args.duration as usize];
    for s in samples.iter().filter(|s| s.status == 200 && s.done_us >= warmup_us && s.done_us < window_end_us)
    {
        per_sec[((s.done_us - warmup_us) / 1_000_000) as usize] += 1;
    }
    let in_window: u64 = per_sec.iter().sum();
    let achieved = in_window as f64 / args.duration as f64;
    let min_1s = per_sec.iter().copied().min().unwrap_or(0);
    let max_1s = per_sec.iter().copied().max().unwrap_or(0);
    // How long the measured requests took to be answered, all of them (past the window when
    // the server fell behind).
    let last_done_us = measured.iter().map(|s| s.done_us).max().unwrap_or(warmup_us);
    let window_secs = (last_done_us.saturating_sub(warmup_us)) as f64 / 1e6;

    let ws = window_start.unwrap_or_default();
    let elapsed = match (ws.at, window_end.at) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let pct = |a: Option<u64>, b: Option<u64>| -> Option<f64> {
        match (a, b) {
            (Some(a), Some(b)) if elapsed > 0.0 => Some(100.0 * (b - a) as f64 / TICKS_PER_SEC / elapsed),
            _ => None,
        }
    };
    let server_cpu = pct(ws.server, window_end.server);
    let own_cpu = pct(ws.own, window_end.own);
    let (machine_busy, machine_iowait) = match (ws.machine, window_end.machine) {
        (Some((b0, w0, t0)), Some((b1, w1, t1))) if t1 > t0 => (
            Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64),
            Some(100.0 * (w1 - w0) as f64 / (t1 - t0) as f64),
        ),
        _ => (None, None),
    };
    let hwm_kb = args.server_pid.and_then(|p| proc_status_kb(p, "VmHWM:"));
    let peak_kb = peak_rss_kb.load(std::sync::atomic::Ordering::Relaxed);
    let mb = |kb: u64| round2(kb as f64 / 1024.0);

    let result = json!({
        "label": args.label,
        "target_rate": args.rate,
        "conversations": args.conversations,
        "concurrency": args.concurrency,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "scheduled": scheduled_measured,
        "sent": measured.len(),
        "unsent": unsent,
        "ok": ok,
        "errors": errors,
        "answered_after_s": round2(window_secs),
        "achieved_rate": round2(achieved),
        "ok_in_window": in_window,
        "min_1s_rate": min_1s,
        "max_1s_rate": max_1s,
        "p50_ms": opt_round(percentile(&ok_lat, 50.0)),
        "p90_ms": opt_round(percentile(&ok_lat, 90.0)),
        "p99_ms": opt_round(percentile(&ok_lat, 99.0)),
        "p999_ms": opt_round(percentile(&ok_lat, 99.9)),
        "max_ms": opt_round(ok_lat.last().map(|&v| v as f64 / 1000.0)),
        "max_send_lag_ms": round2(max_lag_us as f64 / 1000.0),
        "server_rss_start_mb": rss_start_kb.map(mb),
        "server_peak_rss_mb": args.server_pid.map(|_| mb(peak_kb)),
        "server_vm_hwm_mb": hwm_kb.map(mb),
        "server_cpu_pct": opt_round(server_cpu),
        "loadgen_cpu_pct": opt_round(own_cpu),
        "machine_busy_pct": opt_round(machine_busy),
        "machine_iowait_pct": opt_round(machine_iowait),
        "per_second_ok": per_sec,
    });

    let show = |v: &Value| if v.is_null() { "-".to_owned() } else { v.to_string() };
    println!("== loadgen {} ==", args.label);
    println!(
        "target {}/s for {} s over {} conversations (concurrency {})",
        args.rate, args.duration, args.conversations, args.concurrency
    );
    println!(
        "sent {} (unsent {unsent}), ok {ok}, errors {}",
        measured.len(),
        serde_json::to_string(&result["errors"]).unwrap_or_default()
    );
    println!(
        "achieved {achieved:.1} msg/s sustained over the {} s window (1-s min {min_1s}, max {max_1s}); \
         its requests were all answered {window_secs:.1} s after it began",
        args.duration
    );
    println!(
        "latency ms: p50 {} p90 {} p99 {} p99.9 {} max {} (max send lag {} ms)",
        show(&result["p50_ms"]),
        show(&result["p90_ms"]),
        show(&result["p99_ms"]),
        show(&result["p999_ms"]),
        show(&result["max_ms"]),
        show(&result["max_send_lag_ms"]),
    );
    if args.server_pid.is_some() {
        println!(
            "server memory MB: start {} peak RSS (sampled) {} VmHWM {}",
            show(&result["server_rss_start_mb"]),
            show(&result["server_peak_rss_mb"]),
            show(&result["server_vm_hwm_mb"]),
        );
    }
    println!(
        "cpu %: server {} loadgen {} machine busy {} iowait {} (100 = one core; machine: % of all cores)",
        show(&result["server_cpu_pct"]),
        show(&result["loadgen_cpu_pct"]),
        show(&result["machine_busy_pct"]),
        show(&result["machine_iowait_pct"]),
    );
    let line = serde_json::to_string(&result)?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{line}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{line}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// the routing benchmark

/// `loadgen route`: the routing benchmark of issue 4.
///
/// - Setup (admin `--token`): a Meta account whose provider URL is a port nothing listens on
///   (agents only accept and close, so nothing is ever sent to the provider), a queue with
///   `--strategy` and `--offer-timeout`, the account routed to it, and `--agents` agents, each
///   added to the account and the queue, given `--capacity`, connected to `GET /ws` with its
///   own token, logged in and made ready. The run starts once `GET /api/agents/status` shows
///   all of them ready.
/// - Load: `--interactions` webhooks, webhook `i` from customer `+1555` + `i` (7 digits), so
///   every webhook opens its own interaction. Open loop at `--rate` per second (0: as fast as
///   `--concurrency` in-flight requests allow).
/// - Agents: each agent's task timestamps every frame as it arrives and, on `offer`, accepts
///   (`POST …/accept`) and then closes (`POST …/close`) the interaction in a separate task,
///   so a slow answer never delays the next frame's timestamp. A pause after setup (e.g.
///   `missed offer`) is answered with `POST /api/me/ready` and counted.
/// - Latency, per interaction: from the moment its webhook POST started to the moment the
///   first `offer` frame for it arrived on any agent's websocket. The frame carries only the
///   interaction id, so after the run (outside the measured time) every offered interaction
///   is read back with `GET /api/interactions/{id}` and matched to its webhook by customer
///   number. The time from the webhook's 200 to the offer is reported as well: it leaves out
///   ingestion and is 0 when the offer came before the acknowledgement.
/// - Offers per second: interactions offered (first offers) over the wall time from the
///   first webhook sent to the last first offer.
/// - The run ends when every acknowledged interaction has been accepted and every accept and
///   close has been answered, or `--idle-timeout` seconds after the last webhook without any
///   frame or answer, or at `--deadline` seconds after the first webhook, whichever is first.
pub mod route {
    use std::collections::{BTreeMap, HashMap};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail};
    use futures_util::{StreamExt, stream};
    use serde_json::{Value, json};
    use tokio::net::TcpStream;
    use tokio::sync::{Semaphore, mpsc, watch};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    use super::{
        CpuMark, TICKS_PER_SEC, client, cpu_mark, create_account, expect_json, opt_round, percentile,
        proc_status_kb, round2, wait_healthy, webhook_body,
    };

    /// The routing benchmark's options.
    #[derive(Debug, Clone, clap::Args)]
    pub struct RouteArgs {
        /// Base URL of the running server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Admin token used to create the account, queue and agents.
        #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
        token: String,
        /// App secret the webhooks are signed with (and the created account is given).
        #[arg(long, default_value = "loadgen-app-secret-0123456789abcdef")]
        app_secret: String,
        /// Interactions to route: one webhook each, from as many distinct customers.
        #[arg(long, default_value_t = 10_000)]
        interactions: u64,
        /// Agents, each with its own websocket.
        #[arg(long, default_value_t = 200)]
        agents: usize,
        /// Each agent's capacity (1 to 50; `PUT /api/agents/{id}/capacity`).
        #[arg(long, default_value_t = 5)]
        capacity: u32,
        /// The queue's strategy.
        #[arg(long, default_value = "round_robin",
              value_parser = ["ring_all", "round_robin", "least_recent", "fewest_open"])]
        strategy: String,
        /// The queue's offer timeout, seconds.
        #[arg(long, default_value_t = 30)]
        offer_timeout: u32,
        /// Webhooks per second (open loop); 0 sends as fast as --concurrency allows.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Maximum webhook requests in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Requests in flight during setup.
        #[arg(long, default_value_t = 16)]
        setup_concurrency: usize,
        /// Per-request timeout, seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Stop this many seconds after the first webhook, whatever is still outstanding.
        #[arg(long, default_value_t = 300)]
        deadline: u64,
        /// Once every webhook is answered, stop after this many seconds without any frame or answer.
        #[arg(long, default_value_t = 30)]
        idle_timeout: u64,
        /// PID of the server, for its peak memory and CPU time (Linux /proc).
        #[arg(long)]
        server_pid: Option<u32>,
        /// Tokio worker threads of the load generator itself.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// A label copied into the JSON result (e.g. `postgres`).
        #[arg(long, default_value = "")]
        label: String,
        /// Also write the JSON result to this file.
        #[arg(long)]
        json_out: Option<PathBuf>,
    }

    /// The capacity an agent has when nobody sets one (domain `DEFAULT_CAPACITY`).
    const DEFAULT_CAPACITY: u32 = 5;

    type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

    /// An agent created for the run.
    struct Agent {
        id: String,
        token: Arc<str>,
    }

    /// An `offer` frame as it arrived.
    struct OfferSeen {
        interaction_id: String,
        at_us: u64,
    }

    /// One webhook's fate.
    struct WebhookDone {
        index: u64,
        sent_us: u64,
        done_us: u64,
        status: u16,
    }

    /// What the agents' tasks share.
    struct Shared {
        t0: Instant,
        base: String,
        http: reqwest::Client,
        /// Every `offer` frame, as it arrived.
        offers: Mutex<Vec<OfferSeen>>,
        /// Cleared when the run stops: pauses are no longer answered.
        running: AtomicBool,
        offer_frames: AtomicU64,
        accepted: AtomicU64,
        closed: AtomicU64,
        readied_again: AtomicU64,
        webhooks_ok: AtomicU64,
        /// Accepts and closes not yet answered.
        in_flight: AtomicI64,
        last_activity_us: AtomicU64,
        /// Everything else that happened, by kind ("accept 409 no_such_offer", "offer_closed
        /// timed_out", "websocket closed", …).
        outcomes: Mutex<BTreeMap<String, u64>>,
    }

    impl Shared {
        fn now_us(&self) -> u64 {
            self.t0.elapsed().as_micros() as u64
        }

        fn touch(&self) {
            self.last_activity_us.fetch_max(self.now_us(), Ordering::Relaxed);
        }

        fn note(&self, what: String) {
            let mut map = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            *map.entry(what).or_default() += 1;
        }
    }

    pub fn main(args: RouteArgs) -> anyhow::Result<()> {
        if args.interactions == 0 || args.agents == 0 || args.concurrency == 0 || args.rate < 0.0 {
            bail!("--interactions, --agents and --concurrency must be positive, --rate not negative");
        }
        if args.interactions > 10_000_000 {
            bail!("--interactions: at most 10,000,000 distinct customer numbers");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads.max(1))
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(run(args))
    }

    /// The error code of a refused request: `"409 no_such_offer"`, `"timeout"`, …
    async fn refusal(result: reqwest::Result<reqwest::Response>) -> Result<(), String> {
        match result {
            Err(e) if e.is_timeout() => Err("timeout".to_owned()),
            Err(_) => Err("transport".to_owned()),
            Ok(response) => {
                let status = response.status();
                let body = response.bytes().await.unwrap_or_default();
                if status.is_success() {
                    return Ok(());
                }
                let code = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                Err(format!("{} {code}", status.as_u16()).trim_end().to_owned())
            }
        }
    }

    /// Accepts an offered interaction, then closes it so the agent's capacity frees up.
    async fn answer(shared: Arc<Shared>, token: Arc<str>, interaction_id: String) {
        let base = &shared.base;
        let accept = shared
            .http
            .post(format!("{base}/api/interactions/{interaction_id}/accept"))
            .bearer_auth(&*token)
            .send()
            .await;
        match refusal(accept).await {
            Ok(()) => {
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                let close = shared
                    .http
                    .post(format!("{base}/api/interactions/{interaction_id}/close"))
                    .bearer_auth(&*token)
                    .send()
                    .await;
                match refusal(close).await {
                    Ok(()) => {
                        shared.closed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(code) => shared.note(format!("close {code}")),
                }
            }
            Err(code) => shared.note(format!("accept {code}")),
        }
        shared.touch();
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    async fn ready_again(shared: Arc<Shared>, token: Arc<str>) {
        let r = shared.http.post(format!("{}/api/me/ready", shared.base)).bearer_auth(&*token).send().await;
        match refusal(r).await {
            Ok(()) => {
                shared.readied_again.fetch_add(1, Ordering::Relaxed);
            }
            Err(code) => shared.note(format!("ready {code}")),
        }
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// One agent's websocket: timestamps frames, answers offers, re-readies after a pause.
    async fn agent_loop(token: Arc<str>, mut ws: Ws, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
        loop {
            let message = tokio::select! {
                m = ws.next() => m,
                _ = stop.changed() => break,
            };
            let at_us = shared.now_us();
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None => {
                    shared.note("websocket closed by the server".to_owned());
                    return;
                }
                Some(Err(e)) => {
                    shared.note(format!("websocket error: {e}"));
                    return;
                }
                Some(Ok(_)) => continue,
            };
            shared.touch();
            let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                shared.note("frame not JSON".to_owned());
                continue;
            };
            match frame["type"].as_str() {
                Some("offer") => {
                    shared.offer_frames.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = frame["interaction_id"].as_str() else {
                        shared.note("offer without interaction_id".to_owned());
                        continue;
                    };
                    shared
                        .offers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(OfferSeen { interaction_id: id.to_owned(), at_us });
                    shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(answer(shared.clone(), token.clone(), id.to_owned()));
                }
                Some("offer_closed") => {
                    let reason = frame["reason"].as_str().unwrap_or("?");
                    // Every accepted offer is closed with `accepted`; only the others are news.
                    if reason != "accepted" {
                        shared.note(format!("offer_closed {reason}"));
                    }
                }
                // Logging in lands paused without a reason; a pause with one (missed offer,
                // wrap-up) would take the agent out of the run.
                Some("presence")
                    if frame["presence"] == "paused"
                        && frame["reason"].is_string()
                        && shared.running.load(Ordering::Relaxed) =>
                {
                    let reason = frame["reason"].as_str().unwrap_or("-");
                    shared.note(format!("paused ({reason})"));
                    shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(ready_again(shared.clone(), token.clone()));
                }
                _ => {}
            }
        }
        let _ = ws.close(None).await;
    }

    /// `PUT` that an older server may not have yet: a bare 404 (no such route) is tolerated
    /// when the value asked for is the default anyway.
    async fn put_setting(
        http: &reqwest::Client,
        url: String,
        token: &str,
        body: Value,
        is_default: bool,
        warned: &AtomicBool,
    ) -> anyhow::Result<()> {
        let response = http.put(&url).bearer_auth(token).json(&body).send().await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::NOT_FOUND && text.is_empty() && is_default {
            if !warned.swap(true, Ordering::Relaxed) {
                eprintln!("loadgen: the server has no PUT {url} (404); keeping its default");
            }
            return Ok(());
        }
        bail!("PUT {url}: HTTP {status}: {text}")
    }

    async fn create_agent(
        http: &reqwest::Client,
        args: &RouteArgs,
        base: &str,
        account_id: &str,
        queue_id: &str,
        n: usize,
        warned: &AtomicBool,
    ) -> anyhow::Result<Agent> {
        let token = args.token.as_str();
        let created = expect_json(
            http.post(format!("{base}/api/agents"))
                .bearer_auth(token)
                .json(&json!({"name": format!("Route agent {n:03}")}))
                .send()
                .await?,
            "POST /api/agents",
        )
        .await?;
        let id = created["agent_id"].as_str().context("agent_id in the answer")?.to_owned();
        let agent_token = created["token"].as_str().context("token in the answer")?;
        expect_json(
            http.post(format!("{base}/api/accounts/{account_id}/agents"))
                .bearer_auth(token)
                .json(&json!({"agent_id": id}))
                .send()
                .await?,
            "POST /api/accounts/{id}/agents",
        )
        .await?;
        expect_json(
            http.post(format!("{base}/api/queues/{queue_id}/agents"))
                .bearer_auth(token)
                .json(&json!({"agent_id": id}))
                .send()
                .await?,
            "POST /api/queues/{id}/agents",
        )
        .await?;
        put_setting(
            http,
            format!("{base}/api/agents/{id}/capacity"),
            token,
            json!({"capacity": args.capacity}),
            args.capacity == DEFAULT_CAPACITY,
            warned,
        )
        .await?;
        Ok(Agent { id, token: Arc::from(agent_token) })
    }

    /// Opens the agent's websocket, then logs in and becomes ready (in that order, so the
    /// agent is reachable on the socket before it can be offered anything).
    async fn connect_agent(http: &reqwest::Client, base: &str, agent: &Agent) -> anyhow::Result<Ws> {
        let ws_url = format!("{}/ws", base.replacen("http", "ws", 1));
        let mut request = ws_url.as_str().into_client_request().context("websocket request")?;
        request.headers_mut().insert("Authorization", format!("Bearer {}", agent.token).parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| format!("websocket {ws_url} for agent {}", agent.id))?;
        for step in ["login", "ready"] {
            expect_json(
                http.post(format!("{base}/api/me/{step}")).bearer_auth(&*agent.token).send().await?,
                &format!("POST /api/me/{step}"),
            )
            .await?;
        }
        Ok(ws)
    }

    /// Waits until the agent board shows every agent ready.
    async fn wait_all_ready(
        http: &reqwest::Client,
        base: &str,
        token: &str,
        agents: &[Agent],
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let board = expect_json(
                http.get(format!("{base}/api/agents/status")).bearer_auth(token).send().await?,
                "GET /api/agents/status",
            )
            .await?;
            let ready: std::collections::HashSet<&str> = board
                .as_array()
                .map(|rows| {
                    rows.iter()
                        .filter(|r| r["presence"] == "ready")
                        .filter_map(|r| r["agent_id"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let missing = agents.iter().filter(|a| !ready.contains(a.id.as_str())).count();
            if missing == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{missing} of {} agents still not ready on /api/agents/status after 60 s",
                    agents.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The customer index of an interaction, read back from `GET /api/interactions/{id}`
    /// (retried for up to 10 s while the read model catches up).
    async fn customer_of(
        http: &reqwest::Client,
        base: &str,
        token: &str,
        interaction_id: &str,
    ) -> Option<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer =
                http.get(format!("{base}/api/interactions/{interaction_id}")).bearer_auth(token).send().await;
            if let Ok(response) = answer
                && response.status().is_success()
                && let Ok(row) = response.json::<Value>().await
            {
                // "+1555" followed by the 7-digit index (see `webhook_body`).
                return row["customer"].as_str()?.strip_prefix("+1555")?.parse().ok();
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn ms(us: u64) -> f64 {
        us as f64 / 1000.0
    }

    async fn run(args: RouteArgs) -> anyhow::Result<()> {
        let t0 = Instant::now();
        let http = client(args.timeout, args.concurrency + 2 * args.agents)?;
        let base = args.url.trim_end_matches('/').to_owned();
        wait_healthy(&http, &base).await?;

        // ---- setup
        let queue = json!({"name": "Routing benchmark", "offer_timeout_secs": args.offer_timeout,
                           "strategy": args.strategy, "weight": 5});
        let (account_id, queue_id) =
            create_account(&http, &base, &args.token, &args.app_secret, queue).await?;
        eprintln!(
            "loadgen route: account {account_id}, queue {queue_id} ({}, offer timeout {} s); creating {} agents \
             (capacity {})",
            args.strategy, args.offer_timeout, args.agents, args.capacity
        );
        let warned = AtomicBool::new(false);
        let agents: Vec<Agent> = stream::iter(0..args.agents)
            .map(|n| create_agent(&http, &args, &base, &account_id, &queue_id, n, &warned))
            .buffer_unordered(args.setup_concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        let sockets: Vec<Ws> = stream::iter(agents.iter())
            .map(|agent| connect_agent(&http, &base, agent))
            .buffered(args.setup_concurrency.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        wait_all_ready(&http, &base, &args.token, &agents).await?;

        let shared = Arc::new(Shared {
            t0,
            base: base.clone(),
            http: http.clone(),
            offers: Mutex::new(Vec::with_capacity(args.interactions as usize)),
            running: AtomicBool::new(true),
            offer_frames: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            readied_again: AtomicU64::new(0),
            webhooks_ok: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            last_activity_us: AtomicU64::new(0),
            outcomes: Mutex::new(BTreeMap::new()),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let agent_tasks: Vec<_> = agents
            .iter()
            .zip(sockets)
            .map(|(agent, ws)| {
                tokio::spawn(agent_loop(agent.token.clone(), ws, shared.clone(), stop_rx.clone()))
            })
            .collect();
        eprintln!(
            "loadgen route: {} agents ready on their websockets; {} webhooks at {} (concurrency {})",
            agents.len(),
            args.interactions,
            if args.rate > 0.0 { format!("{}/s", args.rate) } else { "full speed".to_owned() },
            args.concurrency
        );

        // Memory sampler.
        let peak_rss_kb = Arc::new(AtomicU64::new(0));
        let rss_start_kb = args.server_pid.and_then(|p| proc_status_kb(p, "VmRSS:"));
        let sampler = args.server_pid.map(|pid| {
            let peak = peak_rss_kb.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(rss) = proc_status_kb(pid, "VmRSS:") {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.changed() => break,
                    }
                }
            })
        });

        // ---- load
        let endpoint = format!("{base}/webhooks/whatsapp/{account_id}");
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let secret = Arc::new(args.app_secret.clone().into_bytes());
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<WebhookDone>();
        let webhook_collector = tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(d) = done_rx.recv().await {
                done.push(d);
            }
            done
        });
        let semaphore = Arc::new(Semaphore::new(args.concurrency));
        let window_start: CpuMark = cpu_mark(args.server_pid);
        let start = Instant::now();
        let first_sent_us = shared.now_us();
        let deadline = start + Duration::from_secs(args.deadline);
        let interval_ns = if args.rate > 0.0 { 1e9 / args.rate } else { 0.0 };
        let mut sent = 0u64;
        let mut max_lag_us = 0u64;
        for i in 0..args.interactions {
            let due = start + Duration::from_nanos((i as f64 * interval_ns) as u64);
            if due > Instant::now() + Duration::from_millis(1) {
                tokio::time::sleep_until(due.into()).await;
            }
            let permit = semaphore.clone().acquire_owned().await.context("semaphore closed")?;
            if Instant::now() > deadline {
                drop(permit);
                break;
            }
            max_lag_us = max_lag_us.max(Instant::now().saturating_duration_since(due).as_micros() as u64);
            let body = webhook_body(&run_id, i, i, chrono::Utc::now().timestamp());
            let signature = switchboard::providers::meta::sign(&secret, body.as_bytes());
            let request = http
                .post(&endpoint)
                .header("Content-Type", "application/json")
                .header("X-Hub-Signature-256", signature)
                .body(body);
            let (tx, shared) = (done_tx.clone(), shared.clone());
            tokio::spawn(async move {
                let sent_us = shared.now_us();
                let status = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        status
                    }
                    Err(e) if e.is_timeout() => super::STATUS_TIMEOUT,
                    Err(_) => super::STATUS_TRANSPORT,
                };
                if status == 200 {
                    shared.webhooks_ok.fetch_add(1, Ordering::Relaxed);
                }
                shared.touch();
                let _ = tx.send(WebhookDone { index: i, sent_us, done_us: shared.now_us(), status });
                drop(permit);
            });
            sent += 1;
        }
        drop(done_tx);
        let _all = semaphore.acquire_many(args.concurrency as u32).await.context("semaphore closed")?;
        let all_answered_us = shared.now_us();
        eprintln!(
            "loadgen route: {sent} webhooks answered ({} ok) after {:.1} s; waiting for offers",
            shared.webhooks_ok.load(Ordering::Relaxed),
            ms(all_answered_us - first_sent_us) / 1000.0
        );

        // ---- wait for the agents to take everything (or give up)
        let stop_reason = loop {
            let ok = shared.webhooks_ok.load(Ordering::Relaxed);
            if shared.accepted.load(Ordering::Relaxed) >= ok && shared.in_flight.load(Ordering::Relaxed) == 0
            {
                break "complete";
            }
            if Instant::now() > deadline {
                break "deadline";
            }
            let idle_us = shared.now_us().saturating_sub(shared.last_activity_us.load(Ordering::Relaxed));
            if idle_us > args.idle_timeout * 1_000_000 {
                break "idle";
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let end_us = shared.now_us();
        let window_end = cpu_mark(args.server_pid);
        shared.running.store(false, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        for task in agent_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if let Some(s) = sampler {
            let _ = s.await;
        }
        let webhooks = webhook_collector.await.context("webhook collector")?;
        let offers = std::mem::take(&mut *shared.offers.lock().unwrap_or_else(|e| e.into_inner()));
        let outcomes = shared.outcomes.lock().unwrap_or_else(|e| e.into_inner()).clone();
        eprintln!("loadgen route: stopped ({stop_reason}); matching offers to webhooks");

        // ---- figures
        // First offer of each interaction.
        let mut first_offer: HashMap<String, u64> = HashMap::new();
        for o in &offers {
            let at = first_offer.entry(o.interaction_id.clone()).or_insert(o.at_us);
            *at = (*at).min(o.at_us);
        }
        let ids: Vec<String> = first_offer.keys().cloned().collect();
        let customers: Vec<(String, Option<u64>)> = stream::iter(ids)
            .map(|id| {
                let (http, base, token) = (&http, &base, &args.token);
                async move {
                    let customer = customer_of(http, base, token, &id).await;
                    (id, customer)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let mut offer_of_customer: HashMap<u64, u64> = HashMap::new();
        let mut unmatched = 0u64;
        for (id, customer) in customers {
            match customer {
                Some(c) if c < args.interactions => {
                    offer_of_customer.insert(c, first_offer[&id]);
                }
                _ => unmatched += 1,
            }
        }

        let mut webhook_errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut ack_lat = Vec::new();
        let mut offer_lat = Vec::new();
        let mut after_ack_lat = Vec::new();
        let mut offered_before_ack = 0u64;
        let mut never_offered = 0u64;
        for w in &webhooks {
            if w.status != 200 {
                let key = match w.status {
                    super::STATUS_TRANSPORT => "transport".to_owned(),
                    super::STATUS_TIMEOUT => "timeout".to_owned(),
                    n => n.to_string(),
                };
                *webhook_errors.entry(key).or_default() += 1;
                continue;
            }
            ack_lat.push(w.done_us - w.sent_us);
            match offer_of_customer.get(&w.index) {
                Some(&at) => {
                    offer_lat.push(at.saturating_sub(w.sent_us));
                    if at < w.done_us {
                        offered_before_ack += 1;
                    }
                    after_ack_lat.push(at.saturating_sub(w.done_us));
                }
                None => never_offered += 1,
            }
        }
        ack_lat.sort_unstable();
        offer_lat.sort_unstable();
        after_ack_lat.sort_unstable();
        let webhooks_ok = ack_lat.len() as u64;
        let offered = first_offer.len() as u64;
        let last_first_offer_us = first_offer.values().copied().max().unwrap_or(first_sent_us);
        let offer_span_s = (last_first_offer_us.saturating_sub(first_sent_us)) as f64 / 1e6;
        let offers_per_s = if offer_span_s > 0.0 { offered as f64 / offer_span_s } else { 0.0 };
        let mut per_second: Vec<u64> = vec![0; offer_span_s.ceil() as usize + 1];
        for &at in first_offer.values() {
            per_second[(at.saturating_sub(first_sent_us) / 1_000_000) as usize] += 1;
        }
        let accepted = shared.accepted.load(Ordering::Relaxed);
        let closed = shared.closed.load(Ordering::Relaxed);
        let webhook_error_count: u64 = webhook_errors.values().sum();
        // Accept refusals are part of routing (ring-all races, expired offers); everything
        // that failed outright (webhooks, closes, websockets, transport) counts as an error.
        let other_errors: u64 = outcomes
            .iter()
            .filter(|(k, _)| {
                k.starts_with("close")
                    || k.starts_with("websocket")
                    || k.starts_with("ready")
                    || k.starts_with("frame")
            })
            .map(|(_, n)| n)
            .sum();

        let elapsed = match (window_start.at, window_end.at) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let pct = |a: Option<u64>, b: Option<u64>| -> Option<f64> {
            match (a, b) {
                (Some(a), Some(b)) if elapsed > 0.0 => Some(100.0 * (b - a) as f64 / TICKS_PER_SEC / elapsed),
                _ => None,
            }
        };
        let machine_busy = match (window_start.machine, window_end.machine) {
            (Some((b0, _, t0)), Some((b1, _, t1))) if t1 > t0 => {
                Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64)
            }
            _ => None,
        };
        let hwm_kb = args.server_pid.and_then(|p| proc_status_kb(p, "VmHWM:"));
        let mb = |kb: u64| round2(kb as f64 / 1024.0);
        let lat = |v: &[u64], p: f64| opt_round(percentile(v, p));
        let max = |v: &[u64]| opt_round(v.last().map(|&x| ms(x)));

        let mut result = json!({
            "mode": "route",
            "label": args.label,
            "strategy": args.strategy,
            "agents": args.agents,
            "capacity": args.capacity,
            "offer_timeout_s": args.offer_timeout,
            "interactions": args.interactions,
            "target_rate": args.rate,
            "concurrency": args.concurrency,
            "stopped": stop_reason,
            "webhooks_sent": sent,
            "webhooks_ok": webhooks_ok,
            "webhook_errors": webhook_errors,
            "offered": offered,
            "offer_frames": shared.offer_frames.load(Ordering::Relaxed),
            "never_offered": never_offered,
            "unmatched_offers": unmatched,
            "accepted": accepted,
            "closed": closed,
            "readied_again": shared.readied_again.load(Ordering::Relaxed),
            "outcomes": outcomes,
            "errors": webhook_error_count + other_errors + never_offered,
        });
        // Two literals: one would exceed serde_json's macro recursion limit.
        let figures = json!({
            "offers_per_s": round2(offers_per_s),
            "offer_span_s": round2(offer_span_s),
            "webhooks_answered_after_s": round2((all_answered_us - first_sent_us) as f64 / 1e6),
            "run_s": round2((end_us - first_sent_us) as f64 / 1e6),
            "offer_p50_ms": lat(&offer_lat, 50.0),
            "offer_p95_ms": lat(&offer_lat, 95.0),
            "offer_p99_ms": lat(&offer_lat, 99.0),
            "offer_max_ms": max(&offer_lat),
            "after_ack_p50_ms": lat(&after_ack_lat, 50.0),
            "after_ack_p99_ms": lat(&after_ack_lat, 99.0),
            "after_ack_max_ms": max(&after_ack_lat),
            "offered_before_ack": offered_before_ack,
            "ack_p50_ms": lat(&ack_lat, 50.0),
            "ack_p99_ms": lat(&ack_lat, 99.0),
            "ack_max_ms": max(&ack_lat),
            "max_send_lag_ms": round2(ms(max_lag_us)),
            "server_rss_start_mb": rss_start_kb.map(mb),
            "server_peak_rss_mb": args.server_pid.map(|_| mb(peak_rss_kb.load(Ordering::Relaxed))),
            "server_vm_hwm_mb": hwm_kb.map(mb),
            "server_cpu_pct": opt_round(pct(window_start.server, window_end.server)),
            "loadgen_cpu_pct": opt_round(pct(window_start.own, window_end.own)),
            "machine_busy_pct": opt_round(machine_busy),
            "per_second_offered": per_second,
        });
        if let (Some(all), Value::Object(more)) = (result.as_object_mut(), figures) {
            all.extend(more);
        }

        let show = |v: &Value| if v.is_null() { "-".to_owned() } else { v.to_string() };
        println!("== loadgen route {} ==", args.label);
        println!(
            "{} interactions, {} agents (capacity {}), {}, webhooks at {} (concurrency {}); stopped: {stop_reason}",
            args.interactions,
            args.agents,
            args.capacity,
            args.strategy,
            if args.rate > 0.0 { format!("{}/s", args.rate) } else { "full speed".to_owned() },
            args.concurrency
        );
        println!(
            "webhooks: sent {sent}, ok {webhooks_ok}, errors {}; ack ms p50 {} p99 {} max {}",
            serde_json::to_string(&result["webhook_errors"]).unwrap_or_default(),
            show(&result["ack_p50_ms"]),
            show(&result["ack_p99_ms"]),
            show(&result["ack_max_ms"]),
        );
        println!(
            "offered {offered} interactions ({} offer frames) in {offer_span_s:.1} s = {offers_per_s:.1} offers/s; \
             never offered {never_offered}, unmatched {unmatched}; accepted {accepted}, closed {closed}",
            result["offer_frames"]
        );
        println!(
            "webhook sent -> offer ms: p50 {} p95 {} p99 {} max {}",
            show(&result["offer_p50_ms"]),
            show(&result["offer_p95_ms"]),
            show(&result["offer_p99_ms"]),
            show(&result["offer_max_ms"]),
        );
        println!(
            "webhook 200 -> offer ms: p50 {} p99 {} max {} ({offered_before_ack} offers arrived before their 200)",
            show(&result["after_ack_p50_ms"]),
            show(&result["after_ack_p99_ms"]),
            show(&result["after_ack_max_ms"]),
        );
        println!("other outcomes: {}", serde_json::to_string(&result["outcomes"]).unwrap_or_default());
        println!(
            "server: VmHWM {} MB, cpu {}%; loadgen cpu {}%; machine busy {}%",
            show(&result["server_vm_hwm_mb"]),
            show(&result["server_cpu_pct"]),
            show(&result["loadgen_cpu_pct"]),
            show(&result["machine_busy_pct"]),
        );
        let line = serde_json::to_string(&result)?;
        if let Some(path) = &args.json_out {
            std::fs::write(path, format!("{line}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        println!("{line}");
        Ok(())
    }
}
