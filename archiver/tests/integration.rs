//! levibot-archiver's tests, one binary: each file below is a module of it.
//!
//! The S3 API server is moto's server mode (`python3 -m moto.server`, PyPI `moto[server]`,
//! installed by `scripts/install-test-deps`). Why moto rather than s3s-fs: it is a pip install
//! of a few seconds where s3s-fs is a crate of its own to build (minutes on this 2-core
//! machine, and a second Rust dependency tree to keep), it implements the parts of the S3 API
//! the archiver uses (multipart uploads, ListMultipartUploads, path-style requests, ranged and
//! streamed GETs) as AWS does, and it comes with boto3, which the tests use as an independent
//! client to list, read and corrupt objects. Its objects live in the server's memory: a killed
//! server forgets them, so the outage test stops it with SIGSTOP for the "down for a while"
//! part and only kills it before anything was stored.

mod common;

mod archive;
mod config;
mod kill;
mod outage;
mod parquet_s3;
mod readback;
mod verify;
mod watermark;
