//! The projection of a month-boundary storm measured on moto (a few thousand contracts) to
//! 1,000,000 and 10,000,000 contracts: how long the boundary takes to drain and which bound sets
//! that, the p99 lag, the live schedules, the monthly Lambda GB-s and cost, and the quota raises.
//!
//! Quantities measured per moment scale linearly with the moments; per-minute quantities (ticks,
//! the tick's writes on its own item) do not. Every step is kept as a [`Term`] with its formula and
//! the numbers put into it, so the result can be redone by hand. The drain is the largest of
//! independent lower bounds, so it is itself optimistic where two bounds bind at once.
//!
//! The drain is computed twice: at default quotas, and with every adjustable quota whose default
//! keeps its bound over the size's target raised to what the target needs. The raises applied are
//! listed in `quota_raises`; hard limits (a partition's throughput, Lambda's scaling rate) are never
//! raised, and where they keep the drain over the target `hard_limits` says what would lift them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::facts::{group_thousands, Facts};

/// The deployment sizes [`project_all`] projects to.
pub const SIZES: [u64; 2] = [1_000_000, 10_000_000];

/// DynamoDB, CloudWatch and the free tiers count in binary gigabytes.
const GB: f64 = 1_073_741_824.0;
const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// What the storm benchmark measures on moto, for the boundary phase unless a field says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// N measured on moto (e.g. 2,000 or 20,000).
    pub contracts: u64,
    /// Moments due at the boundary instant.
    pub moments_at_boundary: u64,
    /// Distinct webhooks that reached the receiver for them.
    pub delivered: u64,
    /// Endpoints each moment is delivered to (1 in the workload).
    pub endpoints: u64,
    /// `"dynamodb.TransactWriteItems"` -> count, during the boundary phase only.
    pub calls: BTreeMap<String, u64>,
    /// DynamoDB write request units of the boundary phase, estimated from request sizes (base table
    /// and GSI writes, transactions doubled).
    pub write_units: f64,
    /// DynamoDB read request units of the boundary phase.
    pub read_units: f64,
    /// The single partition key (base or GSI) with the most writes during the boundary.
    pub hottest_partition: Hottest,
    /// Invocations of the deliver handler during the boundary (ticks, shard pages, SQS batches).
    pub deliver_invocations: u64,
    /// Ticks the boundary used (1 for an aligned boundary).
    pub distinct_fire_minutes: u64,
    /// Most EventBridge schedules alive at once in the run.
    pub schedules_alive_max: u64,
    /// All moments a contract has in an average month (about 4 from segments plus the yearly contract
    /// moments / 12).
    pub moments_per_contract_per_month: f64,
    /// DynamoDB bytes per contract at rest before the boundary (items incl. GSI copies).
    pub stored_bytes_per_contract: f64,
    /// Bytes a fired moment adds (message, delivery, attempt, index entries).
    pub stored_bytes_per_moment: f64,
    /// CloudWatch log bytes the functions write per moment.
    pub log_bytes_per_moment: f64,
    /// The registration horizon (P14D = 20,160): ticks exist only for minutes within it.
    pub horizon_minutes: u64,
    /// Writes the tick machinery makes on its own TICK# item per tick (its generation, each shard's
    /// cursor). They are in `write_units` but do not grow with the moments, so they are taken out
    /// before scaling and added back per tick; `hottest_partition` already leaves them out.
    #[serde(default)]
    pub fixed_writes_per_tick: u64,
    /// DynamoDB write units the ingest of the contracts took, per contract (the contract and
    /// commit writes and everything they planned; measured before the boundary).
    #[serde(default)]
    pub ingest_write_units_per_contract: f64,
    /// DynamoDB write and read units a month of the sweep's materialisation takes per contract:
    /// the moments ingest deferred beyond the horizon, planned again as they come within it
    /// (measured on a sample deployment of its own, `month.rs`).
    #[serde(default)]
    pub materialise_write_units_per_contract_month: f64,
    #[serde(default)]
    pub materialise_read_units_per_contract_month: f64,
}

/// The partition key that took the most writes during the boundary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hottest {
    pub key_class: String,
    pub writes: u64,
    pub reads: u64,
    pub share_of_reads: f64,
    pub share_of_writes: f64,
}

/// The measured storm projected to one deployment size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub contracts: u64,
    pub moments_at_boundary: u64,
    /// With the raises of `quota_raises` applied.
    pub drain_s: f64,
    pub p99_lag_s: f64,
    /// Which bound sets `drain_s`, in words, and whether p99 misses the target.
    pub bounded_by: String,
    /// At default quotas (WarmThroughput set to the default table quota), for comparison.
    #[serde(default)]
    pub drain_s_at_default_quotas: f64,
    #[serde(default)]
    pub p99_lag_s_at_default_quotas: f64,
    #[serde(default)]
    pub bounded_by_at_default_quotas: String,
    pub live_schedules_max: u64,
    pub lambda_gb_s_per_month: f64,
    pub cost_usd_per_month: f64,
    /// The raises `drain_s` is computed with, one line each: quota, default, value raised to, value
    /// needed, why, source URL.
    pub quota_raises: Vec<String>,
    /// Limits no raise lifts that keep a bound over the drain budget, one line each: limit, its
    /// value, what the target needs, why and what would lift it, source URL.
    #[serde(default)]
    pub hard_limits: Vec<String>,
    /// Every term of the arithmetic, in order.
    pub terms: Vec<Term>,
}

/// One step of the arithmetic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub name: String,
    pub formula: String,
    pub value: f64,
    pub unit: String,
}

impl Projection {
    /// The term of that name, if the projection computed one.
    pub fn term(&self, name: &str) -> Option<&Term> {
        self.terms.iter().find(|t| t.name == name)
    }
}

/// The measured storm projected to every size of [`SIZES`].
pub fn project_all(measured: &Measured, facts: &Facts) -> Vec<Projection> {
    SIZES
        .iter()
        .map(|&contracts| project(measured, contracts, facts))
        .collect()
}

#[derive(Default)]
struct Calc {
    terms: Vec<Term>,
}

impl Calc {
    fn t(&mut self, name: &str, formula: String, value: f64, unit: &str) -> f64 {
        self.terms.push(Term {
            name: name.to_string(),
            formula,
            value,
            unit: unit.to_string(),
        });
        value
    }
}

#[derive(Clone)]
struct Bound {
    term: String,
    label: String,
    t100: f64,
    t99: f64,
}

/// Calls of the boundary phase summed by what they cost in time and money.
#[derive(Default)]
struct CallClasses {
    dynamodb: u64,
    sqs: u64,
    sqs_sends: u64,
    scheduler: u64,
    secrets: u64,
    other: u64,
    has_receive: bool,
}

fn classify(calls: &BTreeMap<String, u64>) -> CallClasses {
    let mut c = CallClasses::default();
    for (op, &n) in calls {
        let (service, operation) = op.split_once('.').unwrap_or((op.as_str(), ""));
        match service.to_ascii_lowercase().as_str() {
            "dynamodb" => c.dynamodb += n,
            "sqs" => {
                c.sqs += n;
                if operation.starts_with("SendMessage") {
                    c.sqs_sends += n;
                }
                if operation == "ReceiveMessage" {
                    c.has_receive = true;
                }
            }
            "scheduler" => c.scheduler += n,
            "secretsmanager" => {
                c.secrets += n;
                c.other += n;
            }
            _ => c.other += n,
        }
    }
    c
}

/// Moments per timer batch if every shard packs its timers `timers` to a message and the event
/// source hands over `batch` messages at a time; all of a boundary's moments share one second.
fn design_fill(moments: f64, shards: f64, timers: f64, batch: f64) -> f64 {
    if moments <= 0.0 || shards <= 0.0 || timers <= 0.0 || batch <= 0.0 {
        return 0.0;
    }
    let nonempty = shards.min(moments.ceil());
    let messages = nonempty * (moments / nonempty / timers).ceil();
    moments / (messages / batch).ceil()
}

/// Seconds until `work` invocation-seconds are served by a concurrency that starts at `start`, grows
/// by `rate` per second and stops at `cap`.
fn ramp_time(work: f64, start: f64, rate: f64, cap: f64) -> f64 {
    if work <= 0.0 {
        return 0.0;
    }
    if cap <= 0.0 {
        return f64::INFINITY;
    }
    let start = start.clamp(0.0, cap);
    if rate <= 0.0 || start >= cap {
        return if start > 0.0 {
            work / start
        } else {
            f64::INFINITY
        };
    }
    let to_cap = (cap - start) / rate;
    let served_by_cap = (start + cap) / 2.0 * to_cap;
    if work <= served_by_cap {
        (-start + (start * start + 2.0 * rate * work).sqrt()) / rate
    } else {
        to_cap + (work - served_by_cap) / cap
    }
}

/// A number for a formula: grouped when large, three significant digits when small.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let a = x.abs();
    if a >= 999.5 {
        return group_thousands(x.round() as i64);
    }
    let s = if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        let decimals = ((-a.log10()).floor() as usize + 3).min(12);
        format!("{x:.decimals$}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn int(n: u64) -> String {
    group_thousands(n as i64)
}

