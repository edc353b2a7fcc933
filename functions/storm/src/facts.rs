//! The AWS quotas and prices the storm projection relies on, and the modelling assumptions it makes,
//! each with the page it comes from, the date it was checked and what that page says.
//!
//! Values are for us-east-1. They were read from stored copies of the pages (the project's search
//! corpus), not the live web, on [`CHECKED`]; where copies disagree the note says so and the value
//! is the one the projection is less likely to flatter itself with.

use serde::{Deserialize, Serialize};

/// The day every fact below was last checked against its source.
pub const CHECKED: &str = "2026-12-02";

/// One number the projection uses, with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// `quota`, `price` or `assumption`: a quota or price is AWS's word; an assumption is ours and the
    /// source is the page that bounds or motivates it.
    pub kind: String,
    pub source: String,
    pub checked: String,
    /// What the source says, where copies disagree, or the reasoning behind an assumption.
    pub note: String,
}

/// Every quota, price and assumption of the projection. Fields rather than a list so the arithmetic
/// cannot silently look up a misspelt name; [`Facts::all`] lists them for printing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub ddb_table_write_quota: Fact,
    pub ddb_table_read_quota: Fact,
    pub ddb_new_table_writes: Fact,
    pub ddb_new_table_reads: Fact,
    pub ddb_partition_writes: Fact,
    pub ddb_partition_reads: Fact,
    pub lambda_concurrency: Fact,
    pub lambda_scaling_burst: Fact,
    pub lambda_scaling_rate: Fact,
    pub esm_initial_concurrency: Fact,
    pub esm_scale_rate: Fact,
    pub esm_max_concurrency: Fact,
    pub esm_provisioned_rate: Fact,
    pub esm_provisioned_max: Fact,
    pub esm_invokes_per_poller: Fact,
    pub esm_minimum_pollers: Fact,
    pub esm_minimum_pollers_max: Fact,
    pub esm_maximum_pollers: Fact,
    pub scheduler_invocation_rate: Fact,
    pub scheduler_schedules_quota: Fact,
    pub ddb_write_price: Fact,
    pub ddb_read_price: Fact,
    pub ddb_storage_price: Fact,
    pub ddb_storage_free_gb: Fact,
    pub ddb_pitr_price: Fact,
    pub lambda_request_price: Fact,
    pub lambda_gb_s_price: Fact,
    pub lambda_gb_s_price_arm: Fact,
    pub lambda_free_requests: Fact,
    pub lambda_free_gb_s: Fact,
    pub sqs_request_price: Fact,
    pub sqs_free_requests: Fact,
    pub scheduler_invocation_price: Fact,
    pub scheduler_free_invocations: Fact,
    pub logs_ingest_price: Fact,
    pub logs_free_gb: Fact,
    pub secret_price: Fact,
    pub secret_api_price: Fact,
    pub alarm_price: Fact,
    pub alarms_free: Fact,
    pub alarms: Fact,
    pub apigw_http_price: Fact,
    pub dynamodb_call_s: Fact,
    pub sqs_call_s: Fact,
    pub webhook_s: Fact,
    pub sends_in_flight: Fact,
    pub timers_per_message: Fact,
    pub messages_per_batch: Fact,
    pub due_shards: Fact,
    pub due_page: Fact,
    pub shard_invocations_per_tick: Fact,
    pub esm_requests_per_batch: Fact,
    pub hold_s: Fact,
    pub lambda_memory_gb: Fact,
    pub delivery_retention_days: Fact,
    pub billing_writes_per_contract: Fact,
    pub contract_term_months: Fact,
    pub secrets: Fact,
    pub target_lag_1m: Fact,
    pub target_lag_10m: Fact,
    pub tick_lead_s: Fact,
    pub minutes_per_month: Fact,
}

fn fact(name: &str, value: f64, unit: &str, kind: &str, source: &str, note: &str) -> Fact {
    Fact {
        name: name.to_string(),
        value,
        unit: unit.to_string(),
        kind: kind.to_string(),
        source: source.to_string(),
        checked: CHECKED.to_string(),
        note: note.to_string(),
    }
}

