//! Engine integration tests: one binary, real files under temp config dirs, real processes.
#![allow(
    clippy::unwrap_used,
    reason = "a failed unwrap is a failed test, with its location"
)]

mod cli;
mod clients;
mod daemon;
mod disk_faults;
mod endpoint_setting;
mod engine;
mod hostile;
mod interop;
mod layout;
mod manifest;
mod oauth_fixture;
mod offerings;
mod questions;
mod quotas;
mod registry_api;
mod registry_crash;
mod registry_files;
mod relay;
mod sdk;
mod serve;
mod signin;
mod stdio;
mod support;
mod sync;
