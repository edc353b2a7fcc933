//! The Markdown the storm benchmark pastes between markers into infra/README.md: what was measured
//! on moto, the projection to each deployment size (with the quota raises it applies and at default
//! quotas), every term of each projection and the facts they rest on.

use std::fmt::Write;

use crate::facts::{self, cell, group_thousands, Facts};
use crate::projection::{num, Measured, Projection};

/// The measured table, the projection table with its quota raises, the terms of every projection
/// and the facts table, in that order.
pub fn markdown(measured: &Measured, projections: &[Projection], facts: &Facts) -> String {
    let mut out = String::new();
    measured_section(&mut out, measured);
    projection_section(&mut out, projections, facts);
    for p in projections {
        terms_section(&mut out, p);
    }
    out.push_str("### Facts\n\n");
    out.push_str(
        "Quotas and prices are AWS's (us-east-1), read from stored copies of the pages named; \
         assumptions are ours, with the page that bounds them. Check the live pages before relying \
         on a figure.\n\n",
    );
    out.push_str(&facts::print(facts));
    out
}

fn int(n: u64) -> String {
    group_thousands(n as i64)
}

fn usd(x: f64) -> String {
    if x.abs() >= 1_000.0 {
        format!("${}", group_thousands(x.round() as i64))
    } else {
        format!("${x:.2}")
    }
}

fn per(count: f64, moments: u64) -> String {
    if moments == 0 {
        "–".to_string()
    } else {
        num(count / moments as f64)
    }
}

fn row(out: &mut String, cells: &[String]) {
    out.push('|');
    for c in cells {
        if c.is_empty() {
            out.push_str(" |");
        } else {
            let _ = write!(out, " {} |", cell(c));
        }
    }
    out.push('\n');
}

fn measured_section(out: &mut String, m: &Measured) {
    let moments = m.moments_at_boundary;
    let _ = writeln!(
        out,
        "### Measured on moto: {} contracts\n\nThe boundary phase only: from the first tick of \
         the boundary's minute until the last webhook arrived.\n",
        int(m.contracts)
    );
    out.push_str("| Quantity | Value | Per moment |\n|---|---:|---:|\n");
    let expected = moments.saturating_mul(m.endpoints);
    let complete = if m.delivered == expected {
        format!(
            "yes: {} distinct webhooks = {} moments × {} endpoint(s)",
            int(m.delivered),
            int(moments),
            int(m.endpoints)
        )
    } else {
        format!(
            "no: {} distinct webhooks for {} moments × {} endpoint(s)",
            int(m.delivered),
            int(moments),
            int(m.endpoints)
        )
    };
    let hot = &m.hottest_partition;
    let scheduler: u64 = m
        .calls
        .iter()
        .filter(|(op, _)| op.to_ascii_lowercase().starts_with("scheduler."))
        .map(|(_, n)| n)
        .sum();
    let scheduler_per_delivered = if m.delivered == 0 {
        "–".to_string()
    } else {
        num(scheduler as f64 / m.delivered as f64)
    };
    let rows = [
        ["Contracts".to_string(), int(m.contracts), String::new()],
        [
            "Moments due at the boundary".to_string(),
            int(moments),
            String::new(),
        ],
        [
            "Webhooks delivered (distinct)".to_string(),
            int(m.delivered),
            per(m.delivered as f64, moments),
        ],
        [
            "Every moment delivered once, none missing".to_string(),
            complete,
            String::new(),
        ],
        [
            "DynamoDB write request units".to_string(),
            num(m.write_units),
            per(m.write_units, moments),
        ],
        [
            "DynamoDB read request units".to_string(),
            num(m.read_units),
            per(m.read_units, moments),
        ],
        [
            "Hottest partition key".to_string(),
            format!(
                "{}: {} writes ({} % of writes), {} reads ({} % of reads)",
                hot.key_class,
                int(hot.writes),
                num(hot.share_of_writes * 100.0),
                int(hot.reads),
                num(hot.share_of_reads * 100.0)
            ),
            format!("{} writes", per(hot.writes as f64, moments)),
        ],
        [
            "Writes on the tick's own TICK# item, per tick (not scaled)".to_string(),
            int(m.fixed_writes_per_tick),
            String::new(),
        ],
        [
            "deliver invocations (ticks, shard pages, timer batches)".to_string(),
            int(m.deliver_invocations),
            per(m.deliver_invocations as f64, moments),
        ],
        [
            "Ticks (distinct fire minutes)".to_string(),
            int(m.distinct_fire_minutes),
            String::new(),
        ],
        [
            "EventBridge Scheduler calls per delivered moment".to_string(),
            scheduler_per_delivered,
            String::new(),
        ],
        [
            "EventBridge schedules alive at most (whole run)".to_string(),
            int(m.schedules_alive_max),
            String::new(),
        ],
        [
            "Moments per contract in an average month".to_string(),
            num(m.moments_per_contract_per_month),
            String::new(),
        ],
        [
            "DynamoDB write units of a contract's ingest (its writes and all they planned)"
                .to_string(),
            num(m.ingest_write_units_per_contract),
            String::new(),
        ],
        [
            "DynamoDB write / read units of a contract's month of materialisation (deferred moments planned again)"
                .to_string(),
            format!(
                "{} / {}",
                num(m.materialise_write_units_per_contract_month),
                num(m.materialise_read_units_per_contract_month)
            ),
            String::new(),
        ],
        [
            "Stored bytes per contract, before the boundary".to_string(),
            num(m.stored_bytes_per_contract),
            String::new(),
        ],
        [
            "Stored bytes a fired moment adds".to_string(),
            num(m.stored_bytes_per_moment),
            String::new(),
        ],
        [
            "Log bytes per moment".to_string(),
            num(m.log_bytes_per_moment),
            String::new(),
        ],
        [
            "Registration horizon".to_string(),
            format!("{} minutes", int(m.horizon_minutes)),
            String::new(),
        ],
    ];
    for r in rows {
        row(out, &r);
    }
    out.push_str("\n| Call (service.Operation) | Calls | Per moment |\n|---|---:|---:|\n");
    if m.calls.is_empty() {
        out.push_str("| (none recorded) | 0 | 0 |\n");
    }
    for (op, &n) in &m.calls {
        row(out, &[op.clone(), int(n), per(n as f64, moments)]);
    }
    out.push('\n');
}