const DDB_QUOTAS: &str =
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html";
const DDB_WARM: &str =
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html";
const DDB_PREWARM: &str =
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/pre-warming-on-demand-capacity-mode.html";
const DDB_PRICING: &str = "https://aws.amazon.com/dynamodb/pricing/on-demand/";
const LAMBDA_QUOTAS: &str =
    "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html";
const LAMBDA_SCALING: &str = "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html";
const LAMBDA_PRICING: &str = "https://aws.amazon.com/lambda/pricing/";
const ESM_SCALING: &str = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html";
const ESM_PROVISIONED: &str = "https://aws.amazon.com/blogs/aws/aws-lambda-enhances-sqs-processing-with-new-provisioned-mode-3x-faster-scaling-16x-higher-capacity/";
const ESM_POLLER_CONFIG: &str =
    "https://docs.aws.amazon.com/lambda/latest/api/API_ProvisionedPollerConfig.html";
const SCHEDULER_QUOTAS: &str =
    "https://docs.aws.amazon.com/scheduler/latest/UserGuide/scheduler-quotas.html";
const SCHEDULER_TYPES: &str =
    "https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html";
const SCHEDULER_PRICING: &str = "https://aws.amazon.com/eventbridge/pricing/";
const SQS_PRICING: &str = "https://aws.amazon.com/sqs/pricing/";
const LOGS_PRICING: &str = "https://aws.amazon.com/cloudwatch/pricing/";
/// The deployed template: what it declares is counted from it, not restated.
const TEMPLATE: &str = include_str!("../../../infra/template.yaml");
const SECRETS_PRICING: &str = "https://aws.amazon.com/secrets-manager/pricing/";
const APIGW_PRICING: &str = "https://aws.amazon.com/api-gateway/pricing/";

