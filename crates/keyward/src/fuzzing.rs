//! Entry points for the fuzz targets in `fuzz/`: one `pub fn` per target, taking the fuzzer's
//! bytes, driving one parser of outside input the way keyward does, and panicking only when a
//! property the rest of keyward relies on is broken (a panic inside keyward is a finding too).
//!
//! Compiled only with the `fuzzing` feature, so the parsers stay `pub(crate)` in every build a
//! user runs. How a target reads its input (which bytes choose what) is the format of its seeds
//! in `fuzz/seeds/<target>/`: change it and the seeds must change with it. The seeds also run
//! here as a plain test (`cargo test -p keyward --features fuzzing --lib fuzzing`).

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::codex::auth_file::AuthDocument;
use crate::codex::backend;
use crate::codex::claims;
use crate::config::{self, Config};
use crate::credential::{SourceContents, TokenAnswer};
use crate::dialect::gemini::{self, Call, Framing};
use crate::dialect::responses::{self, parse_event, Assembler, StreamEvent};
use crate::dialect::sse::{Event, SseParser};
use crate::dialect::{
    chat, completions, count_tokens, messages, Answer, Flow, Invalid, Translated,
};
use crate::secret::Secret;

/// The Codex CLI's `auth.json` (written by another program): parsed and read; when it parses, a
/// refresh's write-back (with and without a new refresh and id token) must give a file that
/// parses again, keeps every field it did not write, and still reads as the login it was.
pub fn auth_json(data: &[u8]) {
    let Ok(document) = AuthDocument::parse(data) else {
        return;
    };
    let before = document.contents();
    let every_token = TokenAnswer {
        access_token: Secret::new("fuzz-access"),
        refresh_token: Some(Secret::new("fuzz-refresh")),
        id_token: Some(Secret::new("fuzz-id")),
    };
    let access_only = TokenAnswer {
        access_token: Secret::new("fuzz-access"),
        refresh_token: None,
        id_token: None,
    };
    let was_login = matches!(before, Ok(SourceContents::Login(_)));
    for answer in [&every_token, &access_only] {
        check_write_back(&document.root, answer, was_login);
    }
}

fn check_write_back(original: &Map<String, Value>, answer: &TokenAnswer, was_login: bool) {
    let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 123_456_789).unwrap_or_default();
    let mut document = AuthDocument {
        root: original.clone(),
    };
    document.apply(answer, now);
    let written = match AuthDocument::parse(&document.to_bytes()) {
        Ok(written) => written,
        Err(e) => panic!("the written auth.json does not parse again: {e:?}"),
    };
    for (key, value) in original {
        if key != "tokens" && key != "last_refresh" {
            assert_eq!(
                written.root.get(key),
                Some(value),
                "write-back changed the top-level field `{key}`"
            );
        }
    }
    let tokens = written.root.get("tokens").and_then(Value::as_object);
    let Some(tokens) = tokens else {
        panic!("write-back left no `tokens` object");
    };
    let ours = [
        ("access_token", Some(&answer.access_token)),
        ("refresh_token", answer.refresh_token.as_ref()),
        ("id_token", answer.id_token.as_ref()),
    ];
    for (key, token) in ours {
        if let Some(token) = token {
            assert_eq!(
                tokens.get(key).and_then(Value::as_str),
                Some(token.expose()),
                "write-back did not write `tokens.{key}`"
            );
        }
    }
    if let Some(Value::Object(old_tokens)) = original.get("tokens") {
        for (key, value) in old_tokens {
            let rewritten = ours
                .iter()
                .any(|(ours, token)| ours == key && token.is_some());
            if !rewritten {
                assert_eq!(
                    tokens.get(key),
                    Some(value),
                    "write-back changed `tokens.{key}`, which the answer did not carry"
                );
            }
        }
    }
    if was_login {
        match written.contents() {
            Ok(SourceContents::Login(credential)) => {
                assert_eq!(credential.access_token.expose(), "fuzz-access");
                assert_eq!(credential.last_refresh, Some(now));
            }
            Ok(_) => panic!("a login no longer reads as a login after write-back"),
            Err(e) => panic!("a login no longer reads after write-back: {e:?}"),
        }
    }
}

