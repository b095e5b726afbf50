//! Finds the line of a key path (`points[3].type`) in YAML text.
//!
//! serde reports *which* key is wrong; the installer also needs *where*. This walks the
//! parser's marked events once and records the line of every key and sequence item, so that
//! both deserialisation errors and the semantic checks after it can name the line.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Key path → 1-based line.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    lines: HashMap<String, usize>,
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Indexer {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Indexer {
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Map { key: Some(k) } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Frame::Map { key: None } => {}
                Frame::Seq { index } => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    fn record(&mut self, line: usize) {
        let path = self.path();
        self.lines.entry(path).or_insert(line);
    }

    /// A value node of the current container has ended.
    fn finish_value(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key }) => *key = None,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }

    /// A node starts: a key (when the parent map awaits one) or a value.
    fn start_node(&mut self, line: usize) -> bool {
        if matches!(self.stack.last(), Some(Frame::Seq { .. })) {
            self.record(line);
        }
        matches!(self.stack.last(), Some(Frame::Map { key: None }))
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => {
                let is_key = self.start_node(line);
                if is_key {
                    if let Some(Frame::Map { key }) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                    self.record(line);
                } else {
                    self.finish_value();
                }
            }
            Event::MappingStart(..) => {
                self.start_node(line);
                self.stack.push(Frame::Map { key: None });
            }
            Event::SequenceStart(..) => {
                self.start_node(line);
                self.stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.finish_value();
            }
            Event::Alias(_) => self.finish_value(),
            _ => {}
        }
    }
}

impl LineIndex {
    /// Indexes `text`; a text that does not parse gives an empty index (the serde error
    /// carries its own location then).
    pub(crate) fn new(text: &str) -> Self {
        let mut indexer = Indexer::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut indexer, false).is_err() {
            return LineIndex::default();
        }
        LineIndex {
            lines: indexer.lines,
        }
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(line) = self.lines.get(p) {
                return Some(*line);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_and_items() {
        let text =
            "name: x\npoints:\n  - name: a\n    type: bool\n  - name: b\n    limits: { hh: 3 }\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line("name"), Some(1));
        assert_eq!(idx.line("points"), Some(2));
        assert_eq!(idx.line("points[0]"), Some(3));
        assert_eq!(idx.line("points[0].type"), Some(4));
        assert_eq!(idx.line("points[1].name"), Some(5));
        assert_eq!(idx.line("points[1].limits.hh"), Some(6));
        assert_eq!(
            idx.line("points[1].nothing"),
            Some(5),
            "falls back to the item"
        );
    }
}
