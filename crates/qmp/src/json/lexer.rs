//! QEMU's JSON lexer (qobject/json-lexer.c) as a transition function over
//! bytes.  Tokens are kept raw; strings are decoded by the parser.

/// A complete token's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    LeftCurly,
    RightCurly,
    LeftSquare,
    RightSquare,
    Colon,
    Comma,
    String,
    Integer,
    Float,
    Keyword,
}

/// Where the lexer is within a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Start,
    DoubleQuoted,
    DoubleQuotedEscape,
    SingleQuoted,
    SingleQuotedEscape,
    Zero,
    Digits,
    Sign,
    Mantissa,
    MantissaDigits,
    ExponentMark,
    ExponentSign,
    ExponentDigits,
    Keyword,
    /// After an error: skipping bytes until something that can start afresh.
    Recovery,
}

/// What one byte does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Append the byte to the token and move on.
    Consume(State),
    /// Append the byte; the token is complete.
    Complete(Kind),
    /// The token ended before this byte: emit it, then lex the byte from Start.
    EndBefore(Kind),
    /// Append the byte; the token is an error.
    Error,
    /// Ignore the byte (whitespace, or skipped while recovering).
    Skip,
    /// Leave recovery and lex the byte from Start.
    Resume,
}

pub fn step(state: State, byte: u8) -> Step {
    use State::*;
    let digit = byte.is_ascii_digit();
    match state {
        Start => match byte {
            b'"' => Step::Consume(DoubleQuoted),
            b'\'' => Step::Consume(SingleQuoted),
            b'0' => Step::Consume(Zero),
            b'1'..=b'9' => Step::Consume(Digits),
            b'-' => Step::Consume(Sign),
            b'{' => Step::Complete(Kind::LeftCurly),
            b'}' => Step::Complete(Kind::RightCurly),
            b'[' => Step::Complete(Kind::LeftSquare),
            b']' => Step::Complete(Kind::RightSquare),
            b':' => Step::Complete(Kind::Colon),
            b',' => Step::Complete(Kind::Comma),
            b'a'..=b'z' => Step::Consume(Keyword),
            b' ' | b'\t' | b'\n' | b'\r' => Step::Skip,
            _ => Step::Error,
        },
        DoubleQuoted | SingleQuoted => {
            let (quote, escape) = if state == DoubleQuoted {
                (b'"', DoubleQuotedEscape)
            } else {
                (b'\'', SingleQuotedEscape)
            };
            match byte {
                _ if byte == quote => Step::Complete(Kind::String),
                b'\\' => Step::Consume(escape),
                0x20..=0xFD => Step::Consume(state),
                _ => Step::Error,
            }
        }
        DoubleQuotedEscape | SingleQuotedEscape => match byte {
            0x20..=0xFD if state == DoubleQuotedEscape => Step::Consume(DoubleQuoted),
            0x20..=0xFD => Step::Consume(SingleQuoted),
            _ => Step::Error,
        },
        Zero => match byte {
            _ if digit => Step::Error,
            b'.' => Step::Consume(Mantissa),
            _ => Step::EndBefore(Kind::Integer),
        },
        Digits => match byte {
            _ if digit => Step::Consume(Digits),
            b'e' | b'E' => Step::Consume(ExponentMark),
            b'.' => Step::Consume(Mantissa),
            _ => Step::EndBefore(Kind::Integer),
        },
        Sign => match byte {
            b'0' => Step::Consume(Zero),
            b'1'..=b'9' => Step::Consume(Digits),
            _ => Step::Error,
        },
        Mantissa if digit => Step::Consume(MantissaDigits),
        Mantissa => Step::Error,
        MantissaDigits => match byte {
            _ if digit => Step::Consume(MantissaDigits),
            b'e' | b'E' => Step::Consume(ExponentMark),
            _ => Step::EndBefore(Kind::Float),
        },
        ExponentMark => match byte {
            b'+' | b'-' => Step::Consume(ExponentSign),
            _ if digit => Step::Consume(ExponentDigits),
            _ => Step::Error,
        },
        ExponentSign if digit => Step::Consume(ExponentDigits),
        ExponentSign => Step::Error,
        ExponentDigits if digit => Step::Consume(ExponentDigits),
        ExponentDigits => Step::EndBefore(Kind::Float),
        Keyword if byte.is_ascii_lowercase() => Step::Consume(Keyword),
        Keyword => Step::EndBefore(Kind::Keyword),
        Recovery => match byte {
            0x00..=0x08 | 0x0A..=0x1F | 0xFE | 0xFF => Step::Resume,
            b'[' | b']' | b'{' | b'}' | b':' | b',' => Step::Resume,
            _ => Step::Skip,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lexes `input` into (kind or "error", text) pairs.
    fn lex(input: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut state = State::Start;
        let mut token = Vec::new();
        let mut name = |kind: Option<Kind>, token: &mut Vec<u8>| {
            let label = kind.map_or("error".to_string(), |k| format!("{k:?}"));
            out.push((label, String::from_utf8_lossy(token).into_owned()));
            token.clear();
        };
        for &byte in input {
            loop {
                match step(state, byte) {
                    Step::Consume(next) => {
                        token.push(byte);
                        state = next;
                    }
                    Step::Complete(kind) => {
                        token.push(byte);
                        name(Some(kind), &mut token);
                        state = State::Start;
                    }
                    Step::EndBefore(kind) => {
                        name(Some(kind), &mut token);
                        state = State::Start;
                        continue;
                    }
                    Step::Error => {
                        token.push(byte);
                        name(None, &mut token);
                        state = State::Recovery;
                    }
                    Step::Skip => {}
                    Step::Resume => {
                        state = State::Start;
                        continue;
                    }
                }
                break;
            }
        }
        out
    }

    fn kinds(input: &[u8]) -> Vec<String> {
        lex(input)
            .into_iter()
            .map(|(k, t)| format!("{k}:{t}"))
            .collect()
    }

    #[test]
    fn numbers_follow_qemu_quirks() {
        assert_eq!(kinds(b"0e5 "), ["Integer:0", "Keyword:e", "Integer:5"]);
        assert_eq!(kinds(b"1.}"), ["error:1.}"]);
        assert_eq!(kinds(b"01"), ["error:01"]);
        assert_eq!(kinds(b"-0.5E-1,"), ["Float:-0.5E-1", "Comma:,"]);
        assert_eq!(kinds(b"0E1"), ["Integer:0", "error:E"]);
    }

    #[test]
    fn recovery_skips_until_structure_or_control() {
        assert_eq!(kinds(b"@abc def{"), ["error:@", "LeftCurly:{"]);
        assert_eq!(kinds(b"@abc\ntrue\n"), ["error:@", "Keyword:true"]);
        assert_eq!(kinds(b"@abc\ttrue\n"), ["error:@"]);
        assert_eq!(kinds(b"\xff\xff"), ["error:\u{FFFD}", "error:\u{FFFD}"]);
        assert_eq!(kinds(b"@@@"), ["error:@"]);
    }

    #[test]
    fn strings_are_raw_tokens() {
        assert_eq!(
            kinds(br#"'a"b' "c\"d""#),
            [r#"String:'a"b'"#, r#"String:"c\"d""#]
        );
        assert_eq!(kinds(b"\"a\tb\""), ["error:\"a\t"]);
    }
}
