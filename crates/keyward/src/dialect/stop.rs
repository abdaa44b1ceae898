//! Stop sequences, which the Responses API does not have: keyward applies them to the text as it
//! streams. Only the tail that could still become a stop sequence is held back; everything before
//! it goes out as it arrives.

/// Cuts streamed text at the first stop sequence.
#[derive(Debug, Clone, Default)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released, because a stop sequence could start in it.
    held: String,
    /// The stop sequence that matched; nothing more is released after it.
    matched: Option<usize>,
}

/// What one piece of text released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Released {
    /// Text safe to send now.
    pub text: String,
    /// Index (into the configured sequences) of the stop sequence found, if one was.
    pub stopped: Option<usize>,
}

impl StopMatcher {
    /// Empty sequences are ignored (they would match everywhere).
    pub(crate) fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
            matched: None,
        }
    }

    pub(crate) fn sequence(&self, index: usize) -> Option<&str> {
        self.stops.get(index).map(String::as_str)
    }

    /// Feeds a delta; returns what can be sent now.
    pub(crate) fn push(&mut self, delta: &str) -> Released {
        if self.matched.is_some() {
            return Released {
                text: String::new(),
                stopped: self.matched,
            };
        }
        if self.stops.is_empty() {
            return Released {
                text: delta.to_string(),
                stopped: None,
            };
        }
        self.held.push_str(delta);
        // The earliest stop sequence in the held text wins.
        let found = self
            .stops
            .iter()
            .enumerate()
            .filter_map(|(i, stop)| self.held.find(stop.as_str()).map(|at| (at, i)))
            .min();
        if let Some((at, index)) = found {
            self.matched = Some(index);
            let text = self.held[..at].to_string();
            self.held.clear();
            return Released {
                text,
                stopped: Some(index),
            };
        }
        // Hold back the longest suffix that is a proper prefix of some stop sequence.
        let keep = self
            .stops
            .iter()
            .map(|stop| longest_suffix_prefix(&self.held, stop))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        Released {
            text,
            stopped: None,
        }
    }

    /// The text ended: whatever was held back is released (no stop sequence completed in it).
    pub(crate) fn flush(&mut self) -> String {
        if self.matched.is_some() {
            return String::new();
        }
        std::mem::take(&mut self.held)
    }

    /// Applies the stop sequences to a whole text: the text up to the first match, and which matched.
    pub(crate) fn cut(stops: &[String], text: &str) -> (String, Option<usize>) {
        let mut matcher = Self::new(stops.to_vec());
        let released = matcher.push(text);
        match released.stopped {
            Some(_) => (released.text, released.stopped),
            None => (released.text + &matcher.flush(), None),
        }
    }
}

/// Length in bytes of the longest suffix of `text` that is a proper prefix of `stop`, on char
/// boundaries.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && stop.is_char_boundary(n) && text[start..] == stop[..n]
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stops: &[&str], deltas: &[&str]) -> (String, Option<usize>) {
        let mut matcher = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for delta in deltas {
            let released = matcher.push(delta);
            out.push_str(&released.text);
            if released.stopped.is_some() {
                return (out, released.stopped);
            }
        }
        out.push_str(&matcher.flush());
        (out, None)
    }

    #[test]
    fn cuts_at_a_sequence_split_across_deltas() {
        assert_eq!(
            feed(&["END"], &["hello E", "N", "D world"]),
            ("hello ".into(), Some(0))
        );
        assert_eq!(
            feed(&["\n\n", "STOP"], &["a\n", "b STOP\n\n"]),
            ("a\nb ".into(), Some(1))
        );
    }

    #[test]
    fn releases_held_text_that_did_not_match() {
        assert_eq!(feed(&["END"], &["the E", "ND"]), ("the ".into(), Some(0)));
        assert_eq!(feed(&["END"], &["the E", "nd"]), ("the End".into(), None));
        assert_eq!(feed(&[], &["free ", "text"]), ("free text".into(), None));
        assert_eq!(feed(&[""], &["x"]), ("x".into(), None));
    }

    #[test]
    fn holds_back_only_what_could_still_match() {
        let mut matcher = StopMatcher::new(vec!["éé".into()]);
        assert_eq!(matcher.push("caféé").text, "caf");
        let mut matcher = StopMatcher::new(vec!["xyz".into()]);
        assert_eq!(matcher.push("abcx").text, "abc");
        assert_eq!(matcher.push("q").text, "xq");
    }

    #[test]
    fn whole_text_cut() {
        let stops = vec!["3".to_string()];
        assert_eq!(
            StopMatcher::cut(&stops, "1 2 3 4"),
            ("1 2 ".into(), Some(0))
        );
        assert_eq!(StopMatcher::cut(&stops, "1 2"), ("1 2".into(), None));
    }
}
