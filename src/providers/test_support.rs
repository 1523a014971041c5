//! Test helpers every adapter's tests share: the fixtures, and the small deterministic
//! generator and JSON mutator behind the no-panic fuzz loops (deterministic, so a failure
//! reproduces from the seed; proptest covers the random search).

use serde_json::{Map, Value};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A fixture's bytes, exactly as stored.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The bytes the fixture signatures cover: the file minus its single trailing newline.
pub fn signed_bytes(name: &str) -> Vec<u8> {
    let mut bytes = fixture(name);
    assert_eq!(bytes.pop(), Some(b'\n'), "{name} must end with a newline");
    assert_ne!(bytes.last(), Some(&b'\n'), "{name} must end with exactly one newline");
    bytes
}

/// A fixture parsed as JSON.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

/// The names of the fixtures starting with `prefix` and ending with `suffix`, sorted.
pub fn fixture_names(prefix: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("fixtures dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// Deterministic xorshift64* so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// Up to `max_len` bytes, from `alphabet` or any byte.
    pub fn bytes(&mut self, max_len: usize, alphabet: Option<&[u8]>) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| match alphabet {
                Some(a) => a[self.below(a.len())],
                None => self.next() as u8,
            })
            .collect()
    }
}

/// Replaces a random node of `v` with a value of a random type, or with one of the
/// provider's `interesting` strings (timestamps, ids, numbers as text ...).
pub fn mutate_value(v: &mut Value, rng: &mut Rng, interesting: &[&str]) {
    let replacement = match rng.below(8) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => serde_json::json!(rng.next() as i64),
        3 => serde_json::json!(-1.5e300),
        4 => Value::String(String::new()),
        5 if !interesting.is_empty() => Value::String(interesting[rng.below(interesting.len())].to_owned()),
        6 => Value::Array(vec![]),
        _ => Value::Object(Map::new()),
    };
    let mut node = v;
    loop {
        let children = match node {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if children == 0 || rng.below(4) == 0 {
            *node = replacement;
            return;
        }
        let pick = rng.below(children);
        node = match node {
            Value::Array(a) => &mut a[pick],
            Value::Object(o) => match o.values_mut().nth(pick) {
                Some(child) => child,
                None => return,
            },
            _ => return,
        };
    }
}

/// One random byte-level edit (truncate, flip a bit, insert from `alphabet`, delete).
pub fn mutate_bytes(body: &mut Vec<u8>, rng: &mut Rng, alphabet: &[u8]) {
    if body.is_empty() {
        return;
    }
    let i = rng.below(body.len());
    match rng.below(4) {
        0 => body.truncate(i),
        1 => body[i] ^= 1 << rng.below(8),
        2 => body.insert(i, alphabet[rng.below(alphabet.len())]),
        _ => {
            body.remove(i);
        }
    }
}