/// JWT claims, decoded from the token endpoint's and the file's tokens: the input as a token,
/// and the input as a token's payload, which must decode whenever it is a JSON object.
pub fn jwt_claims(data: &[u8]) {
    let _ = claims::decode(&String::from_utf8_lossy(data));
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    let decoded = claims::decode(&format!("eyJhbGciOiJub25lIn0.{payload}.sig"));
    if matches!(serde_json::from_slice(data), Ok(Value::Object(_))) {
        assert!(
            decoded.is_ok(),
            "a JSON object payload was refused: {decoded:?}"
        );
    }
}

/// The upstream's server-sent events: the first byte says how many cuts follow (up to 15, two
/// bytes each, little-endian positions); the rest is the stream. Fed in the pieces the cuts make
/// it must give the same events as fed whole; each event then goes through `parse_event` and the
/// assembler of non-streamed answers.
pub fn sse(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let cut_bytes = usize::from(count % 16) * 2;
    let (cuts, stream) = rest.split_at(cut_bytes.min(rest.len()));
    let mut positions: Vec<usize> = cuts
        .as_chunks::<2>()
        .0
        .iter()
        .map(|&pair| usize::from(u16::from_le_bytes(pair)) % (stream.len() + 1))
        .collect();
    positions.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for end in positions.into_iter().chain([stream.len()]) {
        pieces.push(&stream[start..end]);
        start = end;
    }
    let whole = sse_events(&[stream]);
    assert_eq!(
        sse_events(&pieces),
        whole,
        "cutting the stream changed its events"
    );
    let mut assembler = Assembler::default();
    for event in whole.iter().filter_map(parse_event) {
        assembler.push(event);
    }
    let _ = assembler.finish(None);
}

fn sse_events(pieces: &[&[u8]]) -> Vec<Event> {
    let mut parser = SseParser::default();
    let mut events: Vec<Event> = pieces.iter().flat_map(|piece| parser.push(piece)).collect();
    events.extend(parser.finish());
    events
}

/// A Chat Completions request: translated, then normalised for the Codex backend.
pub fn chat_request(data: &[u8]) {
    normalise(chat::translate(data));
}

/// A Messages request: translated, counted (as `/v1/messages/count_tokens` does), then
/// normalised for the Codex backend.
pub fn messages_request(data: &[u8]) {
    let translated = messages::translate(data);
    if let Ok(translated) = &translated {
        let _ = count_tokens::count(&translated.body);
    }
    normalise(translated);
}

/// A Gemini request (the body of `:streamGenerateContent`): translated, counted as
/// `:countTokens` does, then normalised for the Codex backend.
pub fn gemini_request(data: &[u8]) {
    if let Ok(translated) = gemini::translate_count("gemini-3-pro", data) {
        let _ = count_tokens::count(&translated.body);
    }
    normalise(gemini_sse(data));
}

/// A Gemini request as the body of a call streamed as server-sent events.
fn gemini_sse(data: &[u8]) -> Result<Translated, Invalid> {
    gemini::translate(&gemini_call(Framing::Sse), data)
}

/// A Gemini request as the body of a call streamed as a JSON array.
fn gemini_array(data: &[u8]) -> Result<Translated, Invalid> {
    gemini::translate(&gemini_call(Framing::Array), data)
}

fn gemini_call(framing: Framing) -> Call {
    Call {
        model: "gemini-3-pro".into(),
        framing,
    }
}

/// A legacy completions request: translated, then normalised for the Codex backend.
pub fn completions_request(data: &[u8]) {
    normalise(completions::translate(data));
}

/// A Responses request: checked, then normalised for the Codex backend.
pub fn responses_request(data: &[u8]) {
    normalise(responses::translate(data));
}

fn normalise(translated: Result<Translated, Invalid>) {
    let Ok(mut translated) = translated else {
        return;
    };
    if let Ok(normalised) = backend::normalise(&mut translated.body) {
        for field in &normalised.dropped {
            let _ = crate::dialect::client_name(&translated.renamed, field);
        }
    }
}

