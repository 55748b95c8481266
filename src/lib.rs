//! alertctx: raw security telemetry in, agent-safe context bundles out.
//!
//! Read the modules in the order an event passes through them:
//!
//! 1. [`decode`]    — framing (NDJSON, JSON streams, envelopes, CEF/LEEF/syslog lines,
//!    Zeek TSV, Windows event XML) and parsing into a borrowed value tree.
//! 2. [`normalize`] — source detection and the mapping engine that runs the declarative
//!    `schemas/mappings/<source>.toml` files, producing an OCSF 1.8 event.
//! 3. [`sanitize`]  — untrusted text neutralised: invisible and control characters, escape
//!    sequences and smuggled text removed, strings capped, instruction-like text flagged.
//! 4. [`enrich`]    — asset (CMDB), user (directory) and geo (MaxMind) context.
//! 5. [`tag`]       — declarative rules that attach namespaced tags.
//! 6. [`dedup`]     — fingerprints, an event-time window, counts. ([`exact`] recognises a
//!    repeat of a recent record's exact bytes before step 1 and hands the window its key.)
//! 7. [`score`]     — data-gap codes and the 0–100 quality score.
//! 8. [`bundle`]    — the layered context bundle and its serialisation.
//!
//! [`pipeline`] calls those stages in order; it does no I/O. It runs them in three steps —
//! decode to sanitise (any thread), dedup and enrich (one thread, in input order), tag to
//! serialise (any thread) — so output never depends on the thread count. The shells that do
//! I/O feed it records and report what it returns: `alertctx process` in [`cli`], the Kafka
//! worker in [`worker`], and [`explain`], which replays one bundle from its provenance.

pub mod alloc;
pub mod bundle;
pub mod cli;
pub mod cond;
pub mod config;
pub mod decode;
pub mod dedup;
pub mod demo;
pub mod enrich;
pub mod exact;
pub mod explain;
pub mod generate;
pub mod http;
pub mod iptext;
pub mod jsonout;
pub mod keyed;
pub mod memo;
pub mod metrics;
pub mod normalize;
pub mod ocsf;
pub mod path;
pub mod pipeline;
pub mod produce;
pub mod record;
pub mod sanitize;
pub mod score;
pub mod tag;
pub mod timeparse;
pub mod word;
pub mod worker;