impl Default for Facts {
    fn default() -> Self {
        Facts {
            ddb_table_write_quota: fact(
                "DynamoDB table-level write throughput (on-demand)",
                40_000.0,
                "WRU/s per table",
                "quota",
                DDB_QUOTAS,
                "Adjustable (Service Quotas). Applies to every on-demand table of the account; the same 40,000 \
                 is the default of the on-demand maximum-throughput page \
                 (on-demand-capacity-mode-max-throughput.html).",
            ),
            ddb_table_read_quota: fact(
                "DynamoDB table-level read throughput (on-demand)",
                40_000.0,
                "RRU/s per table",
                "quota",
                DDB_QUOTAS,
                "Adjustable, as for writes.",
            ),
            ddb_new_table_writes: fact(
                "DynamoDB new on-demand table, warm writes",
                4_000.0,
                "writes/s",
                "quota",
                DDB_PREWARM,
                "A new on-demand table sustains 4,000 writes/s and then doubles its previous peak within \
                 30 minutes; WarmThroughput (CreateTable/UpdateTable) raises it ahead of time, up to the \
                 table-level quota. A new GSI starts at the same values (warm-throughput-scenarios.html). \
                 Raising warm throughput is charged; no price was found in the stored copies.",
            ),
            ddb_new_table_reads: fact(
                "DynamoDB new on-demand table, warm reads",
                12_000.0,
                "reads/s",
                "quota",
                DDB_PREWARM,
                "As for writes.",
            ),
            ddb_partition_writes: fact(
                "DynamoDB writes per partition",
                1_000.0,
                "WCU/s per partition",
                "quota",
                DDB_WARM,
                "Hard limit, not adjustable: each partition serves at most 1,000 write units/s, whatever \
                 the table's warm throughput.",
            ),
            ddb_partition_reads: fact(
                "DynamoDB reads per partition",
                3_000.0,
                "RCU/s per partition",
                "quota",
                DDB_WARM,
                "Hard limit, as for writes.",
            ),
            lambda_concurrency: fact(
                "Lambda concurrent executions",
                1_000.0,
                "per account and Region",
                "quota",
                LAMBDA_QUOTAS,
                "Adjustable to tens of thousands. New accounts start lower and are raised with use; at least \
                 100 must stay unreserved.",
            ),
            lambda_scaling_burst: fact(
                "Lambda scaling, environments available at once",
                1_000.0,
                "execution environments per function",
                "quota",
                LAMBDA_SCALING,
                "The scaling rate is refilled continuously and does not accrue: at any moment at most 1,000 \
                 new environments can be added to a function.",
            ),
            lambda_scaling_rate: fact(
                "Lambda scaling rate",
                100.0,
                "execution environments/s per function",
                "quota",
                LAMBDA_SCALING,
                "1,000 execution environments every 10 s per function (documented since late 2023), i.e. \
                 100/s refilled continuously. Not adjustable.",
            ),
            esm_initial_concurrency: fact(
                "SQS event source, initial concurrency (standard queue)",
                5.0,
                "concurrent invocations",
                "quota",
                ESM_SCALING,
                "When messages become available Lambda starts with five concurrent batches.",
            ),
            esm_scale_rate: fact(
                "SQS event source, scale-up rate (standard mode)",
                300.0,
                "concurrent invocations added per minute",
                "quota",
                ESM_SCALING,
                "Up to 300 more per minute while messages remain (since the November 2023 change; it was 60 \
                 before). Not adjustable in standard mode.",
            ),
            esm_max_concurrency: fact(
                "SQS event source, maximum concurrency (standard mode)",
                1_250.0,
                "concurrent invocations per event source mapping",
                "quota",
                ESM_SCALING,
                "Stored copies disagree: the newer copy of this page (with the provisioned-mode section) and \
                 the November 2023 compute blog say 1,250 concurrent invokes; an older copy says 1,000 \
                 batches. At the default account concurrency of 1,000 the difference does not matter.",
            ),
            esm_provisioned_rate: fact(
                "SQS event source, scale-up rate (provisioned mode)",
                1_000.0,
                "concurrent invocations added per minute",
                "quota",
                ESM_PROVISIONED,
                "Provisioned mode (November 2025): dedicated event pollers, \"3 times faster scaling\". \
                 MinimumPollers keeps pollers warm ahead of a spike; pollers are charged while provisioned.",
            ),
            esm_provisioned_max: fact(
                "SQS event source, maximum concurrency (provisioned mode)",
                20_000.0,
                "concurrent invocations per event source mapping",
                "quota",
                ESM_PROVISIONED,
                "Up to 20,000 concurrency. MaximumPollers defaults to 200 (API_ProvisionedPollerConfig); \
                 copies give its upper bound as 2,000 or 10,000.",
            ),
            esm_invokes_per_poller: fact(
                "SQS event source, invocations per provisioned poller",
                10.0,
                "concurrent invocations per poller",
                "quota",
                ESM_SCALING,
                "Each event poller handles up to 10 concurrent invokes (and about 1 MB/s), so MaximumPollers \
                 200 allows 2,000 concurrent invocations.",
            ),
            esm_minimum_pollers: fact(
                "SQS event source, MinimumPollers (provisioned mode), default and least",
                2.0,
                "pollers",
                "quota",
                ESM_POLLER_CONFIG,
                "For Amazon SQS event source mappings MinimumPollers defaults to 2 and must be at least 2 \
                 (MSK and Kafka: 1). The projection never provisions fewer.",
            ),
            esm_minimum_pollers_max: fact(
                "SQS event source, MinimumPollers (provisioned mode), at most",
                200.0,
                "pollers",
                "quota",
                ESM_POLLER_CONFIG,
                "Valid range 1 to 200 (2 to 200 for SQS): at most 200 pollers, 2,000 concurrent \
                 invocations at 10 per poller, are warm when a boundary's messages appear.",
            ),
            esm_maximum_pollers: fact(
                "SQS event source, MaximumPollers (provisioned mode), default",
                200.0,
                "pollers",
                "quota",
                ESM_POLLER_CONFIG,
                "Default 200; copies give the upper bound for SQS as 2,000 or 10,000. The projection \
                 raises it no further than esm_provisioned_max / esm_invokes_per_poller (2,000).",
            ),
            scheduler_invocation_rate: fact(
                "EventBridge Scheduler invocations throttle",
                1_000.0,
                "invocations/s",
                "quota",
                SCHEDULER_QUOTAS,
                "Primary Regions; adjustable. Above it invocations are delayed, not dropped. Raised from 500 \
                 on 2024-08-21.",
            ),
            scheduler_schedules_quota: fact(
                "EventBridge Scheduler schedules",
                10_000_000.0,
                "schedules per account and Region",
                "quota",
                SCHEDULER_QUOTAS,
                "Adjustable; 1,000,000 before 2024-08-21, as older copies of the page still show.",
            ),
            ddb_write_price: fact(
                "DynamoDB on-demand write request units",
                0.625,
                "USD per million WRU",
                "price",
                DDB_PRICING,
                "Since the November 2024 cut (was 1.25); many third-party summaries still quote 1.25. The \
                 stored copy renders rates as tokens; the figure is the one in infra/README.md (checked \
                 2026-11-25) and in several dated 2026 write-ups.",
            ),
            ddb_read_price: fact(
                "DynamoDB on-demand read request units",
                0.125,
                "USD per million RRU",
                "price",
                DDB_PRICING,
                "Since the November 2024 cut (was 0.25).",
            ),
            ddb_storage_price: fact(
                "DynamoDB storage (Standard table class)",
                0.25,
                "USD per GB-month",
                "price",
                DDB_PRICING,
                "GB = 2^30 bytes (DynamoDB measures in binary units); indexes count.",
            ),
            ddb_storage_free_gb: fact(
                "DynamoDB storage free tier",
                25.0,
                "GB-month",
                "price",
                DDB_PRICING,
                "Always free, per account and Region.",
            ),
            ddb_pitr_price: fact(
                "DynamoDB point-in-time recovery",
                0.20,
                "USD per GB-month",
                "price",
                DDB_PRICING,
                "On the table size incl. local indexes; no free tier. The template enables PITR.",
            ),
            lambda_request_price: fact(
                "Lambda requests",
                0.20,
                "USD per million requests",
                "price",
                LAMBDA_PRICING,
                "Same for x86_64 and arm64.",
            ),
            lambda_gb_s_price: fact(
                "Lambda duration, x86_64",
                0.000_016_666_7,
                "USD per GB-s",
                "price",
                LAMBDA_PRICING,
                "First pricing tier (up to 6 billion GB-s a month); the template's default architecture. \
                 Cold-start (init) time is not modelled: Rust cold starts are short.",
            ),
            lambda_gb_s_price_arm: fact(
                "Lambda duration, arm64",
                0.000_013_333_4,
                "USD per GB-s",
                "price",
                LAMBDA_PRICING,
                "Not used by the projection (the template defaults to x86_64); about 20 % less.",
            ),
            lambda_free_requests: fact(
                "Lambda free tier, requests",
                1_000_000.0,
                "requests per month",
                "price",
                LAMBDA_PRICING,
                "Per account, shared by all functions (api and schedule too).",
            ),
            lambda_free_gb_s: fact(
                "Lambda free tier, compute",
                400_000.0,
                "GB-s per month",
                "price",
                LAMBDA_PRICING,
                "Per account, shared by all functions.",
            ),
            sqs_request_price: fact(
                "SQS standard queue requests",
                0.40,
                "USD per million requests",
                "price",
                SQS_PRICING,
                "Each 64 KB chunk of a request's payload is a request; first 100 billion a month.",
            ),
            sqs_free_requests: fact(
                "SQS free tier",
                1_000_000.0,
                "requests per month",
                "price",
                SQS_PRICING,
                "Always free.",
            ),
            scheduler_invocation_price: fact(
                "EventBridge Scheduler invocations",
                1.00,
                "USD per million invocations",
                "price",
                SCHEDULER_PRICING,
                "AWS Price List AWSEvents, usage type ScheduledInvocation: $1.00 per million after the free \
                 14 million (Tokyo $1.25). No charge found for the schedule API calls.",
            ),
            scheduler_free_invocations: fact(
                "EventBridge Scheduler free invocations",
                14_000_000.0,
                "invocations per month",
                "price",
                SCHEDULER_PRICING,
                "Per account, every month.",
            ),
            logs_ingest_price: fact(
                "CloudWatch Logs ingestion (Standard class)",
                0.50,
                "USD per GB",
                "price",
                LOGS_PRICING,
                "Lambda logs are tiered since 2025-05-01; the first tier (to 10 TB a month) keeps 0.50.",
            ),
            logs_free_gb: fact(
                "CloudWatch Logs free tier",
                5.0,
                "GB per month",
                "price",
                LOGS_PRICING,
                "5 GB of ingestion a month, as third-party summaries of the page give it; the stored copy \
                 renders no number.",
            ),
            secret_price: fact(
                "Secrets Manager secret",
                0.40,
                "USD per secret-month",
                "price",
                SECRETS_PRICING,
                "Prorated; replicas count as secrets.",
            ),
            secret_api_price: fact(
                "Secrets Manager API calls",
                0.05,
                "USD per 10,000 calls",
                "price",
                SECRETS_PRICING,
                "The stored copy shows the rate in its pricing examples.",
            ),
            alarm_price: fact(
                "CloudWatch alarm (standard resolution)",
                0.10,
                "USD per alarm-month",
                "price",
                LOGS_PRICING,
                "Per alarm metric at standard resolution (60 s periods, which every alarm of the template uses).",
            ),
            alarms_free: fact(
                "CloudWatch alarms free tier",
                10.0,
                "alarms per month",
                "price",
                LOGS_PRICING,
                "Always free: 10 standard-resolution alarm metrics a month, per account.",
            ),
            alarms: fact(
                "Alarms in the template",
                TEMPLATE.matches("Type: AWS::CloudWatch::Alarm").count() as f64,
                "alarms",
                "assumption",
                "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html",
                "Counted in infra/template.yaml as built into this benchmark: the failure and dead-letter \
                 queues, the stream's iterator age, each function's errors and throttles, the table's \
                 throttled requests and EventBridge Scheduler's dropped, throttled and failed invocations.",
            ),
            apigw_http_price: fact(
                "API Gateway HTTP API requests",
                1.00,
                "USD per million requests",
                "price",
                APIGW_PRICING,
                "First 300 million a month (then 0.90), metered per 512 KB. The 12-month free tier (1 million \
                 a month) is ignored.",
            ),
            dynamodb_call_s: fact(
                "Latency of one DynamoDB call from Lambda",
                0.010,
                "s",
                "assumption",
                "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Introduction.html",
                "DynamoDB promises single-digit milliseconds at the service; 10 ms leaves room for a \
                 TransactWriteItems, TLS and the SDK.",
            ),
            sqs_call_s: fact(
                "Latency of one SQS (or other AWS) call from Lambda",
                0.020,
                "s",
                "assumption",
                "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/best-practices-message-processing.html",
                "AWS publishes no latency figure for SQS; 20 ms is an assumption, twice DynamoDB's because a \
                 send replicates the message before it returns. Calls to services other than DynamoDB and \
                 SQS use it too.",
            ),
            webhook_s: fact(
                "Webhook round trip at the receiver",
                0.250,
                "s",
                "assumption",
                "https://docs.stripe.com/webhooks",
                "Receivers are told to answer 2xx before doing work; 250 ms covers TLS setup to a new host \
                 and a quick handler. A slow receiver scales the Lambda bounds and the compute cost.",
            ),
            sends_in_flight: fact(
                "Webhook sends in flight per invocation",
                64.0,
                "sends",
                "assumption",
                LAMBDA_QUOTAS,
                "The deliver design; well inside the 1,024 file descriptors of an execution environment. A \
                 moment's DynamoDB calls run in sequence, moments run in parallel up to this.",
            ),
            timers_per_message: fact(
                "Timers per SQS message",
                lifecycle_aws::queue::TIMERS_PER_MESSAGE as f64,
                "timers",
                "assumption",
                "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html",
                "The deliver design: a shard handler packs up to ~100 timers due at the same second into one \
                 message, far below the message size limit.",
            ),
            messages_per_batch: fact(
                "SQS messages per event-source batch",
                10.0,
                "messages",
                "assumption",
                ESM_SCALING,
                "The template's BatchSize (10, no batching window); ReceiveMessage returns at most 10, and \
                 SendMessageBatch takes at most 10. Real batches can be smaller than 10; the measured fill \
                 carries that over (see the fill_efficiency term).",
            ),
            due_shards: fact(
                "Shards of the due index per minute",
                lifecycle_aws::dynamodb::DUE_SHARDS as f64,
                "shards",
                "assumption",
                DDB_WARM,
                "The deliver design (lifecycle_aws::dynamodb::DUE_SHARDS): a boundary's moments spread \
                 over that many partition keys of the due index, each taking 1,000 WCU/s.",
            ),
            due_page: fact(
                "Timers per page of a tick's shard step",
                lifecycle_functions::tick::PAGE as f64,
                "timers",
                "assumption",
                DDB_WARM,
                "The deliver design (lifecycle_functions::tick::PAGE): a shard step reads its minute a \
                 page at a time and saves its cursor on an item of its own after each page, unless the \
                 whole minute of the shard fits in its first page.",
            ),
            shard_invocations_per_tick: fact(
                "deliver invocations a tick spends on shard messages",
                lifecycle_aws::dynamodb::DUE_SHARDS.div_ceil(10) as f64,
                "invocations per tick",
                "assumption",
                ESM_SCALING,
                "The tick sends one SQS message per shard of the due index; the event source hands them \
                 over in batches of up to 10, so about ceil(shards / 10) invocations. Used only to separate \
                 the measured timer-batch invocations from the fixed per-tick ones.",
            ),
            esm_requests_per_batch: fact(
                "SQS requests the event source makes per batch",
                2.0,
                "requests per batch",
                "assumption",
                "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html",
                "A ReceiveMessage and a DeleteMessageBatch per delivered batch, billed to the account. Added \
                 only when the measured calls contain no sqs.ReceiveMessage (moto has no event source). Idle \
                 long polls between storms are not counted.",
            ),
            hold_s: fact(
                "Hold before a moment's second",
                2.0,
                "s",
                "assumption",
                "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-timers.html",
                "The deliver design: SQS delays are whole seconds, so a timer becomes visible at most ~2 s \
                 early and the invocation holds until its second. Counted once in the lag (precision) and \
                 in full in every timer-batch invocation's billed duration (an upper bound).",
            ),
            lambda_memory_gb: fact(
                "deliver memory",
                0.5,
                "GB",
                "assumption",
                "https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html",
                "512 MB for the storm (the template's MemorySize is 256 today); GB-s scale with it.",
            ),
            delivery_retention_days: fact(
                "Retention of fired moments' records (DeliveryRetentionDays)",
                90.0,
                "days",
                "assumption",
                "https://docs.svix.com/retention/",
                "Assumed: the deployment's DeliveryRetentionDays parameter (DELIVERY_RETENTION_DAYS of the \
                 functions), default 90. Messages, deliveries and attempts expire by DynamoDB TTL 90 days \
                 after they fire (TTL deletes are free, \
                 docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html), so at steady state \
                 the table holds 90 days of them. The source: Svix retains message payloads 90 days by \
                 default (payload_retention_period per message); Stripe lists and retrieves events for \
                 30 days (docs.stripe.com/api/events/list).",
            ),
            billing_writes_per_contract: fact(
                "Billing write requests per contract per month",
                1.0,
                "requests per contract-month",
                "assumption",
                APIGW_PRICING,
                "Assumed: one API write (usage, commit or credit change) per contract per month through the \
                 HTTP API. Its Lambda and DynamoDB cost is not in the boundary measurement.",
            ),
            contract_term_months: fact(
                "Months a contract's ingest is spread over",
                12.0,
                "months",
                "assumption",
                DDB_PRICING,
                "The workload's contracts run 12 months, each ingested once (its contract and commit \
                 writes, and every schedule item they plan): the measured ingest write units per \
                 contract, spread over its term, are a month's share. A renewal is a new contract.",
            ),
            secrets: fact(
                "Secrets stored",
                2.0,
                "secrets",
                "assumption",
                SECRETS_PRICING,
                "The API key secret and the main key secret (infra/template.yaml); webhook signing \
                 secrets live in the table, sealed under the main key. Each is read once per cold start.",
            ),
            target_lag_1m: fact(
                "Target p99 lag of a boundary at 1,000,000 contracts",
                60.0,
                "s",
                "assumption",
                SCHEDULER_TYPES,
                "The product's target: every webhook of the boundary attempted within a minute of its \
                 moment, the precision EventBridge Scheduler itself gives one-time schedules. Applies up \
                 to 1,000,000 contracts; quota raises are sized to it less the hold.",
            ),
            target_lag_10m: fact(
                "Target p99 lag of a boundary at 10,000,000 contracts",
                600.0,
                "s",
                "assumption",
                SCHEDULER_TYPES,
                "The product's target above 1,000,000 contracts: every webhook of the boundary attempted \
                 within 10 minutes of its moment (a flexible time window of EventBridge Scheduler is as \
                 coarse). Quota raises are sized to it less the hold.",
            ),
            tick_lead_s: fact(
                "Lead of a tick before its minute",
                60.0,
                "s",
                "assumption",
                SCHEDULER_TYPES,
                "The tick is scheduled at minute - 60 s and Scheduler fires within that minute, so the shard \
                 handlers have up to 60 s to queue the minute's timers.",
            ),
            minutes_per_month: fact(
                "Distinct fire minutes in a month, at most",
                43_200.0,
                "minutes",
                "assumption",
                SCHEDULER_PRICING,
                "30 days × 1,440 minutes: at most one tick per minute, whatever the number of contracts.",
            ),
        }
    }
}