/// Used when the input's first line is not a request the dialect accepts, so every input still
/// drives a stream (the stop sequences and usage make the translators do the most).
const CHAT_REQUEST: &[u8] = br#"{"model":"gpt-5.1","messages":[{"role":"user","content":"Say hello"}],"stream":true,"stream_options":{"include_usage":true},"stop":["STOP","\n\n"]}"#;
const COMPLETIONS_REQUEST: &[u8] = br#"{"model":"gpt-5.1","prompt":"Say hello","stream":true,"echo":true,"stream_options":{"include_usage":true},"stop":["STOP"]}"#;
const MESSAGES_REQUEST: &[u8] = br#"{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"thinking":{"type":"enabled","budget_tokens":1024},"stop_sequences":["STOP"],"messages":[{"role":"user","content":"Say hello"}]}"#;
const GEMINI_REQUEST: &[u8] = br#"{"contents":[{"role":"user","parts":[{"text":"Say hello"}]}],"generationConfig":{"stopSequences":["STOP"],"thinkingConfig":{"includeThoughts":true}}}"#;

/// A Chat Completions (or legacy completions) answer from upstream events. The first byte is
/// control: bit 0 ends the stream with a broken transport, bit 1 speaks legacy completions
/// instead of chat. Then the first line is the client's request (a fixed one when it does not
/// translate), and each further line one upstream event's JSON. Every event and the assembled
/// response also go through `Answer::reply`. The output must be UTF-8 SSE chunk frames closed by
/// `[DONE]` or an error frame, with nothing after either.
pub fn chat_stream(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let (translate, fixed): (Translate, _) = if control & 2 == 0 {
        (chat::translate, CHAT_REQUEST)
    } else {
        (completions::translate, COMPLETIONS_REQUEST)
    };
    let out = answer_stream(translate, fixed, control & 1 == 1, rest);
    check_chunk_frames(&out);
}

/// An Anthropic Messages answer from upstream events; the input as for [`chat_stream`] (bit 1 of
/// the control byte unused). The output must be well-formed Anthropic SSE: `message_start`,
/// content blocks opened, filled with deltas of their kind and closed one at a time in index
/// order, then `message_delta` and `message_stop`; or an `error` frame, with nothing after it.
pub fn messages_stream(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let out = answer_stream(
        messages::translate,
        MESSAGES_REQUEST,
        control & 1 == 1,
        rest,
    );
    check_messages_frames(&out);
}

/// A Gemini answer from upstream events; the input as for [`chat_stream`], bit 1 of the control
/// byte framing the stream as a JSON array instead of server-sent events. The output must be a
/// stream of `GenerateContentResponse` chunks whose last one alone carries a `finishReason`, or
/// that ends with Google's error object, with nothing after it: SSE frames without event names,
/// or one JSON array.
pub fn gemini_stream(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let array = control & 2 == 2;
    let translate: Translate = if array { gemini_array } else { gemini_sse };
    let out = answer_stream(translate, GEMINI_REQUEST, control & 1 == 1, rest);
    let chunks: Vec<Value> = if array {
        match serde_json::from_slice(&out) {
            Ok(chunks) => chunks,
            Err(e) => panic!(
                "the stream is not one JSON array ({e}): {}",
                String::from_utf8_lossy(&out)
            ),
        }
    } else {
        sse_frames(&out)
            .into_iter()
            .map(|frame| {
                assert_eq!(frame.event, None, "Gemini's frames carry no event name");
                match serde_json::from_str(&frame.data) {
                    Ok(chunk) => chunk,
                    Err(e) => panic!("a frame is not JSON ({e}): {:?}", frame.data),
                }
            })
            .collect()
    };
    check_gemini_chunks(&chunks);
}

fn check_gemini_chunks(chunks: &[Value]) {
    assert!(!chunks.is_empty(), "the stream was closed without a chunk");
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        if let Some(error) = chunk.get("error") {
            assert!(last, "chunks after an error: {chunks:?}");
            assert!(
                error["code"].is_u64()
                    && error["status"].is_string()
                    && error["message"].is_string(),
                "not Google's error object: {chunk}"
            );
            continue;
        }
        let candidate = &chunk["candidates"][0];
        assert_eq!(candidate["content"]["role"], "model", "{chunk}");
        let Some(parts) = candidate["content"]["parts"].as_array() else {
            panic!("a chunk without parts: {chunk}");
        };
        for part in parts {
            if let Some(call) = part.get("functionCall") {
                assert!(call["args"].is_object(), "args must be an object: {chunk}");
            } else {
                assert!(part["text"].is_string(), "a part of no known kind: {chunk}");
            }
        }
        assert_eq!(
            candidate.get("finishReason").is_some(),
            last,
            "only the last chunk carries a finishReason: {chunks:?}"
        );
    }
}

