//! PCRE patterns (nginx's `ngx.re.match`, `location ~*`) as Rust `regex`
//! patterns: the same matches where the dialects agree, a refusal naming
//! the construct where only PCRE has it, and a compile error where PCRE
//! itself would refuse the pattern.
//!
//! Translations: `\w \d \s` and their negations become ASCII classes (PCRE
//! without UCP is ASCII-only; Rust's are Unicode), `\b \B` become ASCII
//! word boundaries, `\Z` becomes `\z` (values never end in a newline),
//! `\Q...\E` is escaped, `\e` is `\x1B`, a `{` that starts no quantifier is a
//! literal, and inside a class `[`, `&`, `~` and a second `-` are literals.

/// What became of a PCRE pattern.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pcre {
    /// A Rust pattern that matches where PCRE does (as a search).
    Rust(String),
    /// PCRE syntax Rust's `regex` has no equivalent for.
    Unsupported(String),
    /// PCRE would refuse the pattern too.
    Invalid(String),
}

/// Translates `pattern`.
pub(crate) fn translate(pattern: &str) -> Pcre {
    match Translator::new(pattern).run() {
        Ok(out) => match regex::Regex::new(&out) {
            Ok(_) => Pcre::Rust(out),
            Err(e) => {
                let msg = e.to_string();
                let last = msg.lines().last().unwrap_or("").trim();
                Pcre::Invalid(last.strip_prefix("error: ").unwrap_or(last).to_owned())
            }
        },
        Err(e) => e,
    }
}

struct Translator {
    chars: Vec<char>,
    pos: usize,
    out: String,
}

