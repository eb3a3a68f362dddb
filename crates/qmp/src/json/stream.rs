//! QEMU's JSON message framing (qobject/json-streamer.c): tokens are
//! collected until braces and brackets balance, then parsed as one message.
//! Every message and every error is one item out.

use serde_json::Value;

use super::lexer::{step, Kind, State, Step};
use super::parser::{parse, Token};
use super::utf8;
use crate::error::QmpError;

/// Raw token bytes one message may hold.
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Tokens one message may hold.
pub const MAX_TOKENS: usize = 2 << 20;
/// Open braces plus brackets one message may nest.
pub const MAX_NESTING: i64 = 1024;

/// A streaming parser for one connection's input.
#[derive(Debug)]
pub struct Parser {
    state: State,
    /// The raw bytes of the current message's tokens, the last one maybe partial.
    bytes: Vec<u8>,
    /// Where the token being lexed starts in `bytes`.
    token_start: usize,
    tokens: Vec<Token>,
    braces: i64,
    brackets: i64,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::Start,
            bytes: Vec::new(),
            token_start: 0,
            tokens: Vec::new(),
            braces: 0,
            brackets: 0,
        }
    }
}

impl Parser {
    /// Consumes `input`, appending to `out` each complete message and each
    /// error (errors are answered without an id, and parsing goes on).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Result<Value, QmpError>>) {
        for &byte in input {
            loop {
                match step(self.state, byte) {
                    Step::Consume(next) => {
                        self.bytes.push(byte);
                        self.state = next;
                    }
                    Step::Complete(kind) => {
                        self.bytes.push(byte);
                        self.state = State::Start;
                        self.token(kind, out);
                    }
                    Step::EndBefore(kind) => {
                        self.state = State::Start;
                        self.token(kind, out);
                        continue;
                    }
                    Step::Error => {
                        self.bytes.push(byte);
                        self.state = State::Recovery;
                        let stray = utf8::lossy(&self.bytes[self.token_start..]);
                        self.emit(Err(format!("JSON parse error, stray '{stray}'")), out);
                    }
                    Step::Skip => {}
                    Step::Resume => {
                        self.state = State::Start;
                        continue;
                    }
                }
                break;
            }
            // A single token past the limit is cut off; its rest is lexed afresh.
            if self.bytes.len() - self.token_start > MAX_MESSAGE_SIZE {
                self.state = State::Start;
                self.emit(Err("JSON token size limit exceeded".to_string()), out);
            }
        }
    }

    /// A complete token: frame it, and parse the message once it balances.
    fn token(&mut self, kind: Kind, out: &mut Vec<Result<Value, QmpError>>) {
        match kind {
            Kind::LeftCurly => self.braces += 1,
            Kind::RightCurly => self.braces -= 1,
            Kind::LeftSquare => self.brackets += 1,
            Kind::RightSquare => self.brackets -= 1,
            _ => {}
        }
        let end = self.bytes.len();
        if end + 1 > MAX_MESSAGE_SIZE {
            return self.emit(Err("JSON token size limit exceeded".to_string()), out);
        }
        if self.tokens.len() + 1 > MAX_TOKENS {
            return self.emit(Err("JSON token count limit exceeded".to_string()), out);
        }
        if self.braces + self.brackets > MAX_NESTING {
            return self.emit(Err("JSON nesting depth limit exceeded".to_string()), out);
        }
        self.tokens.push(Token {
            kind,
            start: self.token_start,
            end,
        });
        self.token_start = end;
        let open = self.braces > 0 || self.brackets > 0;
        if open && self.braces >= 0 && self.brackets >= 0 {
            return;
        }
        let result =
            parse(&self.tokens, &self.bytes).map_err(|text| format!("JSON parse error, {text}"));
        self.emit(result, out);
    }

    /// Hands out a message or error and starts a fresh message.
    fn emit(&mut self, item: Result<Value, String>, out: &mut Vec<Result<Value, QmpError>>) {
        self.bytes.clear();
        self.token_start = 0;
        self.tokens.clear();
        self.braces = 0;
        self.brackets = 0;
        // A huge message should not keep its memory once it is done with.
        if self.bytes.capacity() > 1 << 20 {
            self.bytes.shrink_to(1 << 16);
            self.tokens.shrink_to(1 << 12);
        }
        out.push(item.map_err(QmpError::generic));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::writer::to_string;

    /// Feeds `input` and renders each item as QEMU would answer it.
    fn run(input: &[u8]) -> Vec<String> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        parser.feed(input, &mut out);
        out.into_iter()
            .map(|item| match item {
                Ok(value) => to_string(&value),
                Err(error) => format!("error: {}", error.desc),
            })
            .collect()
    }

    #[test]
    fn frames_messages_across_and_within_writes() {
        assert_eq!(
            run(b" {\"a\": 1}{\"b\":\n[2]} "),
            [r#"{"a": 1}"#, r#"{"b": [2]}"#]
        );
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for byte in br#"{"execute": "x", "id": [1, {"a": 2}]}"# {
            parser.feed(&[*byte], &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(
            to_string(out[0].as_ref().unwrap()),
            r#"{"execute": "x", "id": [1, {"a": 2}]}"#
        );
    }

    #[test]
    fn errors_and_resync_match_qemu() {
        assert_eq!(
            run(b"{\"execute\":\"query-status\"\x01}"),
            [
                "error: JSON parse error, stray '\u{1}'",
                "error: JSON parse error, expecting value"
            ]
        );
        assert_eq!(
            run(br#"{"id":1.}"#),
            ["error: JSON parse error, stray '1.}'"]
        );
        assert_eq!(
            run(br#"{"a":1,@"id":1}"#),
            [
                "error: JSON parse error, stray '@'",
                "error: JSON parse error, expecting value",
                "1",
                "error: JSON parse error, expecting value"
            ]
        );
        assert_eq!(
            run(b"[}{]"),
            [
                "error: JSON parse error, expecting value",
                "error: JSON parse error, expecting value"
            ]
        );
        assert_eq!(run(b"\x00{}"), ["error: JSON parse error, stray ''", "{}"]);
        assert_eq!(
            run(br#"{"a" 1}"#),
            ["error: JSON parse error, missing : in object pair"]
        );
        assert_eq!(
            run(br#"{1:2}"#),
            ["error: JSON parse error, key is not a string in object"]
        );
        assert_eq!(
            run(br#"{"a":1,"a":2}"#),
            ["error: JSON parse error, duplicate key"]
        );
        assert_eq!(
            run(br#"{"a":1,"a":nul}"#),
            ["error: JSON parse error, invalid keyword 'nul'"]
        );
        assert_eq!(
            run(br#"[1 2]"#),
            ["error: JSON parse error, expected separator in list"]
        );
        assert_eq!(
            run(br#"{"a":1 "b":2}"#),
            ["error: JSON parse error, expected separator in dict"]
        );
        assert_eq!(
            run(br#"["\x"]"#),
            ["error: JSON parse error, invalid escape sequence in string"]
        );
        assert_eq!(
            run(br#"["\uD800\u0041"]"#),
            [r"error: JSON parse error, \uD800 is not a valid Unicode character"]
        );
        assert_eq!(
            run(br#"["\u12"]"#),
            [r#"error: JSON parse error, \u12" is not a valid Unicode character"#]
        );
        assert_eq!(
            run(b"[\"\xc3\"]"),
            ["error: JSON parse error, invalid UTF-8 sequence in string"]
        );
        assert_eq!(run(b"true{}"), ["true", "{}"]);
        assert_eq!(
            run(b"1"),
            Vec::<String>::new(),
            "a number waits for its end"
        );
    }

    #[test]
    fn strings_and_numbers_decode_like_qemu() {
        assert_eq!(
            run(br#"['a"b', "\u00e9\ud83d\ude00\u0000", "a\/b"]"#),
            [r#"["a\"b", "\u00E9\uD83D\uDE00\u0000", "a/b"]"#]
        );
        assert_eq!(run(b"[\"a\xc0\x80b\"]"), [r#"["a\u0000b"]"#]);
        assert_eq!(
            run(
                b"[-0, -0.0, 1.0, 9223372036854775808, 18446744073709551616, -9223372036854775809]"
            ),
            ["[0, -0, 1, 9223372036854775808, 1.8446744073709552e+19, -9.2233720368547758e+18]"]
        );
    }

    #[test]
    fn nesting_limit_counts_braces_and_brackets() {
        let ok = [b"[".repeat(1024), b"]".repeat(1024)].concat();
        assert_eq!(run(&ok).len(), 1);
        let deep = [b"[".repeat(1025), b"]".repeat(1025)].concat();
        let replies = run(&deep);
        assert_eq!(replies.len(), 1026);
        assert_eq!(replies[0], "error: JSON nesting depth limit exceeded");
        assert!(replies[1..]
            .iter()
            .all(|r| r == "error: JSON parse error, expecting value"));
    }

    #[test]
    fn token_count_limit_is_two_mebi() {
        // `[` + N × `0,` … `0]`: 2N + 1 tokens; the limit is crossed by the last.
        let body = "0,".repeat(MAX_TOKENS / 2 - 1);
        let at_limit = format!("[{body}0]");
        assert_eq!(run(at_limit.as_bytes()).len(), 1);
        let over = format!("[{body}0,0]");
        let replies = run(over.as_bytes());
        assert_eq!(replies[0], "error: JSON token count limit exceeded");
    }

    #[test]
    fn size_limit_covers_the_message_and_a_single_token() {
        let fits = format!("[\"{}\"]", "a".repeat(MAX_MESSAGE_SIZE - 5));
        assert_eq!(run(fits.as_bytes()).len(), 1, "{} bytes", fits.len());
        let over = format!("[\"{}\"]", "a".repeat(MAX_MESSAGE_SIZE - 4));
        assert_eq!(
            run(over.as_bytes()),
            ["error: JSON token size limit exceeded"]
        );
        // One token beyond the limit is cut; its tail is lexed as new input.
        let huge = format!("\"{}\"\n", "a".repeat(MAX_MESSAGE_SIZE + 10));
        let replies = run(huge.as_bytes());
        assert_eq!(replies[0], "error: JSON token size limit exceeded");
        assert!(replies[1].starts_with("error: JSON parse error, invalid keyword 'aaaa"));
        assert_eq!(replies[2], "error: JSON parse error, stray '\"\n'");
    }
}