/// The measured storm projected to `contracts` contracts.
pub fn project(measured: &Measured, contracts: u64, facts: &Facts) -> Projection {
    let f = facts;
    let mut c = Calc::default();
    // A measurement of nothing must still give finite numbers, not NaN.
    let n0 = measured.contracts.max(1) as f64;
    let m0 = measured.moments_at_boundary.max(1) as f64;
    let n = contracts as f64;

    let per_contract = c.t(
        "moments_per_contract",
        format!(
            "moments_at_boundary / contracts (measured) = {} / {}",
            int(measured.moments_at_boundary),
            int(measured.contracts)
        ),
        m0 / n0,
        "moments/contract",
    );
    let m = c.t(
        "M",
        format!(
            "moments_per_contract × contracts = {} × {}",
            num(per_contract),
            int(contracts)
        ),
        per_contract * n,
        "moments",
    );
    let ticks0 = measured.distinct_fire_minutes as f64;
    let fixed_w = measured.fixed_writes_per_tick as f64;
    let fixed_wru0 = c.t(
        "fixed_write_units_measured",
        format!(
            "fixed_writes_per_tick × distinct_fire_minutes = {} × {}: one WRU each (the TICK# item \
             is small; any more they cost stays in write_units and is scaled, the pessimistic side)",
            int(measured.fixed_writes_per_tick),
            num(ticks0)
        ),
        fixed_w * ticks0,
        "WRU",
    );
    let wru_pm = c.t(
        "wru_per_moment",
        format!(
            "max(0, write_units − fixed_write_units_measured) / moments (measured) = max(0, {} − {}) \
             / {}",
            num(measured.write_units),
            num(fixed_wru0),
            num(m0)
        ),
        (measured.write_units - fixed_wru0).max(0.0) / m0,
        "WRU/moment",
    );
    let pages = (m / f.due_shards.value / f.due_page.value).ceil();
    let pages0 = (m0 / f.due_shards.value / f.due_page.value).ceil();
    let cursor_writes = c.t(
        "cursor_writes",
        format!(
            "due_shards × pages, pages = ceil(M / due_shards / due_page) = ceil({} / {} / {}) = {}, \
             when over one page (a shard read in one page saves no cursor; measured: {} page{}, in \
             write_units already): one WRU each (a cursor item of its own, under 1 KB)",
            num(m),
            num(f.due_shards.value),
            num(f.due_page.value),
            num(pages),
            num(pages0),
            if pages0 == 1.0 { "" } else { "s" }
        ),
        if pages > 1.0 && pages0 <= 1.0 {
            f.due_shards.value * pages
        } else {
            0.0
        },
        "WRU",
    );
    let wru = c.t(
        "WRU",
        format!(
            "wru_per_moment × M + fixed_write_units_measured + cursor_writes = {} × {} + {} + {}: \
             the boundary's ticks do not grow with contracts",
            num(wru_pm),
            num(m),
            num(fixed_wru0),
            num(cursor_writes)
        ),
        wru_pm * m + fixed_wru0 + cursor_writes,
        "WRU",
    );
    let rru_pm = c.t(
        "rru_per_moment",
        format!(
            "read_units / moments (measured) = {} / {}",
            num(measured.read_units),
            num(m0)
        ),
        measured.read_units / m0,
        "RRU/moment",
    );
    let rru = c.t(
        "RRU",
        format!("rru_per_moment × M = {} × {}", num(rru_pm), num(m)),
        rru_pm * m,
        "RRU",
    );
    let hot = &measured.hottest_partition;
    let hot_w_pm = c.t(
        "hot_writes_per_moment",
        format!(
            "writes to the hottest key ({}) / moments = {} / {}",
            hot.key_class,
            int(hot.writes),
            num(m0)
        ),
        hot.writes as f64 / m0,
        "writes/moment",
    );
    let hot_r_pm = c.t(
        "hot_reads_per_moment",
        format!(
            "reads of the hottest key / moments = {} / {}",
            int(hot.reads),
            num(m0)
        ),
        hot.reads as f64 / m0,
        "reads/moment",
    );

    // One moment's time inside an invocation: its DynamoDB calls in sequence, then the send.
    let calls = classify(&measured.calls);
    let ddb_pm = c.t(
        "dynamodb_calls_per_moment",
        format!(
            "Σ dynamodb.* calls / moments = {} / {}",
            int(calls.dynamodb),
            num(m0)
        ),
        calls.dynamodb as f64 / m0,
        "calls/moment",
    );
    let aws_pm = c.t(
        "other_aws_calls_per_moment",
        format!(
            "Σ sqs.* and other non-Scheduler calls / moments = ({} + {}) / {}",
            int(calls.sqs),
            int(calls.other),
            num(m0)
        ),
        (calls.sqs + calls.other) as f64 / m0,
        "calls/moment",
    );
    let sends_pm = c.t(
        "sends_per_moment",
        format!(
            "delivered / moments = {} / {} (endpoints per moment: {})",
            int(measured.delivered),
            num(m0),
            int(measured.endpoints)
        ),
        measured.delivered as f64 / m0,
        "webhooks/moment",
    );
    let pipeline = c.t(
        "moment_pipeline_s",
        format!(
            "dynamodb_calls_per_moment × dynamodb_call_s + other_aws_calls_per_moment × sqs_call_s + \
             sends_per_moment × webhook_s = {} × {} + {} × {} + {} × {}",
            num(ddb_pm),
            num(f.dynamodb_call_s.value),
            num(aws_pm),
            num(f.sqs_call_s.value),
            num(sends_pm),
            num(f.webhook_s.value)
        ),
        ddb_pm * f.dynamodb_call_s.value
            + aws_pm * f.sqs_call_s.value
            + sends_pm * f.webhook_s.value,
        "s",
    );

    // Timer batches: separate the fixed per-tick invocations, then carry the measured fill of the
    // batches over to the projected size, where the messages are fuller.
    let fixed_per_tick = c.t(
        "fixed_invocations_per_tick",
        format!(
            "1 tick + shard_invocations_per_tick = 1 + {}",
            num(f.shard_invocations_per_tick.value)
        ),
        1.0 + f.shard_invocations_per_tick.value,
        "invocations/tick",
    );
    let batches0 = c.t(
        "timer_batches_measured",
        format!(
            "max(0, deliver_invocations − distinct_fire_minutes × fixed_invocations_per_tick) = \
             max(0, {} − {} × {})",
            int(measured.deliver_invocations),
            num(ticks0),
            num(fixed_per_tick)
        ),
        (measured.deliver_invocations as f64 - ticks0 * fixed_per_tick).max(0.0),
        "invocations",
    );
    let shards = f.due_shards.value;
    let timers = f.timers_per_message.value;
    let batch = f.messages_per_batch.value;
    let fill0 = c.t(
        "design_fill_measured",
        format!(
            "moments / ceil(messages / messages_per_batch), messages = min(due_shards, moments) × \
             ceil(moments per shard / timers_per_message), at the measured {} moments, {} shards, \
             {} timers, {} messages",
            num(m0),
            num(shards),
            num(timers),
            num(batch)
        ),
        design_fill(m0, shards, timers, batch),
        "moments/invocation",
    );
    let k0 = if batches0 > 0.0 {
        c.t(
            "moments_per_batch_measured",
            format!(
                "moments / timer_batches_measured = {} / {}",
                num(m0),
                num(batches0)
            ),
            m0 / batches0,
            "moments/invocation",
        )
    } else {
        c.t(
            "moments_per_batch_measured",
            "no timer batches left after the fixed per-tick invocations: taken as design_fill_measured"
                .to_string(),
            fill0,
            "moments/invocation",
        )
    };
    let efficiency = c.t(
        "fill_efficiency",
        format!(
            "min(1, moments_per_batch_measured / design_fill_measured) = min(1, {} / {})",
            num(k0),
            num(fill0)
        ),
        if fill0 > 0.0 {
            (k0 / fill0).min(1.0)
        } else {
            1.0
        },
        "ratio",
    );
    let fill = c.t(
        "design_fill",
        format!(
            "design_fill at M = {} moments ({} per shard)",
            num(m),
            num(m / shards.max(1.0))
        ),
        design_fill(m, shards, timers, batch),
        "moments/invocation",
    );
    let k = c.t(
        "moments_per_batch_invocation",
        format!(
            "max(1, design_fill × fill_efficiency) = max(1, {} × {})",
            num(fill),
            num(efficiency)
        ),
        (fill * efficiency).max(1.0),
        "moments/invocation",
    );
    let batches = c.t(
        "timer_batch_invocations",
        format!("M / moments_per_batch_invocation = {} / {}", num(m), num(k)),
        m / k,
        "invocations",
    );
    let in_flight = f.sends_in_flight.value.max(1.0);
    let work = c.t(
        "batch_work_s",
        format!(
            "max(1, moments_per_batch_invocation / sends_in_flight) × moment_pipeline_s = \
             max(1, {} / {}) × {}",
            num(k),
            num(in_flight),
            num(pipeline)
        ),
        (k / in_flight).max(1.0) * pipeline,
        "s",
    );
    let hold = f.hold_s.value;
    let billed = c.t(
        "batch_invocation_s",
        format!("hold_s + batch_work_s = {} + {}", num(hold), num(work)),
        hold + work,
        "s",
    );
    let w = c.t(
        "boundary_invocation_s",
        format!(
            "timer_batch_invocations × batch_work_s = {} × {}",
            num(batches),
            num(work)
        ),
        batches * work,
        "invocation-s",
    );

    // Bounds no quota moves: a batch's own duration, the hottest partition and the tick's lead.
    let b = c.t(
        "bound_0_invocation",
        "batch_work_s: the last moment of a batch waits for the moments before it".to_string(),
        work,
        "s",
    );
    let bound_0 = Bound {
        term: "bound_0_invocation".to_string(),
        label: format!(
            "one timer batch's own duration ({} moments, {} in flight)",
            num(k),
            num(in_flight)
        ),
        t100: b,
        t99: b,
    };
    let pw = f.ddb_partition_writes.value;
    let pr = f.ddb_partition_reads.value;
    let hot_w = c.t(
        "hot_partition_writes_s",
        format!(
            "hot_writes_per_moment × M / ddb_partition_writes = {} × {} / {}",
            num(hot_w_pm),
            num(m),
            num(pw)
        ),
        hot_w_pm * m / pw,
        "s",
    );
    let hot_r = c.t(
        "hot_partition_reads_s",
        format!(
            "hot_reads_per_moment × M / ddb_partition_reads = {} × {} / {}",
            num(hot_r_pm),
            num(m),
            num(pr)
        ),
        hot_r_pm * m / pr,
        "s",
    );
    let tick_item = c.t(
        "tick_item_writes_s",
        format!(
            "fixed_writes_per_tick / ddb_partition_writes = {} / {}: a tick's own TICK# item (its \
             generation) is one key, and its writes do not grow with contracts (each shard's cursor \
             is a key of its own)",
            int(measured.fixed_writes_per_tick),
            num(pw)
        ),
        fixed_w / pw,
        "s",
    );
    let b = c.t(
        "bound_3_hot_partition",
        format!(
            "max(hot_partition_writes_s, hot_partition_reads_s, tick_item_writes_s) = max({}, {}, {})",
            num(hot_w),
            num(hot_r),
            num(tick_item)
        ),
        hot_w.max(hot_r).max(tick_item),
        "s",
    );
    let bound_3 = Bound {
        term: "bound_3_hot_partition".to_string(),
        label: if tick_item > hot_w.max(hot_r) {
            format!(
                "the tick's own item (TICK#: {} writes at {} WCU/s, a hard limit no raise lifts)",
                int(measured.fixed_writes_per_tick),
                num(pw)
            )
        } else if hot_w >= hot_r {
            format!(
                "hottest partition ({}: {} writes at {} WCU/s, a hard limit no raise lifts)",
                hot.key_class,
                num(hot_w_pm * m),
                num(pw)
            )
        } else {
            format!(
                "hottest partition ({}: {} reads at {} RCU/s, a hard limit no raise lifts)",
                hot.key_class,
                num(hot_r_pm * m),
                num(pr)
            )
        },
        t100: b,
        t99: 0.99 * b,
    };
    // Designed, not measured: at the measured size the tick's own per-shard messages dominate the
    // sends, and they do not grow with contracts.
    let send_calls = (m / shards.max(1.0) / (timers * batch).max(1.0)).ceil();
    let sends_per_shard = c.t(
        "shard_send_s",
        format!(
            "ceil(M / due_shards / (timers_per_message × messages_per_batch)) × sqs_call_s = \
             ceil({} / {} / ({} × {})) × {}: each shard sends its timers 100 to a message, 10 to a \
             SendMessageBatch, one call after another (measured: {} sqs.SendMessage* calls for {} \
             moments)",
            num(m),
            num(shards),
            num(timers),
            num(batch),
            num(f.sqs_call_s.value),
            int(calls.sqs_sends),
            num(m0)
        ),
        send_calls * f.sqs_call_s.value,
        "s",
    );
    let lead = f.tick_lead_s.value;
    let b = c.t(
        "bound_8_tick_lead",
        format!(
            "max(0, shard_send_s − tick_lead_s) = max(0, {} − {}): a shard still queueing timers \
             after its minute makes them late",
            num(sends_per_shard),
            num(lead)
        ),
        (sends_per_shard - lead).max(0.0),
        "s",
    );
    let bound_8 = Bound {
        term: "bound_8_tick_lead".to_string(),
        label: format!(
            "tick lead (each shard's SQS sends take {} s of the {} s before the minute)",
            num(sends_per_shard),
            num(lead)
        ),
        t100: b,
        t99: b,
    };
    let fixed = [&bound_0, &bound_3, &bound_8];
    let demand = Demand {
        wru,
        rru,
        w,
        ticks: ticks0,
    };

    // First at default quotas, to show what the raises buy.
    let defaults = Quotas::defaults(f);
    let at_default = all_bounds(&mut c, f, &demand, &defaults, AT_DEFAULT, fixed);
    let (binding0, drain0, p99_0) = drain_of(&mut c, &at_default, hold, AT_DEFAULT);

    // Then every adjustable quota whose default keeps its bound over the budget raised to what the
    // budget needs; hard limits stay.
    let target_fact = f.target_lag(contracts);
    let target = c.t(
        "target_lag_s",
        format!(
            "{} = {} s: every webhook of the boundary attempted within it of its moment ({} up to \
             1,000,000 contracts, {} above)",
            target_fact.name,
            num(target_fact.value),
            num(f.target_lag_1m.value),
            num(f.target_lag_10m.value)
        ),
        target_fact.value,
        "s",
    );
    let budget = c.t(
        "drain_budget_s",
        format!(
            "max(1, target_lag_s − hold_s) = max(1, {} − {}): a moment drained by the budget still \
             fires up to the hold after its second, so even the last is attempted within the target \
             (and p99 ≤ 0.99 × budget + hold)",
            num(target),
            num(hold)
        ),
        (target - hold).max(1.0),
        "s",
    );
    let (raised, mut quota_raises) = raise(&mut c, f, &demand, budget, target);
    let with_raises = all_bounds(&mut c, f, &demand, &raised, "", fixed);
    let (binding, drain, p99) = drain_of(&mut c, &with_raises, hold, "");
    let hard_limits = hard_limits(&Limits {
        f,
        bounds: &with_raises,
        budget,
        hot,
        hot_writes_s: hot_w,
        hot_reads_s: hot_r,
        tick_item_s: tick_item,
        fixed_writes_per_tick: measured.fixed_writes_per_tick,
        shard_send_s: sends_per_shard,
        w,
        moments_per_batch: k,
        q: &raised,
    });

    // Ticks are per minute, not per moment, so the horizon bounds them, not the contracts.
    let live = measured.horizon_minutes.max(measured.schedules_alive_max);
    c.t(
        "live_schedules_max",
        format!(
            "max(horizon_minutes, schedules_alive_max measured) = max({}, {}): at most one tick per \
             minute within the horizon, whatever the number of contracts",
            int(measured.horizon_minutes),
            int(measured.schedules_alive_max)
        ),
        live as f64,
        "schedules",
    );
    c.t(
        "schedules_quota_share",
        format!(
            "live_schedules_max / scheduler_schedules_quota = {} / {}",
            int(live),
            num(f.scheduler_schedules_quota.value)
        ),
        live as f64 / f.scheduler_schedules_quota.value,
        "ratio",
    );

    // A month is priced with the boundary's per-moment units: most moments fall on aligned instants
    // like the boundary, so their batches fill the same way.
    let mm = c.t(
        "moments_per_month",
        format!(
            "moments_per_contract_per_month × contracts = {} × {}",
            num(measured.moments_per_contract_per_month),
            int(contracts)
        ),
        measured.moments_per_contract_per_month * n,
        "moments",
    );
    let ticks_month = c.t(
        "ticks_per_month",
        format!(
            "minutes_per_month = {} (worst case: a tick every minute)",
            num(f.minutes_per_month.value)
        ),
        f.minutes_per_month.value,
        "ticks",
    );
    let ingest_month = c.t(
        "ingest_wru_per_month",
        format!(
            "ingest_write_units_per_contract (measured) × contracts / contract_term_months = {} × {} / {}",
            num(measured.ingest_write_units_per_contract),
            int(contracts),
            num(f.contract_term_months.value)
        ),
        measured.ingest_write_units_per_contract * n / f.contract_term_months.value,
        "WRU",
    );
    let materialise_wru_month = c.t(
        "materialise_wru_per_month",
        format!(
            "materialise_write_units_per_contract_month (measured) × contracts = {} × {}",
            num(measured.materialise_write_units_per_contract_month),
            int(contracts)
        ),
        measured.materialise_write_units_per_contract_month * n,
        "WRU",
    );
    let wru_month = c.t(
        "wru_per_month",
        format!(
            "wru_per_moment × moments_per_month + fixed_writes_per_tick × ticks_per_month + \
             cursor_writes + ingest_wru_per_month + materialise_wru_per_month = {} × {} + {} × {} \
             + {} + {} + {}: one boundary a month; other minutes' shards fit in one page",
            num(wru_pm),
            num(mm),
            int(measured.fixed_writes_per_tick),
            num(ticks_month),
            num(cursor_writes),
            num(ingest_month),
            num(materialise_wru_month)
        ),
        wru_pm * mm + fixed_w * ticks_month + cursor_writes + ingest_month + materialise_wru_month,
        "WRU",
    );
    let mut costs: Vec<(String, f64)> = Vec::new();
    let mut cost = |c: &mut Calc, name: &str, formula: String, value: f64| {
        c.t(name, formula, value, "USD/month");
        costs.push((name.to_string(), value));
    };
    cost(
        &mut c,
        "cost_dynamodb_writes",
        format!(
            "wru_per_month / 10⁶ × ddb_write_price = {} / 10⁶ × {}",
            num(wru_month),
            num(f.ddb_write_price.value)
        ),
        wru_month / 1e6 * f.ddb_write_price.value,
    );
    let rru_month = c.t(
        "rru_per_month",
        format!(
            "rru_per_moment × moments_per_month + materialise_read_units_per_contract_month × \
             contracts = {} × {} + {} × {}",
            num(rru_pm),
            num(mm),
            num(measured.materialise_read_units_per_contract_month),
            int(contracts)
        ),
        rru_pm * mm + measured.materialise_read_units_per_contract_month * n,
        "RRU",
    );
    cost(
        &mut c,
        "cost_dynamodb_reads",
        format!(
            "rru_per_month / 10⁶ × ddb_read_price = {} / 10⁶ × {}",
            num(rru_month),
            num(f.ddb_read_price.value)
        ),
        rru_month / 1e6 * f.ddb_read_price.value,
    );
    let retained = c.t(
        "retained_moments",
        format!(
            "moments_per_month × delivery_retention_days / {} days = {} × {} / {}",
            num(DAYS_PER_MONTH),
            num(mm),
            num(f.delivery_retention_days.value),
            num(DAYS_PER_MONTH)
        ),
        mm * f.delivery_retention_days.value / DAYS_PER_MONTH,
        "moments",
    );
    let stored_gb = c.t(
        "stored_gb",
        format!(
            "(stored_bytes_per_contract × contracts + stored_bytes_per_moment × retained_moments) / \
             2³⁰ = ({} × {} + {} × {}) / 2³⁰",
            num(measured.stored_bytes_per_contract),
            int(contracts),
            num(measured.stored_bytes_per_moment),
            num(retained)
        ),
        (measured.stored_bytes_per_contract * n + measured.stored_bytes_per_moment * retained) / GB,
        "GB",
    );
    cost(
        &mut c,
        "cost_dynamodb_storage",
        format!(
            "max(0, stored_gb − ddb_storage_free_gb) × ddb_storage_price = max(0, {} − {}) × {}",
            num(stored_gb),
            num(f.ddb_storage_free_gb.value),
            num(f.ddb_storage_price.value)
        ),
        (stored_gb - f.ddb_storage_free_gb.value).max(0.0) * f.ddb_storage_price.value,
    );
    cost(
        &mut c,
        "cost_dynamodb_pitr",
        format!(
            "stored_gb × ddb_pitr_price = {} × {}",
            num(stored_gb),
            num(f.ddb_pitr_price.value)
        ),
        stored_gb * f.ddb_pitr_price.value,
    );
    let invocations = c.t(
        "invocations_per_month",
        format!(
            "moments_per_month / moments_per_batch_invocation + ticks_per_month × \
             fixed_invocations_per_tick = {} / {} + {} × {}",
            num(mm),
            num(k),
            num(ticks_month),
            num(fixed_per_tick)
        ),
        mm / k + ticks_month * fixed_per_tick,
        "invocations",
    );
    cost(
        &mut c,
        "cost_lambda_requests",
        format!(
            "max(0, invocations_per_month − lambda_free_requests) / 10⁶ × lambda_request_price = \
             max(0, {} − {}) / 10⁶ × {}",
            num(invocations),
            num(f.lambda_free_requests.value),
            num(f.lambda_request_price.value)
        ),
        (invocations - f.lambda_free_requests.value).max(0.0) / 1e6 * f.lambda_request_price.value,
    );
    let fixed_s = c.t(
        "fixed_invocation_s",
        format!(
            "dynamodb_call_s + sqs_call_s = {} + {} (a tick or shard invocation's calls are already \
             in the per-moment pipeline)",
            num(f.dynamodb_call_s.value),
            num(f.sqs_call_s.value)
        ),
        f.dynamodb_call_s.value + f.sqs_call_s.value,
        "s",
    );
    let mem = f.lambda_memory_gb.value;
    let gb_s = c.t(
        "lambda_gb_s_per_month",
        format!(
            "(moments_per_month / moments_per_batch_invocation × batch_invocation_s + ticks_per_month \
             × fixed_invocations_per_tick × fixed_invocation_s) × lambda_memory_gb = ({} / {} × {} + \
             {} × {} × {}) × {}",
            num(mm),
            num(k),
            num(billed),
            num(ticks_month),
            num(fixed_per_tick),
            num(fixed_s),
            num(mem)
        ),
        (mm / k * billed + ticks_month * fixed_per_tick * fixed_s) * mem,
        "GB-s",
    );
    cost(
        &mut c,
        "cost_lambda_compute",
        format!(
            "max(0, lambda_gb_s_per_month − lambda_free_gb_s) × lambda_gb_s_price = max(0, {} − {}) \
             × {}",
            num(gb_s),
            num(f.lambda_free_gb_s.value),
            f.lambda_gb_s_price.value
        ),
        (gb_s - f.lambda_free_gb_s.value).max(0.0) * f.lambda_gb_s_price.value,
    );
    let esm_requests = if calls.has_receive {
        0.0
    } else {
        f.esm_requests_per_batch.value
    };
    let sqs_requests = c.t(
        "sqs_requests_per_month",
        format!(
            "Σ sqs.* calls per moment × moments_per_month + esm_requests_per_batch × moments_per_month \
             / moments_per_batch_invocation = {} / {} × {} + {} × {} / {} (one 64 KB chunk each; the \
             event source's requests counted only if moto saw no sqs.ReceiveMessage)",
            int(calls.sqs),
            num(m0),
            num(mm),
            num(esm_requests),
            num(mm),
            num(k)
        ),
        calls.sqs as f64 / m0 * mm + esm_requests * mm / k,
        "requests",
    );
    cost(
        &mut c,
        "cost_sqs",
        format!(
            "max(0, sqs_requests_per_month − sqs_free_requests) / 10⁶ × sqs_request_price = \
             max(0, {} − {}) / 10⁶ × {}",
            num(sqs_requests),
            num(f.sqs_free_requests.value),
            num(f.sqs_request_price.value)
        ),
        (sqs_requests - f.sqs_free_requests.value).max(0.0) / 1e6 * f.sqs_request_price.value,
    );
    cost(
        &mut c,
        "cost_scheduler",
        format!(
            "max(0, ticks_per_month − scheduler_free_invocations) / 10⁶ × scheduler_invocation_price \
             = max(0, {} − {}) / 10⁶ × {}",
            num(ticks_month),
            num(f.scheduler_free_invocations.value),
            num(f.scheduler_invocation_price.value)
        ),
        (ticks_month - f.scheduler_free_invocations.value).max(0.0) / 1e6
            * f.scheduler_invocation_price.value,
    );
    let logs_gb = c.t(
        "log_gb_per_month",
        format!(
            "log_bytes_per_moment × moments_per_month / 2³⁰ = {} × {} / 2³⁰",
            num(measured.log_bytes_per_moment),
            num(mm)
        ),
        measured.log_bytes_per_moment * mm / GB,
        "GB",
    );
    cost(
        &mut c,
        "cost_cloudwatch_logs",
        format!(
            "max(0, log_gb_per_month − logs_free_gb) × logs_ingest_price = max(0, {} − {}) × {}",
            num(logs_gb),
            num(f.logs_free_gb.value),
            num(f.logs_ingest_price.value)
        ),
        (logs_gb - f.logs_free_gb.value).max(0.0) * f.logs_ingest_price.value,
    );
    let secret_calls = c.t(
        "secret_calls_per_month",
        format!(
            "secretsmanager.* calls per moment × moments_per_month = {} / {} × {}",
            int(calls.secrets),
            num(m0),
            num(mm)
        ),
        calls.secrets as f64 / m0 * mm,
        "calls",
    );
    cost(
        &mut c,
        "cost_cloudwatch_alarms",
        format!(
            "max(0, alarms − alarms_free) × alarm_price = max(0, {} − {}) × {}",
            num(f.alarms.value),
            num(f.alarms_free.value),
            num(f.alarm_price.value)
        ),
        (f.alarms.value - f.alarms_free.value).max(0.0) * f.alarm_price.value,
    );
    cost(
        &mut c,
        "cost_secrets_manager",
        format!(
            "secrets × secret_price + secret_calls_per_month / 10⁴ × secret_api_price = {} × {} + {} \
             / 10⁴ × {}",
            num(f.secrets.value),
            num(f.secret_price.value),
            num(secret_calls),
            num(f.secret_api_price.value)
        ),
        f.secrets.value * f.secret_price.value + secret_calls / 1e4 * f.secret_api_price.value,
    );
    cost(
        &mut c,
        "cost_api_gateway",
        format!(
            "contracts × billing_writes_per_contract / 10⁶ × apigw_http_price = {} × {} / 10⁶ × {}",
            int(contracts),
            num(f.billing_writes_per_contract.value),
            num(f.apigw_http_price.value)
        ),
        n * f.billing_writes_per_contract.value / 1e6 * f.apigw_http_price.value,
    );
    let total: f64 = costs.iter().map(|(_, v)| v).sum();
    c.t(
        "total_cost",
        format!(
            "Σ cost_* = {}",
            costs
                .iter()
                .map(|(_, v)| num(*v))
                .collect::<Vec<_>>()
                .join(" + ")
        ),
        total,
        "USD/month",
    );

    if live as f64 > f.scheduler_schedules_quota.value {
        quota_raises.push(raise_line(
            "EventBridge Scheduler schedules (Service Quotas, adjustable)",
            &format!(
                "{} {}",
                num(f.scheduler_schedules_quota.value),
                f.scheduler_schedules_quota.unit
            ),
            &num(round_up(live as f64)),
            &int(live),
            "live ticks at most; the drain does not depend on it",
            &f.scheduler_schedules_quota.source,
        ));
    }

    Projection {
        contracts,
        moments_at_boundary: m.round() as u64,
        drain_s: drain,
        p99_lag_s: p99,
        bounded_by: verdict(&with_raises[binding].label, p99, target),
        drain_s_at_default_quotas: drain0,
        p99_lag_s_at_default_quotas: p99_0,
        bounded_by_at_default_quotas: verdict(&at_default[binding0].label, p99_0, target),
        live_schedules_max: live,
        lambda_gb_s_per_month: gb_s,
        cost_usd_per_month: total,
        quota_raises,
        hard_limits,
        terms: c.terms,
    }
}