/// A Responses answer completed to the public API's shape (`PublicStream`), from upstream events:
/// the first byte is control (bit 0 ends the stream with a broken transport; bit 1 names each
/// event by its data's `type`, as the Codex backend does; bit 2 spreads each event's JSON over
/// lines after its commas, as a multi-line `data:` would), each further line one upstream
/// event's JSON, fed as an SSE event. Each line's JSON and its
/// `response` also go through `public_object`. The output must be UTF-8 SSE frames, each named
/// by its data's `type`, numbered from 0 in order, `response.created` first (unless the stream
/// opens with an `error`), and end with exactly one terminal event, the last.
pub fn responses_stream(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut stream = responses::PublicStream::new("gpt-fuzz".into());
    let mut out = Vec::new();
    for line in rest.split(|&byte| byte == b'\n') {
        let text = String::from_utf8_lossy(line).into_owned();
        let value = serde_json::from_str::<Value>(&text).ok();
        if let Some(value) = &value {
            let _ = responses::public_object(value.clone(), "gpt-fuzz");
            if let Some(response) = value.get("response") {
                let _ = responses::public_object(response.clone(), "gpt-fuzz");
            }
        }
        let name = value
            .filter(|_| control & 2 == 2)
            .and_then(|value| value.get("type")?.as_str().map(str::to_string));
        let text = if control & 4 == 4 {
            text.replace(',', ",\n")
        } else {
            text
        };
        let event = Event {
            event: name,
            data: text,
        };
        crate::dialect::SseTranslator::event(&mut stream, &event, &mut out);
    }
    crate::dialect::SseTranslator::finish(
        &mut stream,
        (control & 1 == 1).then_some("reset (fuzzed)"),
        &mut out,
    );
    check_public_frames(&out);
}

fn check_public_frames(out: &[u8]) {
    const TERMINAL: &[&str] = &[
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    ];
    let frames = sse_frames(out);
    let mut response_id = None;
    for (i, frame) in frames.iter().enumerate() {
        let (data, kind) = typed_frame(frame);
        let kind = kind.as_str();
        assert_eq!(
            data.get("sequence_number"),
            Some(&Value::from(i)),
            "{frames:?}"
        );
        if i == 0 {
            assert!(matches!(kind, "response.created" | "error"), "{frames:?}");
        }
        assert_eq!(
            TERMINAL.contains(&kind),
            i + 1 == frames.len(),
            "one terminal event, the last: {frames:?}"
        );
        if let Some(id) = data.pointer("/response/id") {
            assert!(id.is_string(), "{frames:?}");
            assert_eq!(
                response_id.get_or_insert_with(|| id.clone()),
                id,
                "{frames:?}"
            );
        }
    }
    assert!(!frames.is_empty(), "the stream was closed without a frame");
}

/// A dialect's `translate`.
type Translate = fn(&[u8]) -> Result<Translated, Invalid>;

/// Runs one answer over the input's events (as the gateway does: up to a `Flow::Stop`, then
/// `finish`); returns what the stream translator wrote.
fn answer_stream(translate: Translate, fixed: &[u8], broken: bool, input: &[u8]) -> Vec<u8> {
    let mut lines = input.split(|&byte| byte == b'\n');
    let request = lines.next().unwrap_or_default();
    let answer = translate(request)
        .ok()
        .and_then(|translated| translated.answer)
        .or_else(|| {
            translate(fixed)
                .ok()
                .and_then(|translated| translated.answer)
        });
    let Some(answer) = answer else {
        panic!("the fixed request does not translate");
    };
    let values: Vec<Value> = lines
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    // What `parse_event` passes on from a `data:` line without an event name (it has its own
    // target, `sse`): objects with a `type`.
    let events: Vec<StreamEvent> = values
        .iter()
        .filter_map(|value| StreamEvent::from_json(value.clone()))
        .collect();
    replies(answer.as_ref(), &values, &events);

    let mut translator = answer.stream();
    let mut out = Vec::new();
    for event in &events {
        if translator.event(event, &mut out) == Flow::Stop {
            break;
        }
    }
    translator.finish(broken.then_some("connection reset (fuzzed)"), &mut out);
    out
}