impl Facts {
    /// The target p99 lag of a boundary at `contracts` contracts: [`Facts::target_lag_1m`] up to
    /// 1,000,000, [`Facts::target_lag_10m`] above.
    pub fn target_lag(&self, contracts: u64) -> &Fact {
        if contracts <= 1_000_000 {
            &self.target_lag_1m
        } else {
            &self.target_lag_10m
        }
    }

    /// Every fact, in the order of the struct, for printing and checking.
    pub fn all(&self) -> Vec<&Fact> {
        vec![
            &self.ddb_table_write_quota,
            &self.ddb_table_read_quota,
            &self.ddb_new_table_writes,
            &self.ddb_new_table_reads,
            &self.ddb_partition_writes,
            &self.ddb_partition_reads,
            &self.lambda_concurrency,
            &self.lambda_scaling_burst,
            &self.lambda_scaling_rate,
            &self.esm_initial_concurrency,
            &self.esm_scale_rate,
            &self.esm_max_concurrency,
            &self.esm_provisioned_rate,
            &self.esm_provisioned_max,
            &self.esm_invokes_per_poller,
            &self.esm_minimum_pollers,
            &self.esm_minimum_pollers_max,
            &self.esm_maximum_pollers,
            &self.scheduler_invocation_rate,
            &self.scheduler_schedules_quota,
            &self.ddb_write_price,
            &self.ddb_read_price,
            &self.ddb_storage_price,
            &self.ddb_storage_free_gb,
            &self.ddb_pitr_price,
            &self.lambda_request_price,
            &self.lambda_gb_s_price,
            &self.lambda_gb_s_price_arm,
            &self.lambda_free_requests,
            &self.lambda_free_gb_s,
            &self.sqs_request_price,
            &self.sqs_free_requests,
            &self.scheduler_invocation_price,
            &self.scheduler_free_invocations,
            &self.logs_ingest_price,
            &self.logs_free_gb,
            &self.secret_price,
            &self.secret_api_price,
            &self.alarm_price,
            &self.alarms_free,
            &self.alarms,
            &self.apigw_http_price,
            &self.dynamodb_call_s,
            &self.sqs_call_s,
            &self.webhook_s,
            &self.sends_in_flight,
            &self.timers_per_message,
            &self.messages_per_batch,
            &self.due_shards,
            &self.due_page,
            &self.shard_invocations_per_tick,
            &self.esm_requests_per_batch,
            &self.hold_s,
            &self.lambda_memory_gb,
            &self.delivery_retention_days,
            &self.billing_writes_per_contract,
            &self.contract_term_months,
            &self.secrets,
            &self.target_lag_1m,
            &self.target_lag_10m,
            &self.tick_lead_s,
            &self.minutes_per_month,
        ]
    }
}