/// Suffix of the terms computed at default quotas.
const AT_DEFAULT: &str = "_at_default_quotas";

/// What a boundary asks of the quotas.
struct Demand {
    wru: f64,
    rru: f64,
    /// Invocation-seconds of the boundary's timer batches.
    w: f64,
    /// Ticks of the boundary (they do not grow with contracts).
    ticks: f64,
}

/// The adjustable quotas a set of bounds is computed at.
#[derive(Debug, Clone, PartialEq)]
struct Quotas {
    /// WRU/s per table; WarmThroughput is taken as set to it.
    table_writes: f64,
    table_reads: f64,
    lambda_concurrency: f64,
    /// (MinimumPollers, MaximumPollers) of deliver's event source in provisioned mode; `None` in
    /// standard mode.
    pollers: Option<(f64, f64)>,
    scheduler_rate: f64,
}

impl Quotas {
    fn defaults(f: &Facts) -> Self {
        Quotas {
            table_writes: f.ddb_table_write_quota.value,
            table_reads: f.ddb_table_read_quota.value,
            lambda_concurrency: f.lambda_concurrency.value,
            pollers: None,
            scheduler_rate: f.scheduler_invocation_rate.value,
        }
    }

    /// The event source's concurrency when the boundary's messages appear, what it adds per second,
    /// and its maximum.
    fn esm(&self, f: &Facts) -> (f64, f64, f64) {
        match self.pollers {
            None => (
                f.esm_initial_concurrency.value,
                f.esm_scale_rate.value / 60.0,
                f.esm_max_concurrency.value,
            ),
            Some((min, max)) => {
                let per = f.esm_invokes_per_poller.value;
                (
                    min * per,
                    f.esm_provisioned_rate.value / 60.0,
                    (max * per).min(f.esm_provisioned_max.value),
                )
            }
        }
    }