/// Non-streamed answers from arbitrary JSON (every line, its `response`) and from the response
/// the events assemble into.
fn replies(answer: &dyn Answer, values: &[Value], events: &[StreamEvent]) {
    for value in values {
        let _ = answer.reply(value);
        if let Some(response) = value.get("response") {
            let _ = answer.reply(response);
        }
    }
    let mut assembler = Assembler::default();
    for event in events {
        assembler.push(event.clone());
    }
    if let Ok(response) = assembler.finish(None) {
        let _ = answer.reply(&response);
    }
}

/// The translator's output as SSE frames; it must be UTF-8, made only of `event:`, `data:` and
/// blank lines, and end with a complete frame.
fn sse_frames(out: &[u8]) -> Vec<Event> {
    let text = match std::str::from_utf8(out) {
        Ok(text) => text,
        Err(e) => panic!("the translator wrote non-UTF-8 ({e})"),
    };
    assert!(
        text.ends_with("\n\n"),
        "the stream does not end with a complete frame: {text:?}"
    );
    for line in text.split('\n') {
        assert!(
            line.is_empty() || line.starts_with("data: ") || line.starts_with("event: "),
            "not an SSE line: {line:?}"
        );
    }
    let mut parser = SseParser::default();
    let frames = parser.push(out);
    assert_eq!(parser.finish(), None, "an unfinished frame at the end");
    frames
}

fn check_chunk_frames(out: &[u8]) {
    let frames = sse_frames(out);
    let Some(last) = frames.last() else {
        panic!("the stream was closed without a frame");
    };
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(frame.event, None, "chunk frames carry no event name");
        let is_last = i + 1 == frames.len();
        if frame.data == "[DONE]" {
            assert!(is_last, "frames after [DONE]: {frames:?}");
            continue;
        }
        let chunk: Value = match serde_json::from_str(&frame.data) {
            Ok(chunk) => chunk,
            Err(e) => panic!("a frame is not JSON ({e}): {:?}", frame.data),
        };
        assert!(chunk.is_object(), "a frame is not an object: {chunk}");
        if chunk.get("error").is_some() {
            assert!(is_last, "frames after an error frame: {frames:?}");
        }
    }
    let closed = last.data == "[DONE]" || last.data.starts_with(r#"{"error":"#);
    assert!(
        closed,
        "the stream ended without [DONE] or an error: {frames:?}"
    );
}

/// A frame's data, which must be JSON, and its `type`, which must be the frame's event name (a
/// type that would break the name's line goes unnamed).
fn typed_frame(frame: &Event) -> (Value, String) {
    let data: Value = match serde_json::from_str(&frame.data) {
        Ok(data) => data,
        Err(e) => panic!("a frame is not JSON ({e}): {:?}", frame.data),
    };
    let kind = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let named = (!kind.contains(['\n', '\r'])).then_some(kind.as_str());
    assert_eq!(
        frame.event.as_deref(),
        named,
        "the event name is not the data's type"
    );
    (data, kind)
}

fn check_messages_frames(out: &[u8]) {
    let frames = sse_frames(out);
    // The open block: its index and its type.
    let mut open: Option<(u64, String)> = None;
    let mut next_index = 0;
    let mut started = false;
    let mut delta_sent = false;
    let mut closed = false;
    for (i, frame) in frames.iter().enumerate() {
        assert!(!closed, "frames after the end: {frames:?}");
        let (data, kind) = typed_frame(frame);
        let kind = kind.as_str();
        let index = data.get("index").and_then(Value::as_u64);
        match kind {
            "message_start" => assert_eq!(i, 0, "message_start is not first: {frames:?}"),
            "ping" => assert!(started, "ping before message_start: {frames:?}"),
            "content_block_start" => {
                assert!(started && !delta_sent && open.is_none(), "{frames:?}");
                assert_eq!(index, Some(next_index), "block out of order: {frames:?}");
                let block = data.pointer("/content_block/type").and_then(Value::as_str);
                open = Some((next_index, block.unwrap_or("").to_string()));
                next_index += 1;
            }
            "content_block_delta" => {
                let Some((open_index, block)) = &open else {
                    panic!("a delta outside a block: {frames:?}");
                };
                assert_eq!(index, Some(*open_index), "a delta to another block");
                let delta = data.pointer("/delta/type").and_then(Value::as_str);
                let fits = matches!(
                    (block.as_str(), delta.unwrap_or("")),
                    ("text", "text_delta")
                        | ("thinking", "thinking_delta" | "signature_delta")
                        | ("tool_use", "input_json_delta")
                );
                assert!(fits, "a {delta:?} delta in a {block} block: {frames:?}");
            }
            "content_block_stop" => {
                let open_index = open.take().map(|(index, _)| index);
                assert!(
                    open_index.is_some() && index == open_index,
                    "closing a block that is not open: {frames:?}"
                );
            }
            "message_delta" => {
                assert!(started && !delta_sent && open.is_none(), "{frames:?}");
                delta_sent = true;
            }
            "message_stop" => {
                assert!(delta_sent, "message_stop without message_delta: {frames:?}");
                closed = true;
            }
            "error" => closed = true,
            other => panic!("an unknown frame type {other:?}: {frames:?}"),
        }
        started |= kind == "message_start";
    }
    assert!(
        closed,
        "the stream ended without message_stop or error: {frames:?}"
    );
}

