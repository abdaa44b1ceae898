//! A usage object read by hand: serde's derived reading of it cost more than the rest of a small
//! request's ledger. Only what is plainly written is read here (keys and strings of printable
//! ASCII without escapes, counts as plain integers, shallow nesting); anything else is left to
//! serde (`None`), so what is read is always what serde would read.

use super::{InputDetails, OutputDetails, RawUsage};

/// Nesting deeper than this, in a member keyward does not read, is left to serde.
const MAX_DEPTH: u8 = 16;

/// The bytes a plainly written string holds: printable ASCII but its quote and backslash.
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut byte = 0x20;
    while byte < 0x7f {
        plain[byte] = byte != b'"' as usize && byte != b'\\' as usize;
        byte += 1;
    }
    plain
};

/// The usage object `json` starts with, if it is plainly written; `None` when serde must read
/// it (an unusual spelling, or not valid JSON at all).
pub(super) fn usage(json: &[u8]) -> Option<RawUsage> {
    let mut scanner = Scanner { bytes: json, at: 0 };
    let mut usage = RawUsage::default();
    // Which fields were named: serde refuses an object that names one twice.
    let mut named = 0u8;
    let mut key = scanner.first_key()?;
    while let Some(name) = key {
        let bit = match name {
            b"input_tokens" => 1,
            b"output_tokens" => 2,
            b"input_tokens_details" => 4,
            b"output_tokens_details" => 8,
            b"cache_read_input_tokens" => 16,
            b"cache_creation_input_tokens" => 32,
            _ => 0,
        };
        if named & bit != 0 {
            return None;
        }
        named |= bit;
        match bit {
            0 => scanner.skip_value(MAX_DEPTH)?,
            1 => usage.input_tokens = scanner.count()?,
            2 => usage.output_tokens = scanner.count()?,
            4 => {
                usage.input_tokens_details = scanner
                    .details(b"cached_tokens")?
                    .map(|cached_tokens| InputDetails { cached_tokens })
            }
            8 => {
                usage.output_tokens_details = scanner
                    .details(b"reasoning_tokens")?
                    .map(|reasoning_tokens| OutputDetails { reasoning_tokens })
            }
            16 => usage.cache_read_input_tokens = scanner.count()?,
            _ => usage.cache_creation_input_tokens = scanner.count()?,
        }
        key = scanner.next_key()?;
    }
    Some(usage)
}