impl Translator {
    fn new(pattern: &str) -> Self {
        Translator {
            chars: pattern.chars().collect(),
            pos: 0,
            out: String::with_capacity(pattern.len() + 16),
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn run(mut self) -> Result<String, Pcre> {
        let mut depth = 0usize;
        // Whether the last item can take a quantifier.
        let mut repeatable = false;
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match c {
                '\\' => {
                    repeatable = self.escape(false)?;
                }
                '[' => {
                    self.class()?;
                    repeatable = true;
                }
                '(' => {
                    if self.group_open()? {
                        depth += 1;
                    }
                    repeatable = false;
                }
                ')' => {
                    if depth == 0 {
                        return Err(Pcre::Invalid("unmatched closing parenthesis".into()));
                    }
                    depth -= 1;
                    self.out.push(')');
                    repeatable = true;
                }
                '*' | '+' | '?' => {
                    if !repeatable {
                        return Err(Pcre::Invalid(format!(
                            "quantifier `{c}` does not follow a repeatable item"
                        )));
                    }
                    self.out.push(c);
                    self.after_quantifier()?;
                    repeatable = false;
                }
                '{' => {
                    if let Some(len) = self.quantifier_len() {
                        if !repeatable {
                            return Err(Pcre::Invalid(
                                "quantifier `{` does not follow a repeatable item".into(),
                            ));
                        }
                        self.out.push('{');
                        for _ in 0..len {
                            let d = self.chars[self.pos];
                            self.out.push(d);
                            self.pos += 1;
                        }
                        self.after_quantifier()?;
                        repeatable = false;
                    } else {
                        self.out.push_str("\\{");
                        repeatable = true;
                    }
                }
                '|' => {
                    self.out.push('|');
                    repeatable = false;
                }
                '^' | '$' => {
                    self.out.push(c);
                    repeatable = false;
                }
                '}' => {
                    self.out.push_str("\\}");
                    repeatable = true;
                }
                _ => {
                    push_literal(&mut self.out, c);
                    repeatable = true;
                }
            }
        }
        if depth > 0 {
            return Err(Pcre::Invalid("missing closing parenthesis".into()));
        }
        Ok(self.out)
    }

    /// After `*`, `+`, `?` or `{n,m}`: a lazy `?` is fine, a possessive `+`
    /// is PCRE's alone.
    fn after_quantifier(&mut self) -> Result<(), Pcre> {
        match self.peek(0) {
            Some('?') => {
                self.out.push('?');
                self.pos += 1;
                Ok(())
            }
            Some('+') => Err(Pcre::Unsupported(
                "possessive quantifier (`*+`, `++`, `?+`)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The length of `n}`, `n,}` or `n,m}` after a `{`, when that is what follows.
    fn quantifier_len(&self) -> Option<usize> {
        let rest = &self.chars[self.pos..];
        let mut i = 0;
        let digits = |i: &mut usize| {
            let start = *i;
            while rest.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
            *i > start
        };
        if !digits(&mut i) {
            return None;
        }
        if rest.get(i) == Some(&',') {
            i += 1;
            digits(&mut i);
        }
        (rest.get(i) == Some(&'}')).then_some(i + 1)
    }

    /// After `(`: whether a group was opened (`(?i)` opens none).
    fn group_open(&mut self) -> Result<bool, Pcre> {
        match (self.peek(0), self.peek(1), self.peek(2)) {
            (Some('*'), _, _) => Err(Pcre::Unsupported("PCRE verb `(*...)`".into())),
            (Some('?'), Some(':'), _) => {
                self.pos += 2;
                self.out.push_str("(?:");
                Ok(true)
            }
            (Some('?'), Some('=' | '!'), _) => {
                Err(Pcre::Unsupported("lookahead `(?=...)`, `(?!...)`".into()))
            }
            (Some('?'), Some('<'), Some('=' | '!')) => Err(Pcre::Unsupported(
                "lookbehind `(?<=...)`, `(?<!...)`".into(),
            )),
            (Some('?'), Some('>'), _) => Err(Pcre::Unsupported("atomic group `(?>...)`".into())),
            (Some('?'), Some('|'), _) => Err(Pcre::Unsupported("branch reset `(?|...)`".into())),
            (Some('?'), Some('#'), _) => Err(Pcre::Unsupported("comment group `(?#...)`".into())),
            (Some('?'), Some('('), _) => {
                Err(Pcre::Unsupported("conditional group `(?(...)...)`".into()))
            }
            (Some('?'), Some('R' | '&' | '+' | '0'..='9'), _) => Err(Pcre::Unsupported(
                "recursion or subroutine call `(?R)`, `(?1)`".into(),
            )),
            (Some('?'), Some('P'), Some('<')) => {
                self.pos += 3;
                self.out.push_str("(?P<");
                Ok(true)
            }
            (Some('?'), Some('P'), _) => {
                Err(Pcre::Unsupported("`(?P=name)` or `(?P>name)`".into()))
            }
            (Some('?'), Some('<'), _) => {
                self.pos += 2;
                self.out.push_str("(?<");
                Ok(true)
            }
            (Some('?'), Some('\''), _) => {
                Err(Pcre::Unsupported("`(?'name'...)` named group".into()))
            }
            (Some('?'), _, _) => {
                // Inline flags: `(?i)`, `(?im-s:...)`.
                let mut flags = String::new();
                let mut i = 1;
                loop {
                    match self.peek(i) {
                        Some(f @ ('i' | 'm' | 's' | 'x' | 'U' | '-')) => flags.push(f),
                        Some(end @ (')' | ':')) => {
                            self.pos += i + 1;
                            self.out.push_str(&format!("(?{flags}{end}"));
                            // `(?i)` sets flags to the end of the enclosing
                            // group, in both dialects; it opens none.
                            return Ok(end == ':');
                        }
                        Some(other) => {
                            return Err(Pcre::Unsupported(format!("inline flag `{other}`")));
                        }
                        None => return Err(Pcre::Invalid("unterminated group".into())),
                    }
                    i += 1;
                }
            }
            _ => {
                self.out.push('(');
                Ok(true)
            }
        }
    }

    /// After `\`, outside or inside a class. Returns whether the item
    /// can take a quantifier.
    fn escape(&mut self, in_class: bool) -> Result<bool, Pcre> {
        let Some(c) = self.peek(0) else {
            return Err(Pcre::Invalid("pattern ends with `\\`".into()));
        };
        self.pos += 1;
        let class = |neg: bool, set: &str| -> String {
            match (in_class, neg) {
                (true, false) => set.to_owned(),
                (_, true) => format!("[^{set}]"),
                (false, false) => format!("[{set}]"),
            }
        };
        let out = match c {
            'w' => class(false, "0-9A-Za-z_"),
            'W' => class(true, "0-9A-Za-z_"),
            'd' => class(false, "0-9"),
            'D' => class(true, "0-9"),
            's' => class(false, "\\t\\n\\x0B\\x0C\\r "),
            'S' => class(true, "\\t\\n\\x0B\\x0C\\r "),
            'b' if in_class => "\\x08".to_owned(),
            'b' => return self.assertion("(?-u:\\b)"),
            'B' if !in_class => return self.assertion("(?-u:\\B)"),
            'A' | 'z' if !in_class => return self.assertion(&format!("\\{c}")),
            'Z' if !in_class => return self.assertion("\\z"),
            'e' => "\\x1B".to_owned(),
            'a' | 'f' | 'n' | 'r' | 't' => format!("\\{c}"),
            'x' => {
                // `\xHH` or `\x{H..}`, as Rust reads them; `\x` alone is NUL in PCRE.
                if self.peek(0) == Some('{') {
                    let end = self.chars[self.pos..].iter().position(|&c| c == '}');
                    let Some(end) = end else {
                        return Err(Pcre::Invalid("unterminated `\\x{`".into()));
                    };
                    let hex: String = self.chars[self.pos + 1..self.pos + end].iter().collect();
                    self.pos += end + 1;
                    format!("\\x{{{hex}}}")
                } else {
                    let mut hex = String::new();
                    while hex.len() < 2 && self.peek(0).is_some_and(|c| c.is_ascii_hexdigit()) {
                        hex.push(self.chars[self.pos]);
                        self.pos += 1;
                    }
                    format!("\\x{{{}}}", if hex.is_empty() { "0" } else { &hex })
                }
            }
            'p' | 'P' => {
                let mut s = format!("\\{c}");
                if self.peek(0) == Some('{') {
                    while let Some(ch) = self.peek(0) {
                        s.push(ch);
                        self.pos += 1;
                        if ch == '}' {
                            break;
                        }
                    }
                } else if let Some(ch) = self.peek(0) {
                    s.push(ch);
                    self.pos += 1;
                }
                s
            }
            'Q' => {
                let mut lit = String::new();
                while let Some(ch) = self.peek(0) {
                    if ch == '\\' && self.peek(1) == Some('E') {
                        self.pos += 2;
                        break;
                    }
                    lit.push(ch);
                    self.pos += 1;
                }
                regex::escape(&lit)
            }
            '1'..='9' if !in_class => {
                return Err(Pcre::Unsupported(format!("backreference `\\{c}`")));
            }
            '0'..='9' => return Err(Pcre::Unsupported(format!("octal escape `\\{c}`"))),
            'g' | 'k' => return Err(Pcre::Unsupported(format!("backreference `\\{c}`"))),
            'G' | 'K' | 'R' | 'X' | 'C' | 'N' | 'h' | 'H' | 'v' | 'V' | 'c' | 'E' | 'L' | 'l'
            | 'U' | 'u' => {
                return Err(Pcre::Unsupported(format!("escape `\\{c}`")));
            }
            c if c.is_ascii_alphanumeric() => {
                return Err(Pcre::Invalid(format!("unrecognized escape `\\{c}`")));
            }
            c => {
                let mut s = String::new();
                if c.is_ascii() {
                    s.push('\\');
                }
                s.push(c);
                s
            }
        };
        self.out.push_str(&out);
        Ok(true)
    }

    fn assertion(&mut self, text: &str) -> Result<bool, Pcre> {
        self.out.push_str(text);
        Ok(false)
    }

    /// After `[`: up to the matching `]`.
    fn class(&mut self) -> Result<(), Pcre> {
        self.out.push('[');
        if self.peek(0) == Some('^') {
            self.out.push('^');
            self.pos += 1;
        }
        // A `]` first is a literal.
        if self.peek(0) == Some(']') {
            self.out.push_str("\\]");
            self.pos += 1;
        }
        let mut last_dash = false;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(Pcre::Invalid(
                    "missing terminating `]` for a character class".into(),
                ));
            };
            self.pos += 1;
            match c {
                ']' => {
                    self.out.push(']');
                    return Ok(());
                }
                '\\' => {
                    self.escape(true)?;
                    last_dash = false;
                }
                '[' if self.peek(0) == Some(':') => {
                    // A POSIX class `[:alpha:]`, as Rust reads it.
                    let rest: String = self.chars[self.pos..].iter().collect();
                    let Some(end) = rest.find(":]") else {
                        self.out.push_str("\\[");
                        continue;
                    };
                    self.out.push('[');
                    self.out.push_str(&rest[..end + 2]);
                    self.pos += rest[..end + 2].chars().count();
                    last_dash = false;
                }
                '[' | '&' | '~' => {
                    self.out.push('\\');
                    self.out.push(c);
                    last_dash = false;
                }
                '-' if last_dash => {
                    self.out.push_str("\\-");
                    last_dash = false;
                }
                '-' => {
                    self.out.push('-');
                    last_dash = true;
                }
                _ => {
                    push_literal(&mut self.out, c);
                    last_dash = false;
                }
            }
        }
    }
}

/// A literal character as Rust reads it.
fn push_literal(out: &mut String, c: char) {
    if c == '#' || c == ' ' {
        // Literal in both without `x`; escaped so an `(?x)` cannot eat it.
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the translation finds `pattern` in `value` (a search, as
    /// `ngx.re.match` does).
    fn search(pattern: &str, value: &str) -> Result<bool, String> {
        match translate(pattern) {
            Pcre::Rust(p) => Ok(regex::Regex::new(&p).unwrap().is_match(value)),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn translated_patterns_search_as_pcre_does() {
        let cases: &[(&str, &str, &str, bool)] = &[
            (
                "ingress-nginx e2e pattern",
                "^Do[A-Z][a-z]+y$",
                "DoCanary",
                true,
            ),
            (
                "ingress-nginx e2e pattern, lower",
                "^Do[A-Z][a-z]+y$",
                "Docanary",
                false,
            ),
            ("unanchored search", "canary", "my-canary-header", true),
            ("word class is ascii", "^\\w+$", "caf\u{e9}", false),
            ("word class ascii letters", "^\\w+$", "cafe_1", true),
            ("digit class", "^\\d{2}$", "42", true),
            ("digit class is ascii", "^\\d$", "\u{0663}", false),
            ("space class", "a\\sb", "a b", true),
            ("not word", "\\W", "ab", false),
            ("word boundary", "\\bfoo\\b", "a foo b", true),
            ("literal brace", "a{b", "xa{bx", true),
            ("counted", "^a{2,3}$", "aaa", true),
            ("lazy", "a+?", "aaa", true),
            ("class with bracket", "[a[]", "[", true),
            ("class with first bracket", "[]a]", "]", true),
            ("class amp", "[a&&b]", "&", true),
            ("posix class", "^[[:digit:]]+$", "123", true),
            ("quoted", "\\Qa.b\\E", "a.b", true),
            ("quoted literal dot", "\\Qa.b\\E", "axb", false),
            ("end Z", "abc\\Z", "xabc", true),
            ("inline flag", "(?i)canary", "CANARY", true),
            ("inline flag group", "(?i:c)anary", "Canary", true),
            ("inline flag scoped", "(?i:c)anary", "CANARY", false),
            ("named group", "(?P<x>a)b", "ab", true),
            ("hex", "\\x41", "A", true),
            ("escaped slash", "a\\/b", "a/b", true),
            ("alternation", "^(always|yes)$", "yes", true),
        ];
        for (name, pattern, value, want) in cases {
            assert_eq!(
                search(pattern, value),
                Ok(*want),
                "case {name}: {pattern:?}"
            );
        }
    }

    #[test]
    fn pcre_only_and_invalid_patterns_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("lookahead", "a(?=b)", "Unsupported(\"lookahead"),
            ("negative lookahead", "a(?!b)", "Unsupported(\"lookahead"),
            ("lookbehind", "(?<=a)b", "Unsupported(\"lookbehind"),
            ("atomic", "(?>a)", "Unsupported(\"atomic"),
            ("backreference", "(a)\\1", "Unsupported(\"backreference"),
            ("possessive", "a*+", "Unsupported(\"possessive"),
            ("recursion", "(?R)", "Unsupported(\"recursion"),
            ("verb", "(*UTF)a", "Unsupported(\"PCRE verb"),
            ("keep", "a\\Kb", "Unsupported(\"escape"),
            (
                "e2e invalid pattern",
                "[][**da?$&*",
                "Invalid(\"missing terminating",
            ),
            ("unbalanced", "a(b", "Invalid(\"missing closing"),
            ("unmatched close", "a)b", "Invalid(\"unmatched closing"),
            ("nothing to repeat", "*a", "Invalid(\"quantifier"),
            ("double quantifier", "a**", "Invalid(\"quantifier"),
            ("trailing backslash", "a\\", "Invalid(\"pattern ends"),
            ("unknown escape", "\\y", "Invalid(\"unrecognized escape"),
        ];
        for (name, pattern, want) in cases {
            let got = format!("{:?}", translate(pattern));
            assert!(got.starts_with(want), "case {name}: {got}");
        }
    }
}