/// `config.toml` (the input) loaded with a fixed environment: the file in a private temporary
/// directory that is both `HOME` and `KEYWARD_HOME`.
pub fn config(data: &[u8]) {
    thread_local! {
        static DIR: Result<tempfile::TempDir, String> =
            tempfile::tempdir().map_err(|e| e.to_string());
    }
    DIR.with(|dir| {
        let dir = match dir {
            Ok(dir) => dir,
            Err(e) => panic!("cannot make a directory for the config file: {e}"),
        };
        let path = dir.path().join("config.toml");
        let written = fs::write(&path, data)
            .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o600)));
        if let Err(e) = written {
            panic!("cannot write {}: {e}", path.display());
        }
        let home = dir.path().display().to_string();
        let env: HashMap<String, String> = [
            ("HOME".to_string(), home.clone()),
            (config::HOME_ENV.to_string(), home),
        ]
        .into();
        let _ = Config::load(&env, None);
    });
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A target's entry point.
    type Target = fn(&[u8]);

    /// Every target, by the name of its file in `fuzz/fuzz_targets/` and of its seed directory.
    const TARGETS: &[(&str, Target)] = &[
        ("auth_json", auth_json),
        ("jwt_claims", jwt_claims),
        ("sse", sse),
        ("chat_request", chat_request),
        ("messages_request", messages_request),
        ("completions_request", completions_request),
        ("responses_request", responses_request),
        ("chat_stream", chat_stream),
        ("messages_stream", messages_stream),
        ("gemini_request", gemini_request),
        ("gemini_stream", gemini_stream),
        ("responses_stream", responses_stream),
        ("config", config),
    ];

    fn fuzz_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
    }

    /// Every seed in `fuzz/seeds/<target>/` passes its target, and no target is without seeds.
    #[test]
    fn every_seed_passes_its_target() -> Result<(), std::io::Error> {
        for (name, target) in TARGETS {
            let mut seeds = 0;
            for entry in fs::read_dir(fuzz_dir().join("seeds").join(name))? {
                let path = entry?.path();
                let data = fs::read(&path)?;
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name} failed on {}", path.display());
                seeds += 1;
            }
            assert!(seeds > 0, "no seeds for {name}");
        }
        Ok(())
    }

    /// The list above and the fuzz targets are the same set, so no target goes without its seeds
    /// being tested.
    #[test]
    fn every_fuzz_target_is_listed() -> Result<(), std::io::Error> {
        let mut files = Vec::new();
        for entry in fs::read_dir(fuzz_dir().join("fuzz_targets"))? {
            let path = entry?.path();
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                files.push(stem.to_string());
            }
        }
        files.sort();
        let mut listed: Vec<String> = TARGETS.iter().map(|(name, _)| name.to_string()).collect();
        listed.sort();
        assert_eq!(files, listed);
        Ok(())
    }

    /// The stream targets' fixed requests translate, so no input falls through to the panic.
    #[test]
    fn fixed_requests_translate() {
        assert!(chat::translate(CHAT_REQUEST).is_ok());
        assert!(completions::translate(COMPLETIONS_REQUEST).is_ok());
        assert!(messages::translate(MESSAGES_REQUEST).is_ok());
        assert!(gemini_sse(GEMINI_REQUEST).is_ok());
        assert!(gemini_array(GEMINI_REQUEST).is_ok());
    }
}
