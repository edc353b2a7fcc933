//! The month after the boundary, on a sample deployment of its own: what
//! the moments a contract's ingest deferred beyond the horizon
//! (`lifecycle_core::horizon`) cost as the sweep plans them again, a
//! month's worth at a time. A fresh table on the same moto server ingests
//! a sample of the workload's contracts three days before the boundary;
//! then the clock moves over the month after the boundary an hour at a
//! time, the sweep's materialisation and the stream it sets off running at
//! each hour, every AWS call counted. The sweep runs every 5 minutes; the
//! workload's deferred moments lie at least an hour apart, so hourly steps
//! plan each entity again as often as the sweep would. The sweep's other
//! work (its index reads for the minutes entering the horizon) is per
//! period, not per contract, and not counted here.

use crate::stack::{Options, Stack};
use crate::workload;
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// Entities planned per materialisation page, as the sweep does.
const PAGE: usize = 100;

/// A month of materialisation, per contract of the sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonthCost {
    pub sample_contracts: u64,
    pub write_units_per_contract: f64,
    pub read_units_per_contract: f64,
    /// Entities planned again, per contract.
    pub replans_per_contract: f64,
}

pub async fn measure(receiver_url: &str, contracts: usize) -> MonthCost {
    let mut stack = Stack::new(Options::default()).await;
    workload::prepare(&mut stack, receiver_url, contracts).await;
    stack.counter.reset();
    let mut replans = 0;
    for hour in 0..31 * 24 {
        stack
            .clock
            .set(workload::boundary() + Duration::hours(hour));
        let mut planned_now = 0;
        loop {
            let page = (stack.rt.service.materialise(PAGE).await).expect("materialise a page");
            planned_now += page;
            if page < PAGE {
                break;
            }
        }
        if planned_now > 0 {
            stack.drain().await;
        }
        replans += planned_now;
    }
    let tally = stack.counter.tally();
    let per = |x: f64| x / contracts.max(1) as f64;
    MonthCost {
        sample_contracts: contracts as u64,
        write_units_per_contract: per(tally.write_units),
        read_units_per_contract: per(tally.read_units),
        replans_per_contract: per(replans as f64),
    }
}