    fn esm_mode(&self, f: &Facts) -> String {
        match self.pollers {
            None => "standard mode".to_string(),
            Some((min, max)) => format!(
                "provisioned mode: MinimumPollers {}, MaximumPollers {}, {} invocations per poller",
                num(min),
                num(max),
                num(f.esm_invokes_per_poller.value)
            ),
        }
    }
}

/// Up to 100 the next integer, above it the next number of two significant digits: quotas are
/// requested in round figures, and the rounding is the headroom.
fn round_up(x: f64) -> f64 {
    if !x.is_finite() || x <= 0.0 {
        return x.max(0.0);
    }
    // The epsilon keeps 180 / 10 = 18.000000000000004 from rounding up to 190.
    if x <= 100.0 {
        return (x - 1e-9).ceil();
    }
    let step = 10f64.powi(x.log10().floor() as i32 - 1);
    (x / step - 1e-9).ceil() * step
}

/// The smallest x in [lo, hi] with `time(x) ≤ budget`, for a `time` that does not grow with x;
/// `None` if even `hi` misses.
fn smallest_meeting(time: impl Fn(f64) -> f64, lo: f64, hi: f64, budget: f64) -> Option<f64> {
    if time(lo) <= budget {
        return Some(lo);
    }
    let at_hi = time(hi);
    if at_hi.is_nan() || at_hi > budget {
        return None;
    }
    let (mut lo, mut hi) = (lo, hi);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if time(mid) <= budget {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

fn raised_from(value: f64, default: f64) -> String {
    if value > default {
        format!("raised from {}", num(default))
    } else {
        "the default".to_string()
    }
}

fn verdict(label: &str, p99: f64, target: f64) -> String {
    if p99 > target {
        format!(
            "{label}; p99 {} s is over the {} s target",
            num(p99),
            num(target)
        )
    } else {
        label.to_string()
    }
}

/// The bounds at quotas `q`, bound_0 … bound_8 in order; `fixed` are bound_0, bound_3 and bound_8,
/// which no quota moves. Each is a lower bound on its own; taking the largest is optimistic when
/// two bind at once.
fn all_bounds(
    c: &mut Calc,
    f: &Facts,
    d: &Demand,
    q: &Quotas,
    suffix: &str,
    fixed: [&Bound; 3],
) -> Vec<Bound> {
    let q0 = Quotas::defaults(f);
    let mut bounds = vec![fixed[0].clone()];
    let name = format!("bound_1_table_writes{suffix}");
    let b = c.t(
        &name,
        format!(
            "WRU / table write throughput = {} / {} ({}; WarmThroughput set to it)",
            num(d.wru),
            num(q.table_writes),
            raised_from(q.table_writes, q0.table_writes)
        ),
        d.wru / q.table_writes,
        "s",
    );
    bounds.push(Bound {
        term: name,
        label: format!(
            "DynamoDB table write throughput ({} WRU at {} WRU/s per table, {})",
            num(d.wru),
            num(q.table_writes),
            raised_from(q.table_writes, q0.table_writes)
        ),
        t100: b,
        t99: 0.99 * b,
    });
    let name = format!("bound_2_table_reads{suffix}");
    let b = c.t(
        &name,
        format!(
            "RRU / table read throughput = {} / {} ({}; WarmThroughput set to it)",
            num(d.rru),
            num(q.table_reads),
            raised_from(q.table_reads, q0.table_reads)
        ),
        d.rru / q.table_reads,
        "s",
    );
    bounds.push(Bound {
        term: name,
        label: format!(
            "DynamoDB table read throughput ({} RRU at {} RRU/s per table, {})",
            num(d.rru),
            num(q.table_reads),
            raised_from(q.table_reads, q0.table_reads)
        ),
        t100: b,
        t99: 0.99 * b,
    });
    bounds.push(fixed[1].clone());
    let (start, rate, esm_max) = q.esm(f);
    let mode = q.esm_mode(f);
    let cap = c.t(
        &format!("concurrency_cap{suffix}"),
        format!(
            "min(lambda_concurrency, event source maximum) = min({}, {}) (lambda_concurrency: {}; \
             event source: {mode})",
            num(q.lambda_concurrency),
            num(esm_max),
            raised_from(q.lambda_concurrency, q0.lambda_concurrency)
        ),
        q.lambda_concurrency.min(esm_max),
        "concurrent invocations",
    );
    let name = format!("bound_4_concurrency{suffix}");
    let b = c.t(
        &name,
        format!(
            "boundary_invocation_s / concurrency_cap = {} / {}",
            num(d.w),
            num(cap)
        ),
        d.w / cap,
        "s",
    );
    bounds.push(Bound {
        term: name,
        label: format!(
            "Lambda concurrency ({} invocation-s over {} concurrent; account concurrency {}, event \
             source in {})",
            num(d.w),
            num(cap),
            raised_from(q.lambda_concurrency, q0.lambda_concurrency),
            mode
        ),
        t100: b,
        t99: 0.99 * b,
    });
    let name = format!("bound_5_esm_ramp{suffix}");
    let b = c.t(
        &name,
        format!(
            "T with ∫₀ᵀ min(concurrency_cap, {} + {} t) dt = boundary_invocation_s = {} ({mode}: {} \
             concurrent when the boundary's messages appear, +{} a minute)",
            num(start),
            num(rate),
            num(d.w),
            num(start),
            num(rate * 60.0)
        ),
        ramp_time(d.w, start, rate, cap),
        "s",
    );
    bounds.push(Bound {
        term: name,
        label: format!(
            "SQS event source scale-up ({mode}: {} concurrent, +{} a minute, to {})",
            num(start),
            num(rate * 60.0),
            num(cap)
        ),
        t100: b,
        t99: ramp_time(0.99 * d.w, start, rate, cap),
    });
    let burst = f.lambda_scaling_burst.value;
    let scale = f.lambda_scaling_rate.value;
    let name = format!("bound_6_lambda_scaling{suffix}");
    let b = c.t(
        &name,
        format!(
            "T with ∫₀ᵀ min(concurrency_cap, {} + {} t) dt = boundary_invocation_s = {}",
            num(burst),
            num(scale),
            num(d.w)
        ),
        ramp_time(d.w, burst, scale, cap),
        "s",
    );
    bounds.push(Bound {
        term: name,
        label: format!(
            "Lambda function scaling ({} environments at once, then {}/s, to {}; not adjustable)",
            num(burst),
            num(scale),
            num(cap)
        ),
        t100: b,
        t99: ramp_time(0.99 * d.w, burst, scale, cap),
    });
    let name = format!("bound_7_scheduler{suffix}");
    let b = c.t(
        &name,
        format!(
            "distinct_fire_minutes / scheduler invocation rate = {} / {} ({}; ticks do not grow with \
             contracts)",
            num(d.ticks),
            num(q.scheduler_rate),
            raised_from(q.scheduler_rate, q0.scheduler_rate)
        ),
        d.ticks / q.scheduler_rate,
        "s",
    );
    bounds.push(Bound {
        term: name,
        label: format!(
            "EventBridge Scheduler invocation throttle ({} ticks at {}/s, {})",
            num(d.ticks),
            num(q.scheduler_rate),
            raised_from(q.scheduler_rate, q0.scheduler_rate)
        ),
        t100: b,
        t99: 0.99 * b,
    });
    bounds.push(fixed[2].clone());
    bounds
}

/// The drain (the largest bound), the time to 99 % and the p99 lag; returns the binding bound's
/// index, the drain and the p99 lag.
fn drain_of(c: &mut Calc, bounds: &[Bound], hold: f64, suffix: &str) -> (usize, f64, f64) {
    let binding = (0..bounds.len()).fold(0, |best, i| {
        if bounds[i].t100 > bounds[best].t100 {
            i
        } else {
            best
        }
    });
    let drain = c.t(
        &format!("drain_s{suffix}"),
        format!(
            "max(bound_0 … bound_8) = {} ({})",
            bounds[binding].term,
            num(bounds[binding].t100)
        ),
        bounds[binding].t100,
        "s",
    );
    let t99 = c.t(
        &format!("drain_99_s{suffix}"),
        "max over the bounds of the time to serve 99 % of the work: 0.99 × a rate bound, the ramp \
         solved for 0.99 of the invocation-seconds, the per-invocation and tick-lead bounds unchanged"
            .to_string(),
        bounds.iter().map(|b| b.t99).fold(0.0, f64::max),
        "s",
    );
    let p99 = c.t(
        &format!("p99_lag_s{suffix}"),
        format!(
            "drain_99_s{suffix} + hold_s = {} + {}: a moment no bound delays still fires up to the \
             hold after its second (timers become visible up to ~2 s early, the event source polls \
             and the invocation holds to the second)",
            num(t99),
            num(hold)
        ),
        t99 + hold,
        "s",
    );
    (binding, drain, p99)
}

fn raise_line(
    what: &str,
    default: &str,
    raised: &str,
    needed: &str,
    why: &str,
    source: &str,
) -> String {
    format!(
        "{what}: default {default}, raised to {raised} (needed {needed}). Why: {why}. Source: {source}"
    )
}

/// Every adjustable quota whose default keeps its bound over the drain budget, raised to what the
/// budget needs (rounded up by [`round_up`]), with a line for each raise; the others keep their
/// defaults. Hard limits are not here: they stay, see [`hard_limits`].
fn raise(c: &mut Calc, f: &Facts, d: &Demand, budget: f64, target: f64) -> (Quotas, Vec<String>) {
    let q0 = Quotas::defaults(f);
    let mut q = q0.clone();
    let mut out = Vec::new();
    let within = format!(
        "within the {} s drain budget ({} s target − {} s hold)",
        num(budget),
        num(target),
        num(f.hold_s.value)
    );

    let tables = [
        (
            "write",
            "WRU",
            d.wru,
            &f.ddb_table_write_quota,
            &f.ddb_new_table_writes,
            "WriteUnitsPerSecond",
        ),
        (
            "read",
            "RRU",
            d.rru,
            &f.ddb_table_read_quota,
            &f.ddb_new_table_reads,
            "ReadUnitsPerSecond",
        ),
    ];
    let mut raised_tables = [0.0; 2];
    for (i, (kind, unit, units, quota, warm, field)) in tables.into_iter().enumerate() {
        let at_default = units / quota.value;
        let needed = c.t(
            &format!("table_{kind}s_needed"),
            format!("{unit} / drain_budget_s = {} / {}", num(units), num(budget)),
            units / budget,
            &format!("{unit}/s"),
        );
        let over = at_default > budget;
        let value = c.t(
            &format!("table_{kind}_quota"),
            if over {
                format!(
                    "max(default, round_up(table_{kind}s_needed)) = round_up({}): at the default {} \
                     {unit}/s the table takes {} s, over drain_budget_s",
                    num(needed),
                    num(quota.value),
                    num(at_default)
                )
            } else {
                format!(
                    "ddb_table_{kind}_quota = {} (default): the table takes {} s, within \
                     drain_budget_s",
                    num(quota.value),
                    num(at_default)
                )
            },
            if over {
                round_up(needed).max(quota.value)
            } else {
                quota.value
            },
            &quota.unit,
        );
        raised_tables[i] = value;
        if over {
            out.push(raise_line(
                &format!("DynamoDB table-level {kind} throughput (Service Quotas, adjustable)"),
                &format!("{} {}", num(quota.value), quota.unit),
                &format!("{} {}", num(value), quota.unit),
                &num(needed),
                &format!(
                    "{} {kind} units {within}; at the default they take {} s, and WarmThroughput \
                     cannot exceed this quota",
                    num(units),
                    num(at_default)
                ),
                &quota.source,
            ));
        }
        let warm_needed = needed > warm.value;
        let warm_value = c.t(
            &format!("warm_{kind}s"),
            if warm_needed {
                format!(
                    "min(table_{kind}_quota, round_up(table_{kind}s_needed)) = min({}, {}): \
                     WarmThroughput.{field}, above the {} of a new on-demand table",
                    num(value),
                    num(round_up(needed)),
                    num(warm.value)
                )
            } else {
                format!(
                    "{} (a new on-demand table's): table_{kind}s_needed is within it",
                    num(warm.value)
                )
            },
            if warm_needed {
                round_up(needed).min(value)
            } else {
                warm.value
            },
            &format!("{unit}/s"),
        );
        if warm_needed {
            out.push(raise_line(
                &format!(
                    "DynamoDB WarmThroughput.{field} (UpdateTable, on the table and every GSI the \
                     boundary {kind}s)"
                ),
                &format!("{} for a new on-demand table", num(warm.value)),
                &num(warm_value),
                &num(needed),
                &format!(
                    "a table that never saw {} {unit}/s throttles above its warm throughput and at \
                     most doubles its peak in 30 minutes; raising it is charged (no price found, not \
                     in the cost)",
                    num(needed)
                ),
                &warm.source,
            ));
        }
    }
    q.table_writes = raised_tables[0];
    q.table_reads = raised_tables[1];

    // Lambda concurrency: enough for the invocation-seconds within the budget, and for the
    // function's scaling (not adjustable) to get there in time where it can.
    let burst = f.lambda_scaling_burst.value;
    let scale = f.lambda_scaling_rate.value;
    let c0 = q0.lambda_concurrency;
    let cap0 = c0.min(q0.esm(f).2);
    let at_default = ramp_time(d.w, burst, scale, cap0).max(d.w / cap0);
    let scaling_alone = ramp_time(d.w, burst, scale, f64::INFINITY);
    let reach = (d.w / budget).max(burst + scale * scaling_alone).max(1.0);
    let time = |x: f64| ramp_time(d.w, burst, scale, x).max(d.w / x);
    let lo = (d.w / budget).max(1.0);
    let found = smallest_meeting(time, lo, reach, budget);
    let needed = c.t(
        "lambda_concurrency_needed",
        format!(
            "smallest c with max(boundary_invocation_s / c, T of ∫₀ᵀ min(c, {} + {} t) dt = \
             boundary_invocation_s) ≤ drain_budget_s, from {} / {} = {}{}",
            num(burst),
            num(scale),
            num(d.w),
            num(budget),
            num(d.w / budget),
            if found.is_some() {
                String::new()
            } else {
                format!(
                    "; the scaling alone takes {} s, over the budget: c is what it reaches by then",
                    num(scaling_alone)
                )
            }
        ),
        found.unwrap_or(reach),
        "concurrent executions",
    );
    let over = at_default > budget;
    q.lambda_concurrency = c.t(
        "lambda_concurrency",
        if over {
            format!(
                "max(default, round_up(lambda_concurrency_needed)) = round_up({}): at the default {} \
                 the timer batches take {} s",
                num(needed),
                num(c0),
                num(at_default)
            )
        } else {
            format!(
                "lambda_concurrency = {} (default): the timer batches take {} s at it",
                num(c0),
                num(at_default)
            )
        },
        if over { round_up(needed).max(c0) } else { c0 },
        "concurrent executions",
    );
    if q.lambda_concurrency > c0 {
        out.push(raise_line(
            "Lambda concurrent executions (Service Quotas, adjustable)",
            &format!("{} (new accounts start lower)", num(c0)),
            &num(q.lambda_concurrency),
            &format!(
                "{} for deliver; api, schedule and 100 unreserved on top",
                num(needed)
            ),
            &format!(
                "{} invocation-seconds of timer batches {within}, while the function scales by {} \
                 environments/s after the first {}",
                num(d.w),
                num(scale),
                num(burst)
            ),
            &f.lambda_concurrency.source,
        ));
    }

    // deliver's event source: standard mode cannot be raised, provisioned mode can be warm.
    let std_cap = q.lambda_concurrency.min(f.esm_max_concurrency.value);
    let std_ramp = c.t(
        "esm_standard_ramp_s",
        format!(
            "T with ∫₀ᵀ min(min(lambda_concurrency, esm_max_concurrency), {} + {} t) dt = \
             boundary_invocation_s = {}, at concurrency {}",
            num(f.esm_initial_concurrency.value),
            num(f.esm_scale_rate.value / 60.0),
            num(d.w),
            num(std_cap)
        ),
        ramp_time(
            d.w,
            f.esm_initial_concurrency.value,
            f.esm_scale_rate.value / 60.0,
            std_cap,
        ),
        "s",
    );
    let per = f.esm_invokes_per_poller.value.max(1.0);
    let (min_pollers, max_pollers) = if std_ramp > budget {
        let max_pollers = (q.lambda_concurrency / per)
            .ceil()
            .max(f.esm_maximum_pollers.value)
            .min((f.esm_provisioned_max.value / per).floor());
        let cap = q
            .lambda_concurrency
            .min((max_pollers * per).min(f.esm_provisioned_max.value));
        let rate = f.esm_provisioned_rate.value / 60.0;
        let lo = f.esm_minimum_pollers.value * per;
        let hi = (f.esm_minimum_pollers_max.value * per).max(lo);
        let start =
            smallest_meeting(|s| ramp_time(d.w, s, rate, cap), lo, hi, budget).unwrap_or(hi);
        let min_pollers = (start / per - 1e-9)
            .ceil()
            .clamp(f.esm_minimum_pollers.value, f.esm_minimum_pollers_max.value);
        (min_pollers, max_pollers)
    } else {
        (0.0, 0.0)
    };
    let provisioned = std_ramp > budget;
    c.t(
        "esm_minimum_pollers",
        if provisioned {
            format!(
                "smallest MinimumPollers from {} to {} with T of ∫₀ᵀ min(concurrency_cap, pollers × \
                 {} + {} t) dt = boundary_invocation_s within drain_budget_s: esm_standard_ramp_s is \
                 over it",
                num(f.esm_minimum_pollers.value),
                num(f.esm_minimum_pollers_max.value),
                num(per),
                num(f.esm_provisioned_rate.value / 60.0)
            )
        } else {
            "0: standard mode, esm_standard_ramp_s is within drain_budget_s".to_string()
        },
        min_pollers,
        "pollers",
    );
    c.t(
        "esm_maximum_pollers",
        if provisioned {
            format!(
                "min(esm_provisioned_max / {}, max(default {}, ceil(lambda_concurrency / {}))) = \
                 min({}, max({}, {}))",
                num(per),
                num(f.esm_maximum_pollers.value),
                num(per),
                num((f.esm_provisioned_max.value / per).floor()),
                num(f.esm_maximum_pollers.value),
                num((q.lambda_concurrency / per).ceil())
            )
        } else {
            "0: standard mode".to_string()
        },
        max_pollers,
        "pollers",
    );
    if provisioned {
        q.pollers = Some((min_pollers, max_pollers));
        let (start, rate, max) = q.esm(f);
        out.push(raise_line(
            "SQS event source mapping of deliver: provisioned mode (ProvisionedPollerConfig; \
             standard mode is not adjustable)",
            &format!(
                "standard mode, {} concurrent, +{} a minute, at most {}",
                num(f.esm_initial_concurrency.value),
                num(f.esm_scale_rate.value),
                num(f.esm_max_concurrency.value)
            ),
            &format!(
                "MinimumPollers {} ({} concurrent when the boundary's messages appear, then +{} a \
                 minute), MaximumPollers {} (at most {} concurrent)",
                num(min_pollers),
                num(start),
                num(rate * 60.0),
                num(max_pollers),
                num(max)
            ),
            &format!(
                "a ramp within {} s; this one takes {} s",
                num(budget),
                num(ramp_time(d.w, start, rate, q.lambda_concurrency.min(max)))
            ),
            &format!(
                "the standard-mode ramp takes {} s to serve {} invocation-seconds; pollers are charged \
                 while provisioned, MinimumPollers always (no price in the facts, not in the cost)",
                num(std_ramp),
                num(d.w)
            ),
            &f.esm_provisioned_rate.source,
        ));
    }

    let sr0 = q0.scheduler_rate;
    let at_default = d.ticks / sr0;
    let over = at_default > budget;
    q.scheduler_rate = c.t(
        "scheduler_invocation_rate",
        if over {
            format!(
                "round_up(distinct_fire_minutes / drain_budget_s) = round_up({} / {})",
                num(d.ticks),
                num(budget)
            )
        } else {
            format!(
                "scheduler_invocation_rate = {} (default): the ticks take {} s",
                num(sr0),
                num(at_default)
            )
        },
        if over {
            round_up(d.ticks / budget).max(sr0)
        } else {
            sr0
        },
        "invocations/s",
    );
    if q.scheduler_rate > sr0 {
        out.push(raise_line(
            "EventBridge Scheduler invocations throttle (Service Quotas, adjustable)",
            &format!("{} invocations/s", num(sr0)),
            &format!("{} invocations/s", num(q.scheduler_rate)),
            &num(d.ticks / budget),
            &format!("{} ticks {within}", num(d.ticks)),
            &f.scheduler_invocation_rate.source,
        ));
    }
    (q, out)
}

struct Limits<'a> {
    f: &'a Facts,
    bounds: &'a [Bound],
    budget: f64,
    hot: &'a Hottest,
    hot_writes_s: f64,
    hot_reads_s: f64,
    tick_item_s: f64,
    fixed_writes_per_tick: u64,
    shard_send_s: f64,
    w: f64,
    moments_per_batch: f64,
    q: &'a Quotas,
}

fn limit_line(what: &str, limit: &str, needed: &str, why: &str, source: &str) -> String {
    format!("{what}: limit {limit}, needed {needed}. Why: {why}. Source: {source}")
}

/// The bounds still over the drain budget with every raise applied, and the tick lead if it makes
/// any timer late: limits no quota raise lifts, with what would.
fn hard_limits(l: &Limits) -> Vec<String> {
    let f = l.f;
    let over = |prefix: &str| {
        l.bounds
            .iter()
            .find(|b| b.term.starts_with(prefix))
            .filter(|b| b.t100 > l.budget)
    };
    let mut out = Vec::new();
    if let Some(b) = over("bound_0") {
        out.push(limit_line(
            "Timer batch duration (the deliver design, not a quota)",
            &format!(
                "{} moments a batch, {} sends in flight",
                num(l.moments_per_batch),
                num(f.sends_in_flight.value)
            ),
            &format!("a batch within {} s", num(l.budget)),
            &format!(
                "one batch takes {} s; fewer timers per message or more sends in flight shorten it",
                num(b.t100)
            ),
            &f.sends_in_flight.source,
        ));
    }
    if over("bound_3").is_some() {
        let factor = (l.hot_writes_s.max(l.hot_reads_s).max(l.tick_item_s) / l.budget).ceil();
        let (key, why) = if l.tick_item_s > l.hot_writes_s.max(l.hot_reads_s) {
            (
                "TICK#<minute>".to_string(),
                format!(
                    "a tick writes its own item {} times",
                    int(l.fixed_writes_per_tick)
                ),
            )
        } else {
            (
                l.hot.key_class.clone(),
                format!(
                    "one key takes {} % of the boundary's writes and {} % of its reads",
                    num(l.hot.share_of_writes * 100.0),
                    num(l.hot.share_of_reads * 100.0)
                ),
            )
        };
        out.push(limit_line(
            "DynamoDB partition throughput (hard limit, not adjustable)",
            &format!(
                "{} WCU/s and {} RCU/s per partition",
                num(f.ddb_partition_writes.value),
                num(f.ddb_partition_reads.value)
            ),
            &format!(
                "{} WCU/s and {} RCU/s on {key} to drain it within {} s: spread that key over {}× \
                 more keys",
                num(l.hot_writes_s.max(l.tick_item_s) * f.ddb_partition_writes.value / l.budget),
                num(l.hot_reads_s * f.ddb_partition_reads.value / l.budget),
                num(l.budget),
                num(factor)
            ),
            &why,
            &f.ddb_partition_writes.source,
        ));
    }
    if let Some(b) = over("bound_4") {
        let (_, _, esm_max) = l.q.esm(f);
        out.push(limit_line(
            "Concurrency of one SQS event source mapping (hard limit in provisioned mode)",
            &format!("{} concurrent", num(esm_max)),
            &format!("{} concurrent", num(l.w / l.budget)),
            &format!(
                "{} invocation-seconds take {} s at it; split the timers over more queues, each with \
                 its own mapping",
                num(l.w),
                num(b.t100)
            ),
            &f.esm_provisioned_max.source,
        ));
    }
    if let Some(b) = over("bound_5") {
        out.push(limit_line(
            "SQS event source scale-up (not adjustable beyond MinimumPollers)",
            &format!(
                "{}, then +{} a minute",
                l.q.esm_mode(f),
                num(f.esm_provisioned_rate.value)
            ),
            &format!("the ramp within {} s", num(l.budget)),
            &format!(
                "the ramp takes {} s even with MinimumPollers at its maximum of {}",
                num(b.t100),
                num(f.esm_minimum_pollers_max.value)
            ),
            &f.esm_minimum_pollers.source,
        ));
    }
    if let Some(b) = over("bound_6") {
        out.push(limit_line(
            "Lambda function scaling rate (not adjustable)",
            &format!(
                "{} environments at once, then {}/s",
                num(f.lambda_scaling_burst.value),
                num(f.lambda_scaling_rate.value)
            ),
            &format!("the scaling within {} s", num(l.budget)),
            &format!(
                "scaling to {} concurrent takes {} s; only provisioned concurrency ahead of the \
                 boundary avoids it",
                num(l.q.lambda_concurrency),
                num(b.t100)
            ),
            &f.lambda_scaling_rate.source,
        ));
    }
    if l.shard_send_s > f.tick_lead_s.value {
        let shards = (f.due_shards.value * l.shard_send_s / f.tick_lead_s.value).ceil();
        out.push(limit_line(
            "Due-index shards (a design constant, not a quota)",
            &num(f.due_shards.value),
            &num(shards),
            &format!(
                "each shard's SQS sends take {} s, longer than the {} s a tick leads its minute",
                num(l.shard_send_s),
                num(f.tick_lead_s.value)
            ),
            &f.tick_lead_s.source,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boundary's cursor writes: 256 shards × its pages of 1,000 timers
    /// (2,000,000 moments: 8 pages; 20,000,000: 79), none at the measured size.
    const CURSORS_1M: f64 = 256.0 * 8.0;
    const CURSORS_10M: f64 = 256.0 * 79.0;

    #[test]
    fn cursor_writes_only_where_a_shard_needs_more_than_one_page() {
        let ps = project_all(&measured(), &Facts::default());
        assert_eq!(value(&ps[0], "cursor_writes"), CURSORS_1M);
        assert_eq!(value(&ps[1], "cursor_writes"), CURSORS_10M);
        let small = project(&measured(), 2_000, &Facts::default());
        assert_eq!(value(&small, "cursor_writes"), 0.0);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// 2,000 contracts, 4,000 moments at the boundary, 64 timer messages in 7 batches; 10 WRU and
    /// 1.5 RRU a moment, and a hottest partition (50 s at 1,000,000 contracts) within both targets.
    fn measured() -> Measured {
        let calls = [
            ("dynamodb.TransactWriteItems", 8_000),
            ("dynamodb.Query", 4_128),
            ("dynamodb.GetItem", 40),
            ("sqs.SendMessageBatch", 7),
            ("sqs.SendMessage", 64),
            ("secretsmanager.GetSecretValue", 4),
        ];
        Measured {
            contracts: 2_000,
            moments_at_boundary: 4_000,
            delivered: 4_000,
            endpoints: 1,
            calls: calls.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            write_units: 40_000.0,
            read_units: 6_000.0,
            hottest_partition: Hottest {
                key_class: "due#shard".into(),
                writes: 100,
                reads: 70,
                share_of_reads: 0.012,
                share_of_writes: 0.0025,
            },
            // The tick and its shard steps (1 + ceil(shards / 10)), then 26
            // timer batches: what the design packs 4,000 moments into at
            // 256 shards (one message a shard, 10 to a batch).
            deliver_invocations: 1 + lifecycle_aws::dynamodb::DUE_SHARDS.div_ceil(10) as u64 + 26,
            distinct_fire_minutes: 1,
            schedules_alive_max: 1_200,
            moments_per_contract_per_month: 4.2,
            stored_bytes_per_contract: 3_000.0,
            stored_bytes_per_moment: 2_500.0,
            log_bytes_per_moment: 600.0,
            horizon_minutes: 20_160,
            fixed_writes_per_tick: 0,
            ingest_write_units_per_contract: 0.0,
            materialise_write_units_per_contract_month: 0.0,
            materialise_read_units_per_contract_month: 0.0,
        }
    }

    fn value(p: &Projection, name: &str) -> f64 {
        p.term(name)
            .unwrap_or_else(|| panic!("no term {name}"))
            .value
    }

    #[test]
    fn moments_scale_with_contracts() {
        let p = project(&measured(), 1_000_000, &Facts::default());
        assert_eq!(p.moments_at_boundary, 2_000_000);
        assert_eq!(p.contracts, 1_000_000);
        assert!(close(value(&p, "WRU"), 20_000_000.0 + CURSORS_1M));
    }

    #[test]
    fn at_default_quotas_the_write_bound_is_linear_in_contracts() {
        let facts = Facts::default();
        let ps = project_all(&measured(), &facts);
        assert_eq!(ps.len(), 2);
        for p in &ps {
            assert!(
                p.bounded_by_at_default_quotas.contains("table write"),
                "{}",
                p.bounded_by_at_default_quotas
            );
            assert!(close(
                p.drain_s_at_default_quotas,
                value(p, "bound_1_table_writes_at_default_quotas")
            ));
        }
        // 10 WRU a moment, 2 moments a contract, the cursors, 40,000 WRU/s.
        assert!(close(
            ps[0].drain_s_at_default_quotas,
            (20_000_000.0 + CURSORS_1M) / 40_000.0
        ));
        assert!(close(
            ps[1].drain_s_at_default_quotas / ps[0].drain_s_at_default_quotas,
            (200_000_000.0 + CURSORS_10M) / (20_000_000.0 + CURSORS_1M)
        ));
        assert!(close(
            ps[0].p99_lag_s_at_default_quotas,
            0.99 * (20_000_000.0 + CURSORS_1M) / 40_000.0 + 2.0
        ));
    }

    #[test]
    fn the_target_is_per_size_and_the_budget_leaves_the_hold() {
        let facts = Facts::default();
        let ps = project_all(&measured(), &facts);
        assert_eq!(value(&ps[0], "target_lag_s"), 60.0);
        assert_eq!(value(&ps[0], "drain_budget_s"), 58.0);
        assert_eq!(value(&ps[1], "target_lag_s"), 600.0);
        assert_eq!(value(&ps[1], "drain_budget_s"), 598.0);
        assert_eq!(
            value(&project(&measured(), 1_000_001, &facts), "target_lag_s"),
            600.0
        );
    }

    #[test]
    fn a_raise_is_applied_when_the_default_misses_the_target() {
        let facts = Facts::default();
        let ps = project_all(&measured(), &facts);
        let p = &ps[0];
        // 20,000,000 WRU in 58 s is 344,828 WRU/s, rounded up to 350,000.
        assert_eq!(value(p, "table_write_quota"), 350_000.0);
        assert!(close(
            value(p, "bound_1_table_writes"),
            (20_000_000.0 + CURSORS_1M) / 350_000.0
        ));
        assert!(p.quota_raises.iter().any(|r| r
            .starts_with("DynamoDB table-level write throughput")
            && r.contains("default 40,000 WRU/s per table, raised to 350,000 WRU/s per table")));
        // 3,000,000 RRU: 75 s at 40,000, so reads are raised too, to 52,000.
        assert_eq!(value(p, "table_read_quota"), 52_000.0);
        // With the raises, the drain and p99 meet the targets at both sizes; at default they do not.
        for p in &ps {
            let target = value(p, "target_lag_s");
            assert!(p.drain_s <= value(p, "drain_budget_s"), "{}", p.drain_s);
            assert!(p.p99_lag_s <= target, "{} > {target}", p.p99_lag_s);
            assert!(p.p99_lag_s_at_default_quotas > target);
            assert!(p.drain_s < p.drain_s_at_default_quotas);
            assert!(p.hard_limits.is_empty(), "{:?}", p.hard_limits);
            assert!(!p.bounded_by.contains("over the"), "{}", p.bounded_by);
        }
        // The drain with raises is the largest bound at the raised quotas.
        assert!(close(ps[0].drain_s, 3_000_000.0 / 52_000.0));
        assert!(ps[0].bounded_by.contains("raised from 40,000"));
    }

    #[test]
    fn no_raise_when_the_default_meets_the_target() {
        let facts = Facts::default();
        // 100,000 contracts: 2,000,000 WRU take 50 s at 40,000 WRU/s, within the 58 s budget.
        let p = project(&measured(), 100_000, &facts);
        assert_eq!(value(&p, "table_write_quota"), 40_000.0);
        assert_eq!(value(&p, "table_read_quota"), 40_000.0);
        assert_eq!(value(&p, "lambda_concurrency"), 1_000.0);
        assert!(!p.quota_raises.iter().any(|r| r.contains("table-level")));
        // The table still has to be warm beyond a new table's 4,000 writes/s.
        assert!(p
            .quota_raises
            .iter()
            .any(|r| r.contains("WarmThroughput.WriteUnitsPerSecond")));
        assert!(close(p.drain_s, 50.0));
        assert!(close(p.drain_s, p.drain_s_at_default_quotas));
        // A default already high enough is not raised either.
        let mut high = facts.clone();
        high.ddb_table_write_quota.value = 400_000.0;
        high.ddb_table_read_quota.value = 400_000.0;
        let p = project(&measured(), 1_000_000, &high);
        assert_eq!(value(&p, "table_write_quota"), 400_000.0);
        assert!(!p.quota_raises.iter().any(|r| r.contains("table-level")));
        assert!(close(
            value(&p, "bound_1_table_writes"),
            (20_000_000.0 + CURSORS_1M) / 400_000.0
        ));
    }

    #[test]
    fn a_hard_partition_bound_is_never_raised() {
        let mut m = measured();
        m.hottest_partition.writes = 4_000;
        m.hottest_partition.share_of_writes = 0.1;
        let facts = Facts::default();
        let p = project(&m, 1_000_000, &facts);
        // 1 write a moment × 2,000,000 moments at 1,000 WCU/s, with or without the raises.
        assert!(close(p.drain_s, 2_000.0));
        assert!(close(p.drain_s_at_default_quotas, 2_000.0));
        assert!(
            p.bounded_by.contains("hottest partition") && p.bounded_by.contains("hard limit"),
            "{}",
            p.bounded_by
        );
        assert!(p.bounded_by.contains("over the 60 s target"));
        assert!(!p.quota_raises.iter().any(|r| r.contains("partition")));
        assert!(p.hard_limits.iter().any(|r| r
            .starts_with("DynamoDB partition throughput (hard limit")
            && r.contains("over 35× more keys")));
        // The adjustable quotas are still raised to the target.
        assert_eq!(value(&p, "table_write_quota"), 350_000.0);
        assert!(value(&p, "bound_1_table_writes") <= 58.0);
    }

    #[test]
    fn fixed_tick_writes_are_not_scaled() {
        let facts = Facts::default();
        let mut m = measured();
        m.fixed_writes_per_tick = 65;
        let ps = project_all(&m, &facts);
        // 40,000 − 65 WRU scale with the moments, the tick's 65 do not.
        let per_moment = (40_000.0 - 65.0) / 4_000.0;
        assert!(close(value(&ps[0], "wru_per_moment"), per_moment));
        assert!(close(
            value(&ps[0], "WRU"),
            per_moment * 2_000_000.0 + 65.0 + CURSORS_1M
        ));
        assert!(close(
            value(&ps[1], "WRU"),
            per_moment * 20_000_000.0 + 65.0 + CURSORS_10M
        ));
        assert!(close(
            value(&ps[0], "wru_per_month"),
            per_moment * 4.2 * 1_000_000.0 + 65.0 * 43_200.0 + CURSORS_1M
        ));
        assert!(close(value(&ps[1], "tick_item_writes_s"), 0.065));
        // Without the field the same write units all scale.
        let p = project(&measured(), 10_000_000, &facts);
        assert!(close(value(&p, "WRU"), 10.0 * 20_000_000.0 + CURSORS_10M));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["fixed_writes_per_tick"], 65);
    }

    #[test]
    fn live_schedules_do_not_depend_on_contracts() {
        let facts = Facts::default();
        let m = measured();
        let small = project(&m, 1_000, &facts);
        let ps = project_all(&m, &facts);
        assert_eq!(small.live_schedules_max, 20_160);
        assert!(ps.iter().all(|p| p.live_schedules_max == 20_160));
        let mut over = m.clone();
        over.schedules_alive_max = 30_000;
        assert_eq!(project(&over, 1_000_000, &facts).live_schedules_max, 30_000);
    }

    #[test]
    fn the_ingest_is_a_months_share_of_the_writes() {
        let mut m = measured();
        m.ingest_write_units_per_contract = 120.0;
        let with = project(&m, 1_000_000, &Facts::default());
        let without = project(&measured(), 1_000_000, &Facts::default());
        // 120 WRU a contract over its 12 months: 10,000,000 WRU a month at 1,000,000 contracts.
        assert!(close(value(&with, "ingest_wru_per_month"), 10_000_000.0));
        assert!(close(
            value(&with, "wru_per_month") - value(&without, "wru_per_month"),
            10_000_000.0
        ));
    }

    #[test]
    fn cost_is_the_sum_of_its_terms() {
        let mut hot = measured();
        hot.hottest_partition.writes = 4_000;
        for m in [measured(), hot] {
            for p in project_all(&m, &Facts::default()) {
                let parts: f64 = p
                    .terms
                    .iter()
                    .filter(|t| t.name.starts_with("cost_"))
                    .map(|t| t.value)
                    .sum();
                assert!(parts > 0.0);
                assert!(close(p.cost_usd_per_month, parts));
                assert!(close(p.cost_usd_per_month, value(&p, "total_cost")));
                assert!(
                    p.terms
                        .iter()
                        .filter(|t| t.name.starts_with("cost_"))
                        .count()
                        >= 10
                );
            }
        }
    }

    #[test]
    fn dynamodb_write_cost_by_hand() {
        // 10 WRU × 4.2 moments × 1,000,000 contracts = 42,000,000 WRU at $0.625 per million.
        let p = project(&measured(), 1_000_000, &Facts::default());
        assert!(close(
            value(&p, "cost_dynamodb_writes"),
            (42_000_000.0 + CURSORS_1M) / 1e6 * 0.625
        ));
        // 4 secret calls per 4,000 moments → 4,200,000 moments a month / 1,000.
        assert!(close(value(&p, "secret_calls_per_month"), 4_200.0));
        assert!(close(value(&p, "cost_api_gateway"), 1.0));
        assert!(close(value(&p, "cost_scheduler"), 0.0));
    }

    #[test]
    fn fired_moments_are_stored_for_the_delivery_retention() {
        let p = project(&measured(), 1_000_000, &Facts::default());
        // 4,200,000 moments a month kept 90 days.
        let retained = 4_200_000.0 * 90.0 / (365.25 / 12.0);
        assert!(close(value(&p, "retained_moments"), retained));
        assert!(close(
            value(&p, "stored_gb"),
            (3_000.0 * 1e6 + 2_500.0 * retained) / 1_073_741_824.0
        ));
    }

    #[test]
    fn batch_fill_is_carried_over_from_the_measurement() {
        let p = project(&measured(), 1_000_000, &Facts::default());
        assert_eq!(
            lifecycle_aws::dynamodb::DUE_SHARDS,
            256,
            "the figures below assume it"
        );
        // Measured: 53 − 1 × 27 = 26 batches of 4,000 / 26 moments; the design packs 256
        // one-message shards into 26 batches too, so the efficiency is 1.
        assert!(close(value(&p, "timer_batches_measured"), 26.0));
        assert!(close(value(&p, "fill_efficiency"), 1.0));
        // 2,000,000 / 256 = 7,812.5 per shard → 79 messages → 20,224 → 2,023 batches.
        assert!(close(value(&p, "design_fill"), 2_000_000.0 / 2_023.0));
        // Half-full batches measured halve the projected fill.
        let mut m = measured();
        m.deliver_invocations = 1 + 26 + 52;
        let p = project(&m, 1_000_000, &Facts::default());
        assert!(close(value(&p, "fill_efficiency"), 0.5));
        assert!(close(
            value(&p, "moments_per_batch_invocation"),
            1_000_000.0 / 2_023.0
        ));
    }

    #[test]
    fn a_slow_receiver_gets_provisioned_pollers_and_more_concurrency() {
        let mut m = measured();
        m.write_units = 4_000.0;
        m.read_units = 400.0;
        m.endpoints = 10;
        m.delivered = 40_000;
        let facts = Facts::default();
        let p = project(&m, 1_000_000, &facts);
        // At default quotas the standard-mode ramp binds: still ramping at T, 5 t + 2.5 t² = W.
        assert!(
            p.bounded_by_at_default_quotas.contains("SQS event source"),
            "{}",
            p.bounded_by_at_default_quotas
        );
        let w = value(&p, "boundary_invocation_s");
        let t = p.drain_s_at_default_quotas;
        assert!(t < (1_000.0 - 5.0) / 5.0);
        assert!(close(5.0 * t + 2.5 * t * t, w));
        assert!(
            p.p99_lag_s_at_default_quotas < t + 2.0
                && p.p99_lag_s_at_default_quotas > 0.99 * t + 2.0
        );
        // With the raises: enough concurrency for W within 58 s, rounded up, and pollers warm
        // enough for the ramp to get there in time.
        let needed = value(&p, "lambda_concurrency_needed");
        assert!(needed >= w / 58.0 && needed < 1.01 * w / 58.0, "{needed}");
        assert_eq!(value(&p, "lambda_concurrency"), round_up(needed));
        assert!(value(&p, "lambda_concurrency") > 1_000.0);
        assert!(value(&p, "esm_minimum_pollers") > 2.0);
        assert!(p
            .quota_raises
            .iter()
            .any(|r| r.starts_with("Lambda concurrent executions")));
        assert!(p
            .quota_raises
            .iter()
            .any(|r| r.contains("provisioned mode") && r.contains("MinimumPollers")));
        assert!(value(&p, "bound_5_esm_ramp") <= 58.0);
        assert!(p.drain_s <= 58.0 && p.p99_lag_s <= 60.0, "{}", p.bounded_by);
    }

    #[test]
    fn the_lambda_scaling_rate_is_a_hard_limit() {
        let mut facts = Facts::default();
        // A function that scales from 100 environments by 1 a second: W = 8,775 takes 66 s.
        facts.lambda_scaling_burst.value = 100.0;
        facts.lambda_scaling_rate.value = 1.0;
        let p = project(&measured(), 1_000_000, &facts);
        let w = value(&p, "boundary_invocation_s");
        let t = value(&p, "bound_6_lambda_scaling");
        assert!(close(100.0 * t + 0.5 * t * t, w));
        assert!(t > 58.0);
        assert!(close(p.drain_s, t));
        assert!(
            p.bounded_by.contains("Lambda function scaling")
                && p.bounded_by.contains("not adjustable"),
            "{}",
            p.bounded_by
        );
        assert!(p
            .hard_limits
            .iter()
            .any(|r| r.starts_with("Lambda function scaling rate")));
        assert!(!p.quota_raises.iter().any(
            |r| r.starts_with("Lambda function scaling") || r.starts_with("Lambda concurrent")
        ));
        // More concurrency than the scaling reaches would not help: the default stays.
        assert_eq!(value(&p, "lambda_concurrency"), 1_000.0);
        // At the default scaling the same boundary is not bound by it.
        let p = project(&measured(), 1_000_000, &Facts::default());
        assert!(!p
            .hard_limits
            .iter()
            .any(|r| r.starts_with("Lambda function scaling")));
    }

    #[test]
    fn tick_lead_is_designed_from_the_shards() {
        let mut facts = Facts::default();
        let p = project(&measured(), 10_000_000, &facts);
        // 20,000,000 / 256 = 78,125 timers a shard, 1,000 to a SendMessageBatch: 79 calls.
        assert!(close(value(&p, "shard_send_s"), 79.0 * 0.02));
        assert_eq!(value(&p, "bound_8_tick_lead"), 0.0);
        assert!(!p.hard_limits.iter().any(|r| r.contains("Due-index shards")));
        facts.sqs_call_s.value = 1.0;
        let p = project(&measured(), 10_000_000, &facts);
        assert!(close(value(&p, "bound_8_tick_lead"), 79.0 * 1.0 - 60.0));
        assert!(p.hard_limits.iter().any(|r| r.contains("Due-index shards")));
        assert!(!p.quota_raises.iter().any(|r| r.contains("Due-index")));
    }

    #[test]
    fn round_up_keeps_two_significant_digits() {
        assert_eq!(round_up(344_827.6), 350_000.0);
        assert_eq!(round_up(1_667_758.6), 1_700_000.0);
        assert_eq!(round_up(180.0), 180.0);
        assert_eq!(round_up(180.2), 190.0);
        assert_eq!(round_up(57.3), 58.0);
        assert_eq!(round_up(40_000.0), 40_000.0);
        assert_eq!(round_up(0.0), 0.0);
    }

    #[test]
    fn smallest_meeting_finds_the_least_that_meets() {
        let t = |x: f64| 100.0 / x;
        let x = smallest_meeting(t, 1.0, 1_000.0, 4.0).unwrap();
        assert!((x - 25.0).abs() < 1e-6, "{x}");
        assert_eq!(smallest_meeting(t, 50.0, 1_000.0, 4.0), Some(50.0));
        assert_eq!(smallest_meeting(t, 1.0, 20.0, 4.0), None);
    }

    #[test]
    fn ramp_time_matches_the_integral() {
        // Capped after 199 s at 1,000: area (5 + 1,000) / 2 × 199 = 99,997.5.
        assert!(close(ramp_time(99_997.5, 5.0, 5.0, 1_000.0), 199.0));
        assert!(close(
            ramp_time(99_997.5 + 10_000.0, 5.0, 5.0, 1_000.0),
            209.0
        ));
        assert!(close(ramp_time(5_000.0, 1_000.0, 100.0, 1_000.0), 5.0));
        assert_eq!(ramp_time(0.0, 5.0, 5.0, 1_000.0), 0.0);
        assert!(ramp_time(1.0, 5.0, 5.0, 0.0).is_infinite());
    }

    #[test]
    fn raises_and_hard_limits_name_default_value_and_source() {
        let mut m = measured();
        m.hottest_partition.writes = 4_000;
        let mut facts = Facts::default();
        facts.sqs_call_s.value = 1.0;
        let ps = project_all(&m, &facts);
        // At 10,000,000 contracts each shard's 79 sends take 79 s, longer than the tick's lead.
        assert!(ps[1]
            .hard_limits
            .iter()
            .any(|r| r.starts_with("Due-index shards")));
        for p in &ps {
            assert!(p
                .quota_raises
                .iter()
                .any(|r| r.contains("WarmThroughput.WriteUnitsPerSecond")));
            assert!(p
                .quota_raises
                .iter()
                .any(|r| r.contains("table-level write throughput")));
            for r in &p.quota_raises {
                assert!(
                    r.contains(": default ")
                        && r.contains(", raised to ")
                        && r.contains(" (needed ")
                        && r.contains("Why: "),
                    "{r}"
                );
                assert!(r.contains("Source: https://"), "{r}");
            }
            assert!(p
                .hard_limits
                .iter()
                .any(|r| r.starts_with("DynamoDB partition throughput")));
            for r in &p.hard_limits {
                assert!(
                    r.contains(": limit ") && r.contains(", needed ") && r.contains("Why: "),
                    "{r}"
                );
                assert!(r.contains("Source: https://"), "{r}");
            }
        }
    }

    #[test]
    fn every_term_is_finite_and_explained_even_for_an_empty_measurement() {
        let facts = Facts::default();
        for m in [measured(), Measured::default()] {
            for p in project_all(&m, &facts) {
                for t in &p.terms {
                    assert!(t.value.is_finite(), "{} = {}", t.name, t.value);
                    assert!(!t.formula.is_empty() && !t.unit.is_empty(), "{}", t.name);
                }
                let mut names: Vec<&str> = p.terms.iter().map(|t| t.name.as_str()).collect();
                names.sort_unstable();
                let count = names.len();
                names.dedup();
                assert_eq!(names.len(), count, "term names must be unique");
                assert!(p.drain_s.is_finite() && p.p99_lag_s.is_finite());
            }
        }
    }

    #[test]
    fn measured_reads_the_benchmark_json() {
        let json = r#"{
            "contracts": 2000, "moments_at_boundary": 4000, "delivered": 4000, "endpoints": 1,
            "calls": {"dynamodb.TransactWriteItems": 8000},
            "write_units": 40000.0, "read_units": 6000.0,
            "hottest_partition": {"key_class": "due", "writes": 130, "reads": 70,
                                  "share_of_reads": 0.01, "share_of_writes": 0.003},
            "deliver_invocations": 15, "distinct_fire_minutes": 1, "schedules_alive_max": 1200,
            "moments_per_contract_per_month": 4.2, "stored_bytes_per_contract": 3000.0,
            "stored_bytes_per_moment": 2500.0, "log_bytes_per_moment": 600.0,
            "horizon_minutes": 20160
        }"#;
        let m: Measured = serde_json::from_str(json).unwrap();
        assert_eq!(m.calls["dynamodb.TransactWriteItems"], 8_000);
        assert_eq!(m.hottest_partition.writes, 130);
        // A benchmark from before fixed_writes_per_tick reads as 0; a newer one carries it.
        assert_eq!(m.fixed_writes_per_tick, 0);
        let newer = json.replace(
            "\"horizon_minutes\": 20160",
            "\"horizon_minutes\": 20160, \"fixed_writes_per_tick\": 65",
        );
        let newer: Measured = serde_json::from_str(&newer).unwrap();
        assert_eq!(newer.fixed_writes_per_tick, 65);
        let back: Measured = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        let p = project(&m, 1_000_000, &Facts::default());
        // serde_json parses floats to within an ulp unless built with float_roundtrip.
        let round: Projection = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(round.terms.len(), p.terms.len());
        assert_eq!(round.bounded_by, p.bounded_by);
        assert_eq!(
            round.bounded_by_at_default_quotas,
            p.bounded_by_at_default_quotas
        );
        assert_eq!(round.quota_raises, p.quota_raises);
        assert_eq!(round.hard_limits, p.hard_limits);
        assert!(close(round.cost_usd_per_month, p.cost_usd_per_month));
        assert!(close(
            round.drain_s_at_default_quotas,
            p.drain_s_at_default_quotas
        ));
        assert!(close(
            round.p99_lag_s_at_default_quotas,
            p.p99_lag_s_at_default_quotas
        ));
    }

    #[test]
    fn num_is_readable() {
        assert_eq!(num(20_000_000.0), "20,000,000");
        assert_eq!(num(0.0178), "0.0178");
        assert_eq!(num(4.9), "4.9");
        assert_eq!(num(500.0), "500");
        assert_eq!(num(12.26), "12.3");
        assert_eq!(num(0.0), "0");
    }
}