/// The text and where reading it has got to; every reading method moves past what it read, or
/// answers `None` (serde must read the object).
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// The next byte after white space, not consumed.
    fn peek(&mut self) -> Option<u8> {
        loop {
            let byte = *self.bytes.get(self.at)?;
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        if self.peek()? != byte {
            return None;
        }
        self.at += 1;
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.peek()?;
        if !self.bytes[self.at..].starts_with(word) {
            return None;
        }
        self.at += word.len();
        Some(())
    }

    /// An object's start and its first key, or `None` if it has no members.
    fn first_key(&mut self) -> Option<Option<&'a [u8]>> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(None);
        }
        self.key().map(Some)
    }

    /// After a member's value: the next member's key, or `None` at the object's end.
    fn next_key(&mut self) -> Option<Option<&'a [u8]>> {
        match self.peek()? {
            b',' => {
                self.at += 1;
                self.key().map(Some)
            }
            b'}' => {
                self.at += 1;
                Some(None)
            }
            _ => None,
        }
    }

    /// A member's key and its colon.
    fn key(&mut self) -> Option<&'a [u8]> {
        let key = self.string()?;
        self.eat(b':')?;
        Some(key)
    }

    /// A string of printable ASCII without escapes: its text. (A byte at a time, each looked up
    /// in [`PLAIN`]: the strings of a usage object are short, and a vector search's set-up costs
    /// more than they do.)
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|&byte| !PLAIN[usize::from(byte)])?;
        if rest[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// A count: `null`, or an integer that fits.
    fn count(&mut self) -> Option<Option<u64>> {
        let first = self.peek()?;
        if first == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let start = self.at;
        let mut count: u64 = 0;
        while let Some(digit) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            count = count
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        // A leading zero, a fraction or an exponent is serde's to judge.
        if digits == 0
            || (first == b'0' && digits > 1)
            || matches!(self.bytes.get(self.at), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        Some(Some(count))
    }

    /// A details object (or `null`): the count it names under `wanted`.
    fn details(&mut self, wanted: &[u8]) -> Option<Option<Option<u64>>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let mut count = None;
        let mut named = false;
        let mut key = self.first_key()?;
        while let Some(name) = key {
            if name != wanted {
                self.skip_value(MAX_DEPTH)?;
            } else if std::mem::replace(&mut named, true) {
                return None;
            } else {
                count = self.count()?;
            }
            key = self.next_key()?;
        }
        Some(Some(count))
    }

    /// Any value, read only to pass it.
    fn skip_value(&mut self, depth: u8) -> Option<()> {
        match self.peek()? {
            b'{' => {
                let mut key = self.first_key()?;
                while key.is_some() {
                    self.skip_value(depth.checked_sub(1)?)?;
                    key = self.next_key()?;
                }
                Some(())
            }
            b'[' => {
                self.at += 1;
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth.checked_sub(1)?)?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// A number as JSON writes it: `-`, an integer without leading zeros, a fraction, an
    /// exponent.
    fn number(&mut self) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let first = *self.bytes.get(self.at)?;
        let whole = self.digits();
        if whole == 0 || (first == b'0' && whole > 1) {
            return None;
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.bytes.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.bytes.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Passes digits: how many.
    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at - start
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    fn by_serde(json: &[u8]) -> Option<RawUsage> {
        RawUsage::deserialize(&mut serde_json::Deserializer::from_slice(json)).ok()
    }

    /// Any JSON value, as text (escapes, non-ASCII, deep nesting and odd numbers included).
    fn any_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| serde_json::json!(n).to_string()),
            prop::sample::select(vec![
                "-0",
                "1.5e-3",
                "2E+8",
                "0.25",
                "123456789012345678901234"
            ])
            .prop_map(str::to_string),
            "[ -~é\\n\"\\\\]{0,12}".prop_map(|s| serde_json::json!(s).to_string()),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z_]{1,8}", inner), 0..4).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// A count as upstreams write it, or as none should.
    fn count(plain: bool) -> BoxedStrategy<String> {
        let plain_count = prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..100_000).prop_map(|n| n.to_string()),
            Just("null".to_string()),
        ];
        if plain {
            return plain_count.boxed();
        }
        prop_oneof![
            4 => plain_count,
            1 => prop::sample::select(vec![
                "-1", "1.0", "1e3", "01", "\"7\"", "18446744073709551616", "true", "[]", "{}", "nul",
            ])
            .prop_map(str::to_string),
        ]
        .boxed()
    }

    fn details(key: &'static str, plain: bool) -> BoxedStrategy<String> {
        // At most one of each member: serde refuses a count named twice.
        let object = (
            prop::option::of(count(plain)),
            prop::option::of(any_value()),
        )
            .prop_map(move |(count, other)| {
                let count = count.map(|c| format!("\"{key}\":{c}"));
                let other = other.map(|v| format!("\"audio_tokens\":{v}"));
                let members: Vec<String> = other.into_iter().chain(count).collect();
                format!("{{{}}}", members.join(","))
            });
        if plain {
            return prop_oneof![Just("null".to_string()), object].boxed();
        }
        prop_oneof![
            4 => object,
            1 => Just("null".to_string()),
            1 => count(false).prop_map(|c| format!("[{c}]")),
            1 => count(false).prop_map(move |c| format!("{{\"{key}\":{c},\"{key}\":1}}")),
        ]
        .boxed()
    }

    fn member(plain: bool) -> impl Strategy<Value = (String, String)> {
        let key = |k: &'static str| Just(k.to_string());
        prop_oneof![
            (key("input_tokens"), count(plain)),
            (key("output_tokens"), count(plain)),
            (key("cache_read_input_tokens"), count(plain)),
            (key("cache_creation_input_tokens"), count(plain)),
            (key("input_tokens_details"), details("cached_tokens", plain)),
            (
                key("output_tokens_details"),
                details("reasoning_tokens", plain)
            ),
            (key("total_tokens"), count(plain)),
            ("[a-z_]{1,12}", any_value()),
            (key("service_tier"), any_value()),
        ]
    }

    /// Members joined into an object, with white space between tokens, and what follows it.
    fn object(members: Vec<(String, String)>, space: &str) -> String {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("{space}\"{k}\"{space}:{space}{v}{space}"))
            .collect();
        format!("{{{}}}}}}}\n\n", members.join(","))
    }

    /// The members, each key's first only (serde refuses a field named twice).
    fn distinct(mut members: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut seen = std::collections::HashSet::new();
        members.retain(|(key, _)| seen.insert(key.clone()));
        members
    }

    proptest! {
        /// Whatever the object, what the scanner reads is what serde reads.
        #[test]
        fn read_as_serde_reads(
            members in prop::collection::vec(member(false), 0..9),
            space in prop::sample::select(vec!["", " ", "\n\t ", "\r\n"]),
        ) {
            let json = object(members, space);
            if let Some(scanned) = usage(json.as_bytes()) {
                prop_assert_eq!(Some(scanned), by_serde(json.as_bytes()), "{}", json);
            }
        }

        /// A plainly written usage object is read without serde.
        #[test]
        fn plain_objects_are_read(
            members in prop::collection::vec(member(true), 0..9).prop_map(distinct),
        ) {
            let json = object(members, "");
            let by_serde = by_serde(json.as_bytes());
            prop_assert!(by_serde.is_some(), "{}", json);
            // Unknown members holding escapes or non-ASCII text are serde's; the rest is read.
            if json.is_ascii() && !json.contains('\\') {
                prop_assert_eq!(usage(json.as_bytes()), by_serde, "{}", json);
            }
        }

        /// Cut short or with a byte changed, an object is read as serde reads it or left to it.
        #[test]
        fn damaged_objects(
            members in prop::collection::vec(member(false), 0..6),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<bool>(),
        ) {
            let mut json = object(members, " ").into_bytes();
            let at = at.index(json.len());
            if cut {
                json.truncate(at);
            } else {
                json[at] = byte;
            }
            if let Some(scanned) = usage(&json) {
                prop_assert_eq!(Some(scanned), by_serde(&json), "{}", String::from_utf8_lossy(&json));
            }
        }
    }

    /// The usage objects the upstreams send are read by hand.
    #[test]
    fn upstream_usage_objects() {
        for json in [
            r#"{"input_tokens":1,"output_tokens":1,"total_tokens":2}"#,
            r#"{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":12},"total_tokens":150}"#,
            r#"{"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":80,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","server_tool_use":null}"#,
            r#"{"output_tokens":42}"#,
            r#"{ "input_tokens" : 5 , "output_tokens" : 7 }"#,
        ] {
            let scanned = usage(json.as_bytes());
            assert!(scanned.is_some(), "{json}");
            assert_eq!(scanned, by_serde(json.as_bytes()), "{json}");
        }
    }
}