fn cost_label(name: &str) -> String {
    match name {
        "cost_dynamodb_writes" => "DynamoDB writes".to_string(),
        "cost_dynamodb_reads" => "DynamoDB reads".to_string(),
        "cost_dynamodb_storage" => "DynamoDB storage".to_string(),
        "cost_dynamodb_pitr" => "DynamoDB point-in-time recovery".to_string(),
        "cost_lambda_requests" => "Lambda requests".to_string(),
        "cost_lambda_compute" => "Lambda compute".to_string(),
        "cost_sqs" => "SQS requests".to_string(),
        "cost_scheduler" => "EventBridge Scheduler invocations".to_string(),
        "cost_cloudwatch_logs" => "CloudWatch Logs ingestion".to_string(),
        "cost_secrets_manager" => "Secrets Manager".to_string(),
        "cost_cloudwatch_alarms" => "CloudWatch alarms".to_string(),
        "cost_api_gateway" => "API Gateway (billing writes)".to_string(),
        other => other.trim_start_matches("cost_").replace('_', " "),
    }
}

fn projection_section(out: &mut String, projections: &[Projection], facts: &Facts) {
    let sizes: Vec<String> = projections.iter().map(|p| int(p.contracts)).collect();
    let _ = writeln!(
        out,
        "### Projection to {} contracts\n",
        if sizes.is_empty() {
            "no sizes".to_string()
        } else {
            sizes.join(" and ")
        }
    );
    let _ = writeln!(
        out,
        "Per-moment quantities scale with the moments, per-minute ones (ticks and the tick's writes on \
         its own item) do not. The drain is the largest of independent lower bounds; p99 lag is the \
         time by which 99 % of the moments are drained plus the {} s hold. The target is p99 within \
         {} s up to 1,000,000 contracts and {} s above. Every adjustable quota whose default keeps its \
         bound over the target less the hold is raised to what that needs, rounded up, and the \
         drain is computed with those raises (listed under the table); it is shown at default quotas \
         too, with WarmThroughput set to the table quota. Hard limits are never raised: where one keeps \
         the drain over the target, it is listed with what would lift it. Cost is a month of the \
         whole deployment at list prices, free tiers deducted; the raises' own charges (warm \
         throughput, provisioned pollers) are not in it.\n",
        num(facts.hold_s.value),
        num(facts.target_lag_1m.value),
        num(facts.target_lag_10m.value)
    );
    let mut header = vec![String::new()];
    header.extend(sizes.iter().map(|s| format!("{s} contracts")));
    row(out, &header);
    let mut rule = vec!["---".to_string()];
    rule.extend(projections.iter().map(|_| "---:".to_string()));
    let _ = writeln!(out, "|{}|", rule.join("|"));
    let line = |out: &mut String, label: &str, value: &dyn Fn(&Projection) -> String| {
        let mut cells = vec![label.to_string()];
        cells.extend(projections.iter().map(value));
        row(out, &cells);
    };
    let term = |p: &Projection, name: &str| p.term(name).map(|t| num(t.value)).unwrap_or_default();
    line(out, "Moments at the boundary", &|p| {
        int(p.moments_at_boundary)
    });
    line(out, "Target p99 lag (s)", &|p| term(p, "target_lag_s"));
    line(out, "**Drain (s), with the raises**", &|p| {
        format!("**{}**", num(p.drain_s))
    });
    line(out, "**p99 lag (s), with the raises**", &|p| {
        format!("**{}**", num(p.p99_lag_s))
    });
    line(out, "Bounded by, with the raises", &|p| {
        p.bounded_by.clone()
    });
    line(out, "Drain (s), at default quotas", &|p| {
        num(p.drain_s_at_default_quotas)
    });
    line(out, "p99 lag (s), at default quotas", &|p| {
        num(p.p99_lag_s_at_default_quotas)
    });
    line(out, "Bounded by, at default quotas", &|p| {
        p.bounded_by_at_default_quotas.clone()
    });
    line(
        out,
        "Live schedules at most",
        &|p| int(p.live_schedules_max),
    );
    line(
        out,
        "Lambda GB-s a month",
        &|p| num(p.lambda_gb_s_per_month),
    );
    line(out, "**Cost a month**", &|p| {
        format!("**{}**", usd(p.cost_usd_per_month))
    });
    let cost_names: Vec<String> = projections
        .first()
        .map(|p| {
            p.terms
                .iter()
                .filter(|t| t.name.starts_with("cost_"))
                .map(|t| t.name.clone())
                .collect()
        })
        .unwrap_or_default();
    for name in &cost_names {
        line(out, &format!("· {}", cost_label(name)), &|p| {
            p.term(name).map(|t| usd(t.value)).unwrap_or_default()
        });
    }
    line(out, "Quota raises applied", &|p| {
        p.quota_raises.len().to_string()
    });
    line(out, "Hard limits over the target", &|p| {
        p.hard_limits.len().to_string()
    });
    out.push('\n');
    for p in projections {
        let _ = writeln!(
            out,
            "Quota raises applied at {} contracts:\n",
            int(p.contracts)
        );
        if p.quota_raises.is_empty() {
            out.push_str("- none: every adjustable bound is within the target at its default.\n");
        }
        for r in &p.quota_raises {
            let _ = writeln!(out, "- {r}");
        }
        out.push('\n');
        if !p.hard_limits.is_empty() {
            let _ = writeln!(
                out,
                "Hard limits over the target at {} contracts (not raised; the drain above stands):\n",
                int(p.contracts)
            );
            for r in &p.hard_limits {
                let _ = writeln!(out, "- {r}");
            }
            out.push('\n');
        }
    }
}

