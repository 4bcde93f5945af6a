//! OCI Distribution client: push, pull, fetch-blob and resolve against registries.

pub mod auth;
pub mod client;
pub mod progress;
pub mod pull;
pub mod push;
pub mod referrers;
pub mod sign;
