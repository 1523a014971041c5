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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

/// Load generator for Switchboard's Meta webhook.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen")]
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
    let args = Args::parse();
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

fn client(args: &Args) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(args.concurrency)
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

/// Creates an account signed with `--app-secret`, a queue, and routes the account to it.
async fn create_account(http: &reqwest::Client, args: &Args, token: &str) -> anyhow::Result<String> {
    let base = args.url.trim_end_matches('/');
    let account = expect_json(
        http.post(format!("{base}/api/accounts"))
            .bearer_auth(token)
            .json(&json!({"name": "Load test", "key": "LOAD", "provider": {
                "type": "meta", "business_account_id": "100000000000001", "app_id": "4242",
                "phone_number_id": "100000000000002", "access_token": "loadgen-access-token",
                "app_secret": args.app_secret, "verify_token": "loadgen-verify-token",
                // Nothing is sent to the provider during the run (no agent replies).
                "api_base_url": "http://127.0.0.1:9", "api_version": "v23.0"}}))
            .send()
            .await?,
        "POST /api/accounts",
    )
    .await?;
    let account_id = account["account_id"].as_str().context("account_id in the answer")?.to_owned();
    let queue = expect_json(
        http.post(format!("{base}/api/queues"))
            .bearer_auth(token)
            .json(&json!({"name": "Load test"}))
            .send()
            .await?,
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
    Ok(account_id)
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
    let http = client(&args)?;
    let base = args.url.trim_end_matches('/').to_owned();
    wait_healthy(&http, &base).await?;
    let account_id = match (&args.account_id, &args.token) {
        (Some(id), _) => id.clone(),
        (None, Some(token)) => create_account(&http, &args, token).await?,
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