fn terms_section(out: &mut String, p: &Projection) {
    let _ = writeln!(
        out,
        "#### Terms for {} contracts\n\n| Term | Formula | Value | Unit |\n|---|---|---:|---|",
        int(p.contracts)
    );
    for t in &p.terms {
        row(
            out,
            &[
                format!("`{}`", t.name),
                t.formula.clone(),
                if t.unit.starts_with("USD") {
                    format!("{:.2}", t.value)
                } else {
                    num(t.value)
                },
                t.unit.clone(),
            ],
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::{project_all, Hottest};

    fn measured() -> Measured {
        Measured {
            contracts: 2_000,
            moments_at_boundary: 4_000,
            delivered: 4_000,
            endpoints: 1,
            calls: [
                ("dynamodb.TransactWriteItems".to_string(), 8_000),
                ("sqs.SendMessageBatch".to_string(), 7),
                ("scheduler.CreateSchedule".to_string(), 2),
                ("odd|name.Op".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            write_units: 40_000.0,
            read_units: 6_000.0,
            hottest_partition: Hottest {
                key_class: "due#shard".into(),
                writes: 130,
                reads: 70,
                share_of_reads: 0.012,
                share_of_writes: 0.003,
            },
            deliver_invocations: 15,
            distinct_fire_minutes: 1,
            schedules_alive_max: 1_200,
            moments_per_contract_per_month: 4.2,
            stored_bytes_per_contract: 3_000.0,
            stored_bytes_per_moment: 2_500.0,
            log_bytes_per_moment: 600.0,
            horizon_minutes: 20_160,
            fixed_writes_per_tick: 65,
            ingest_write_units_per_contract: 0.0,
            materialise_write_units_per_contract_month: 0.0,
            materialise_read_units_per_contract_month: 0.0,
        }
    }

    fn render() -> (String, Vec<Projection>, Facts) {
        let facts = Facts::default();
        let m = measured();
        let ps = project_all(&m, &facts);
        (markdown(&m, &ps, &facts), ps, facts)
    }

    #[test]
    fn has_every_section_and_size() {
        let (md, ps, _) = render();
        for heading in [
            "### Measured on moto: 2,000 contracts",
            "### Projection to 1,000,000 and 10,000,000 contracts",
            "#### Terms for 1,000,000 contracts",
            "#### Terms for 10,000,000 contracts",
            "### Facts",
        ] {
            assert!(md.contains(heading), "missing {heading}");
        }
        assert!(md.contains("| | 1,000,000 contracts | 10,000,000 contracts |"));
        assert!(md.contains("| Target p99 lag (s) | 60 | 600 |"));
        let row = |label: &str, f: &dyn Fn(&Projection) -> String| {
            format!("| {label} | {} | {} |", f(&ps[0]), f(&ps[1]))
        };
        for (label, f) in [
            (
                "**Drain (s), with the raises**",
                &(|p: &Projection| format!("**{}**", num(p.drain_s)))
                    as &dyn Fn(&Projection) -> String,
            ),
            ("**p99 lag (s), with the raises**", &|p: &Projection| {
                format!("**{}**", num(p.p99_lag_s))
            }),
            ("Drain (s), at default quotas", &|p: &Projection| {
                num(p.drain_s_at_default_quotas)
            }),
            ("p99 lag (s), at default quotas", &|p: &Projection| {
                num(p.p99_lag_s_at_default_quotas)
            }),
        ] {
            let r = row(label, f);
            assert!(md.contains(&r), "missing {r}");
        }
        // (40,000 − 65) WRU / 4,000 moments × 2,000,000 + 65 at 40,000 WRU/s.
        assert!(md.contains("| Drain (s), at default quotas | 499 | 4,992 |"));
        assert!(
            md.contains("| Writes on the tick's own TICK# item, per tick (not scaled) | 65 | |")
        );
        for p in &ps {
            assert!(md.contains(&p.bounded_by));
            assert!(md.contains(&p.bounded_by_at_default_quotas));
            assert!(!p.quota_raises.is_empty());
            for r in &p.quota_raises {
                assert!(md.contains(&format!("- {r}\n")));
            }
            for r in &p.hard_limits {
                assert!(md.contains(&format!("- {r}\n")));
            }
        }
        assert!(md.contains("Quota raises applied at 1,000,000 contracts:"));
        assert!(!md.contains("NaN") && !md.contains("| inf"));
    }

    #[test]
    fn measured_rows_show_calls_per_moment_and_scheduler_per_delivered() {
        let (md, _, _) = render();
        assert!(md.contains("| dynamodb.TransactWriteItems | 8,000 | 2 |"));
        assert!(md.contains("| EventBridge Scheduler calls per delivered moment | 0.0005 | |"));
        assert!(md.contains("yes: 4,000 distinct webhooks = 4,000 moments × 1 endpoint(s)"));
        assert!(md.contains("| odd\\|name.Op | 1 |"));
    }

    #[test]
    fn tables_keep_their_column_count() {
        let (md, ps, facts) = render();
        let columns = |line: &str| line.replace("\\|", "").matches('|').count();
        let mut current = 0;
        for line in md.lines() {
            if !line.starts_with('|') {
                current = 0;
                continue;
            }
            if current == 0 {
                current = columns(line);
            }
            assert_eq!(columns(line), current, "{line}");
        }
        let term_rows = md.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(term_rows, ps.iter().map(|p| p.terms.len()).sum::<usize>());
        assert!(md.contains(&facts::print(&facts)));
    }

    #[test]
    fn cost_rows_add_up_to_the_total_row() {
        let (md, ps, _) = render();
        let p = &ps[0];
        assert!(md.contains(&format!("**{}**", usd(p.cost_usd_per_month))));
        // ((40,000 − 65) / 4,000 × 4,200,000 + 65 × 43,200) WRU at $0.625 per million.
        assert!(md.contains("| · DynamoDB writes | $27.96 |"));
    }
}
