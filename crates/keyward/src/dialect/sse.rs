//! An incremental parser of server-sent events, for assembling a streamed answer into one object.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    /// A `\r` ended the last chunk: a `\n` starting the next one belongs to it.
    pending_cr: bool,
}

impl SseParser {
    /// Feeds bytes; returns the events they completed.
    pub(crate) fn push(&mut self, mut bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        if self.pending_cr && !bytes.is_empty() {
            self.pending_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        // Whole lines are read in place; only a line cut by a chunk boundary is copied.
        while let Some(at) = memchr::memchr2(b'\n', b'\r', bytes) {
            let ends_with_cr = bytes[at] == b'\r';
            self.end_line(&bytes[..at], &mut events);
            bytes = &bytes[at + 1..];
            if ends_with_cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
        }
        self.line.extend_from_slice(bytes);
        events
    }

    /// Ends the stream: a last event without its blank line still counts.
    pub(crate) fn finish(&mut self) -> Option<Event> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&[], &mut events);
        }
        self.dispatch(&mut events);
        events.pop()
    }

    /// Ends the line made of what is buffered and `tail`.
    fn end_line(&mut self, tail: &[u8], events: &mut Vec<Event>) {
        if self.line.is_empty() {
            self.read_line(tail, events);
        } else {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(tail);
            self.read_line(&line, events);
            line.clear();
            self.line = line;
        }
    }

    fn read_line(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => self.event = Some(text(value)),
            b"data" => self.data.push(text(value)),
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<Event>) {
        if self.data.is_empty() {
            self.event = None;
            return;
        }
        let data = if self.data.len() == 1 {
            self.data.pop().unwrap_or_default()
        } else {
            std::mem::take(&mut self.data).join("\n")
        };
        events.push(Event {
            event: self.event.take(),
            data,
        });
    }
}

/// A field's value as text; bytes that are not UTF-8 become U+FFFD, as the SSE standard decodes them.
fn text(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_across_chunk_boundaries_and_line_endings() {
        let mut parser = SseParser::default();
        let mut events = parser.push(b"event: a\r");
        events.extend(parser.push(b"\ndata: {\"x\":1}\r\n\r\n: comment\n"));
        events.extend(parser.push(b"data: line1\ndata:line2\n\ndata: tail"));
        events.extend(parser.finish());
        assert_eq!(
            events,
            vec![
                Event {
                    event: Some("a".into()),
                    data: "{\"x\":1}".into()
                },
                Event {
                    event: None,
                    data: "line1\nline2".into()
                },
                Event {
                    event: None,
                    data: "tail".into()
                },
            ]
        );
    }

    #[test]
    fn any_split_of_a_stream_parses_as_the_whole() {
        let stream: &[u8] = b"event: a\r\ndata: 1\r\n\r\n:c\rdata: x\xff\rdata\r\revent:b\ndata:  two\n\n\r\ndata: end";
        let whole = {
            let mut parser = SseParser::default();
            let mut events = parser.push(stream);
            events.extend(parser.finish());
            events
        };
        assert_eq!(whole.len(), 4, "{whole:?}");
        assert_eq!(whole[1].data, "x\u{fffd}\n");
        assert_eq!(whole[2].data, " two");
        for first in 0..=stream.len() {
            for second in first..=stream.len() {
                let mut parser = SseParser::default();
                let mut events = parser.push(&stream[..first]);
                events.extend(parser.push(&stream[first..second]));
                events.extend(parser.push(&[]));
                events.extend(parser.push(&stream[second..]));
                events.extend(parser.finish());
                assert_eq!(events, whole, "split at {first} and {second}");
            }
        }
    }
}