/// A fact's value as written in its source: integers grouped by thousands, fractions in full.
pub fn format_value(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        group_thousands(value as i64)
    } else {
        format!("{value}")
    }
}

pub(crate) fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A Markdown table cell: pipes would end the cell and newlines the row.
pub(crate) fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The facts as a Markdown table: name, value, unit, kind, source, date checked and note.
pub fn print(facts: &Facts) -> String {
    let mut out = String::from(
        "| Fact | Value | Unit | Kind | Source | Checked | Note |\n|---|---:|---|---|---|---|---|\n",
    );
    for f in facts.all() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&f.name),
            format_value(f.value),
            cell(&f.unit),
            cell(&f.kind),
            cell(&f.source),
            cell(&f.checked),
            cell(&f.note),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_has_an_https_source_a_date_and_a_unit() {
        for f in Facts::default().all() {
            assert!(f.source.starts_with("https://"), "{}: {}", f.name, f.source);
            assert!(!f.source.contains(' '), "{}: one URL per source", f.name);
            assert_eq!(f.checked, CHECKED, "{}", f.name);
            assert!(!f.name.is_empty() && !f.unit.is_empty() && !f.note.is_empty());
            assert!(
                ["quota", "price", "assumption"].contains(&f.kind.as_str()),
                "{}",
                f.name
            );
            assert!(f.value.is_finite() && f.value > 0.0, "{}", f.name);
        }
    }

    #[test]
    fn all_lists_every_field_once() {
        let facts = Facts::default();
        let json = serde_json::to_value(&facts).unwrap();
        let fields = json.as_object().unwrap().len();
        assert_eq!(facts.all().len(), fields);
        let mut names: Vec<&str> = facts.all().iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), fields, "fact names must be unique");
    }

    #[test]
    fn quotas_are_consistent_with_each_other() {
        let f = Facts::default();
        assert!(f.ddb_partition_writes.value < f.ddb_new_table_writes.value);
        assert!(f.ddb_new_table_writes.value < f.ddb_table_write_quota.value);
        assert!(f.ddb_new_table_reads.value < f.ddb_table_read_quota.value);
        assert!(f.esm_max_concurrency.value < f.esm_provisioned_max.value);
        assert!(f.esm_scale_rate.value < f.esm_provisioned_rate.value);
        assert!(f.esm_minimum_pollers.value < f.esm_minimum_pollers_max.value);
        assert!(
            f.esm_maximum_pollers.value * f.esm_invokes_per_poller.value
                <= f.esm_provisioned_max.value
        );
        // The targets leave room for the hold, and the larger size has the longer one.
        assert!(f.hold_s.value < f.target_lag_1m.value);
        assert!(f.target_lag_1m.value < f.target_lag_10m.value);
        assert_eq!(f.target_lag(1_000_000).value, 60.0);
        assert_eq!(f.target_lag(10_000_000).value, 600.0);
        assert_eq!(f.delivery_retention_days.value, 90.0);
        // 1,000 environments every 10 s.
        assert_eq!(
            f.lambda_scaling_rate.value * 10.0,
            f.lambda_scaling_burst.value
        );
    }

    #[test]
    fn print_has_one_row_per_fact_and_escapes_pipes() {
        let mut facts = Facts::default();
        facts.secrets.note = "a | b".into();
        let table = print(&facts);
        assert_eq!(table.lines().count(), 2 + facts.all().len());
        assert!(table.contains("a \\| b"));
        assert!(table.contains("| 40,000 |"));
        assert!(table.contains("| 0.0000166667 |"));
    }

    #[test]
    fn format_value_groups_integers_only() {
        assert_eq!(format_value(10_000_000.0), "10,000,000");
        assert_eq!(format_value(0.625), "0.625");
        assert_eq!(format_value(-1234.0), "-1,234");
        assert_eq!(format_value(999.0), "999");
    }
}
