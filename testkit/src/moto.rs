//! moto's S3 server (`python3 -m moto.server`, PyPI `moto[server]`, installed by
//! `scripts/install-test-deps`) on loopback, with boto3 as a second, independent client: the
//! archiver's tests and the daemon's archive tests run against it. Why moto: see
//! `archiver/tests/integration.rs`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket [`Moto::make_bucket`] makes.
pub const BUCKET: &str = "levibot-archive";

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// moto's S3 server on 127.0.0.1, killed when dropped.
pub struct Moto {
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Moto {
    /// Starts the server on a free port and makes the bucket.
    pub fn start(scratch: &Path) -> Moto {
        let mut moto = Moto::on_port(scratch, free_port());
        moto.run();
        moto.make_bucket();
        moto
    }

    /// A server on `port`, not started yet.
    pub fn on_port(scratch: &Path, port: u16) -> Moto {
        let available = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            available,
            "moto's S3 server is not installed (python3 -m moto.server, with boto3): \
             run scripts/install-test-deps"
        );
        Moto {
            port,
            child: None,
            log: scratch.join(format!("moto-{port}.log")),
        }
    }

    /// Starts (or restarts) the server process and waits until it accepts connections.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "moto already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("moto log");
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("python3 -m moto.server starts");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not listen on {addr} within 60 s; its log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server (its objects are gone with it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the server: requests hang while it is stopped.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("moto runs").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// What the server logged so far: one line per request (`"GET /bucket/key HTTP/1.1" 200`).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn make_bucket(&self) {
        self.boto(&format!("s3.create_bucket(Bucket='{BUCKET}')"));
    }

    /// Runs Python with `s3`, a boto3 client of this server; returns its stdout.
    pub fn boto(&self, code: &str) -> String {
        let script = format!(
            "import boto3, json, sys\n\
             s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')\n{code}\n",
            self.endpoint()
        );
        let output = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "boto3 failed: {}\n{script}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        let out = self.boto(&format!(
            "p = s3.get_paginator('list_objects_v2')\n\
             keys = [o['Key'] for page in p.paginate(Bucket='{BUCKET}') for o in page.get('Contents', [])]\n\
             print(json.dumps(sorted(keys)))"
        ));
        serde_json::from_str(&out).expect("keys as JSON")
    }

    /// An object's bytes.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let out = self.boto(&format!(
            "sys.stdout.write(s3.get_object(Bucket='{BUCKET}', Key='{key}')['Body'].read().hex())"
        ));
        (0..out.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&out[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn uploads_in_progress(&self) -> usize {
        let out = self.boto(&format!(
            "print(len(s3.list_multipart_uploads(Bucket='{BUCKET}').get('Uploads', [])))"
        ));
        out.trim().parse().expect("a count")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped server is continued first, so that it dies of the SIGKILL at once.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
