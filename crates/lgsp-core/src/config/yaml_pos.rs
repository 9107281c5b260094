//! A second, span-keeping read of a YAML file.
//!
//! figment reports the key path of a problem but not where it is in the file; this index
//! maps every key path (`routes.0.retry.delays`) to its line and column, and notices plain
//! (unquoted) scalars that YAML turns into numbers although they look like codes.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Line and column, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A plain scalar that YAML reads as a number but that looks like a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberLike {
    pub path: String,
    pub text: String,
    pub pos: Pos,
}

/// Key paths of one YAML document and where each key starts.
#[derive(Debug, Default)]
pub struct YamlIndex {
    positions: HashMap<String, Pos>,
    /// Unquoted scalars with a leading zero (`06400`): YAML drops the zero.
    pub leading_zero_numbers: Vec<NumberLike>,
}

impl YamlIndex {
    /// Index `src`. A syntax error yields an empty index: figment reports it.
    pub fn parse(src: &str) -> YamlIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(src);
        if parser.load(&mut builder, false).is_err() {
            return YamlIndex::default();
        }
        YamlIndex {
            positions: builder.positions,
            leading_zero_numbers: builder.leading_zero,
        }
    }

    /// Position of the key at `path` (segments joined by `.`, list items by index).
    pub fn get(&self, path: &str) -> Option<Pos> {
        self.positions.get(path).copied()
    }

    /// Position of the deepest known prefix of `path`.
    pub fn nearest(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.get(p) {
                return Some(pos);
            }
            p = &p[..p.rfind('.')?];
        }
    }
}

enum Frame {
    Map {
        expecting_key: bool,
        key: Option<String>,
    },
    Seq {
        index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Path segments of the containers entered so far.
    path: Vec<String>,
    positions: HashMap<String, Pos>,
    leading_zero: Vec<NumberLike>,
}

fn pos(mark: Marker) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

fn looks_like_code_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

impl Builder {
    fn joined(&self, last: &str) -> String {
        let mut p = self.path.join(".");
        if !p.is_empty() {
            p.push('.');
        }
        p.push_str(last);
        p
    }

    /// Called for a value (scalar or container start) at the current position; returns
    /// the segment this value occupies in its parent.
    fn value_segment(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            Some(Frame::Map { expecting_key, key }) => {
                *expecting_key = true;
                key.take()
            }
            Some(Frame::Seq { index }) => {
                let seg = index.to_string();
                *index += 1;
                Some(seg)
            }
            None => None,
        }
    }

    fn record_item_position(&mut self, seg: &str, mark: Marker) {
        if matches!(self.stack.last(), Some(Frame::Seq { .. })) {
            let p = self.joined(seg);
            self.positions.entry(p).or_insert(pos(mark));
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, _, _) => {
                if let Some(Frame::Map { expecting_key, key }) = self.stack.last_mut()
                    && *expecting_key
                {
                    *expecting_key = false;
                    *key = Some(text.clone());
                    let p = self.joined(&text);
                    self.positions.entry(p.clone()).or_insert(pos(mark));
                    if style == TScalarStyle::Plain && looks_like_code_number(&text) {
                        self.leading_zero.push(NumberLike {
                            path: p,
                            text,
                            pos: pos(mark),
                        });
                    }
                    return;
                }
                let seg = self.value_segment();
                if let Some(seg) = seg {
                    self.record_item_position(&seg, mark);
                    if style == TScalarStyle::Plain && looks_like_code_number(&text) {
                        let path = self.joined(&seg);
                        self.leading_zero.push(NumberLike {
                            path,
                            text,
                            pos: pos(mark),
                        });
                    }
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                // A container used as a mapping key is not supported by our configs.
                if let Some(seg) = self.value_segment() {
                    self.record_item_position(&seg, mark);
                    self.path.push(seg);
                } else if !self.stack.is_empty() {
                    self.path.push(String::from("?"));
                }
                self.stack.push(if is_map {
                    Frame::Map {
                        expecting_key: true,
                        key: None,
                    }
                } else {
                    Frame::Seq { index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                if !self.stack.is_empty() {
                    self.path.pop();
                }
            }
            Event::Alias(_) => {
                let _ = self.value_segment();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_keys_and_list_items() {
        let src = "broker:\n  url: x\nroutes:\n  - name: a\n    retry:\n      delays: [1s]\n  - name: b\n";
        let idx = YamlIndex::parse(src);
        assert_eq!(idx.get("broker"), Some(Pos { line: 1, column: 1 }));
        assert_eq!(idx.get("broker.url"), Some(Pos { line: 2, column: 3 }));
        assert_eq!(
            idx.get("routes.0.retry.delays"),
            Some(Pos { line: 6, column: 7 })
        );
        assert_eq!(idx.get("routes.1.name"), Some(Pos { line: 7, column: 5 }));
        assert_eq!(
            idx.nearest("routes.1.name.deeper"),
            Some(Pos { line: 7, column: 5 })
        );
    }

    #[test]
    fn flags_unquoted_codes_with_leading_zero() {
        let src = "tables:\n  communes:\n    06400: Xã Hữu Liên\n    \"06385\": Xã Hữu Lũng\n  x: 020\n  y: '020'\n  z: 0\n";
        let idx = YamlIndex::parse(src);
        let found: Vec<_> = idx
            .leading_zero_numbers
            .iter()
            .map(|n| n.path.as_str())
            .collect();
        assert_eq!(found, vec!["tables.communes.06400", "tables.x"]);
    }
}
