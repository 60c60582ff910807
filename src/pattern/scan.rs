//! The template rules: two passes over one message, nothing kept between messages.
//!
//! **Pass 1, quoted values.** Whitespace runs become one space and the ends are trimmed. A quoted
//! value (`"..."` or `'...'`, backslash escapes allowed) that starts at the beginning, after a
//! space, an opening bracket, `=`, `:` or `,`, and whose closing quote is followed by a space,
//! the end or closing punctuation, becomes `"<*>"`, however many words it holds; a quoted HTTP
//! request line keeps its method (`"GET <*>"`). The message's own text stays: a quote at the very
//! start (klog's `"Probe failed" pod="..."`) or after `msg=`, `message=`, `event=` (logfmt).
//!
//! **Pass 2, words.** Each word (between single spaces) is split into leading brackets/quotes, a
//! core, and trailing punctuation/closing brackets (a closer counts as trailing only while the
//! leading part opened as many). Then, first rule that applies:
//! 1. `::` (the IPv6 address without a digit) is variable;
//! 2. an empty core between brackets (`()`, `[]`) is an empty value: `(<*>)`;
//! 3. `name(key=value...)` or `name('literal')`: the name and the bracketed rest are judged
//!    apart (`root(uid=0)` -> `<*>(uid=<*>)` after `user`);
//! 4. `key=value` (no digit, `/` or `\` in the key) keeps the key: `uid=<*>`, except text keys
//!    (`msg=`), whose value is judged as a word;
//! 5. `Label:value` (letters with a capital, a variable value that is not a path: `C:\tmp`):
//!    `onExtend:<*>`, `UID:<*>`;
//! 6. a variable core becomes `<*>` and swallows the leading brackets the suffix does not close
//!    (`[::]:8443`, `(18.4`). A core is variable when it holds a digit, an `@` after its start
//!    (e-mail), a `/` or `\` (path, URL); when it is 8+ hex letters (an id without a digit), a
//!    lower-case dotted name (`host.example.com`, `chrome.exe`, `app.tasks.send`;
//!    `java.lang.Error` has capitals and stays) or a capitalised month or weekday. A word is also
//!    variable as the name after a key word (`user bob`, `for user bob`, `job nightly-export`:
//!    see KEYS; not a verb or function word, see STOP), as the one word between `for` and `from`
//!    (`Failed password for root from`), or as a unit right after a variable (`12 ms`, `18.4 KB`).
//!
//! Finally a run of `<*>` words is one `<*>` (`2017-05-16 05:00:00`, `Tue Nov 24 10:21:05 2026`).
//!
//! Every class is ASCII, so the SQL twin (`sql/log_template.sql`) can apply the very same rules:
//! non-ASCII characters are ordinary word characters in both.

/// What replaces a variable part.
pub const WILDCARD: &str = "<*>";

/// Every word list by the name `log_template_words(name)` gives it in SQL, so a test can prove the
/// two implementations use the same words.
pub const WORD_LISTS: &[(&str, &[&[u8]])] =
    &[("keys", KEYS), ("stop", STOP), ("units", UNITS), ("dates", DATE_WORDS), ("text_keys", TEXT_KEYS)];

// Byte classes, one table lookup each.
/// ASCII whitespace: the six bytes both implementations treat as spaces (PostgreSQL's `\s` and
/// Rust's `char::is_whitespace` disagree on Unicode spaces; these do not depend on anything).
const WS: u8 = 1;
/// Bytes after which a quote may open a quoted value (and whitespace).
const QUOTE_AFTER: u8 = 2;
/// Bytes before which a quote may close a quoted value (and whitespace, and the end).
const QUOTE_BEFORE: u8 = 4;
/// Leading brackets and quotes of a word.
const OPEN: u8 = 8;
/// Trailing closers of a word, counted against its leading brackets.
const CLOSE: u8 = 16;
/// Trailing punctuation of a word.
const PUNCT: u8 = 32;
/// Quote characters that can open a quoted value.
const QUOTE: u8 = 64;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            c |= WS | QUOTE_AFTER | QUOTE_BEFORE;
        }
        if matches!(b, b'(' | b'[' | b'{' | b'<' | b'=' | b':' | b',') {
            c |= QUOTE_AFTER;
        }
        if matches!(b, b',' | b';' | b':' | b'.' | b'!' | b'?' | b')' | b']' | b'}' | b'>') {
            c |= QUOTE_BEFORE;
        }
        if matches!(b, b'(' | b'[' | b'{' | b'<' | b'"' | b'\'' | b'`') {
            c |= OPEN;
        }
        if matches!(b, b')' | b']' | b'}' | b'>' | b'"' | b'\'' | b'`') {
            c |= CLOSE;
        }
        if matches!(b, b',' | b';' | b':' | b'.' | b'!' | b'?') {
            c |= PUNCT;
        }
        if matches!(b, b'"' | b'\'') {
            c |= QUOTE;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

#[inline]
fn is_ws(b: u8) -> bool {
    is(b, WS)
}

/// Declares a word list (ASCII, lower case) and its case-insensitive test, a `match` the
/// compiler turns into a few comparisons.
/// The shortest and longest word of a list.
const fn lengths(list: &[&[u8]]) -> (usize, usize) {
    let (mut min, mut max, mut i) = (usize::MAX, 0, 0);
    while i < list.len() {
        let n = list[i].len();
        if n < min {
            min = n;
        }
        if n > max {
            max = n;
        }
        i += 1;
    }
    (min, max)
}

macro_rules! words {
    ($(#[$doc:meta])* $list:ident, $is:ident: $($w:literal)|+) => {
        $(#[$doc])*
        pub const $list: &[&[u8]] = &[$($w),+];
        fn $is(word: &[u8]) -> bool {
            // Most words are not in the list by their length alone.
            const LENGTHS: (usize, usize) = lengths($list);
            if word.len() < LENGTHS.0 || word.len() > LENGTHS.1 {
                return false;
            }
            let mut buf = [0u8; 16];
            let Some(lower) = buf.get_mut(..word.len()) else { return false };
            lower.copy_from_slice(word);
            lower.make_ascii_lowercase();
            matches!(&*lower, $($w)|+)
        }
    };
}

words! {
    /// Keys whose value is the message's text, not a variable (logfmt).
    TEXT_KEYS, is_text_key_word: b"msg" | b"message" | b"event"
}

const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

words! {
    /// Nouns whose next word is a name: `user root`, `for user bob`, `topic orders`.
    KEYS, is_key_word: b"user" | b"username" | b"login" | b"host" | b"hostname" | b"domain" | b"job" | b"container" | b"pod" | b"topic" | b"queue" | b"table" | b"database" | b"index" | b"bucket" | b"image" | b"file" | b"device"
}

words! {
    /// Words that are never the name after a key: function words and the verbs and states that
    /// follow a noun in log lines (`job started`, `user not found`, `container is running`).
    STOP, is_stop: b"a" | b"about" | b"after" | b"again" | b"all" | b"already" | b"also" | b"an" | b"and" | b"any" | b"are" | b"as" | b"at" | b"be" | b"been" | b"before" | b"being" | b"but" | b"by" | b"can" | b"cannot" | b"could" | b"did" | b"do" | b"does" | b"for" | b"from" | b"had" | b"has" | b"have" | b"if" | b"in" | b"into" | b"is" | b"it" | b"its" | b"just" | b"may" | b"might" | b"must" | b"no" | b"none" | b"not" | b"now" | b"of" | b"off" | b"on" | b"only" | b"onto" | b"or" | b"out" | b"over" | b"so" | b"some" | b"still" | b"than" | b"that" | b"the" | b"then" | b"there" | b"this" | b"to" | b"under" | b"via" | b"was" | b"were" | b"when" | b"which" | b"while" | b"who" | b"will" | b"with" | b"would" | b"should" | b"null" | b"nil" | b"true" | b"false" | b"unknown" | b"accepted" | b"added" | b"authenticated" | b"changed" | b"closed" | b"completed" | b"connected" | b"created" | b"deleted" | b"denied" | b"disabled" | b"disconnected" | b"done" | b"down" | b"enabled" | b"exists" | b"exited" | b"expired" | b"failed" | b"failing" | b"finished" | b"found" | b"killed" | b"loaded" | b"locked" | b"logged" | b"missing" | b"ok" | b"opened" | b"pending" | b"queued" | b"ready" | b"received" | b"registered" | b"rejected" | b"removed" | b"restarted" | b"running" | b"saved" | b"scheduled" | b"sent" | b"skipped" | b"started" | b"starting" | b"stopped" | b"stopping" | b"succeeded" | b"successfully" | b"terminated" | b"timed" | b"timeout" | b"unavailable" | b"unreachable" | b"up" | b"updated"
}

words! {
    /// Units that belong to the number before them: `12 ms`, `18.4 KB`.
    UNITS, is_unit_word: b"b" | b"kb" | b"mb" | b"gb" | b"tb" | b"pb" | b"kib" | b"mib" | b"gib" | b"tib" | b"ns" | b"us" | b"ms" | b"s" | b"sec" | b"secs" | b"min" | b"mins" | b"h" | b"hr" | b"hrs"
}

words! {
    DATE_WORDS, is_date_name: b"jan" | b"feb" | b"mar" | b"apr" | b"may" | b"jun" | b"jul" | b"aug" | b"sep" | b"sept" | b"oct" | b"nov" | b"dec" | b"january" | b"february" | b"march" | b"april" | b"june" | b"july" | b"august" | b"september" | b"october" | b"november" | b"december" | b"mon" | b"tue" | b"wed" | b"thu" | b"fri" | b"sat" | b"sun" | b"monday" | b"tuesday" | b"wednesday" | b"thursday" | b"friday" | b"saturday" | b"sunday"
}

/// Messages are judged on their first this many characters: a template is a message's shape,
/// and the cap bounds the work a huge message can cost (characters, not bytes, so that SQL's
/// `left(message, n)` cuts at the same place).
pub const MAX_CHARS: usize = 4096;

/// Writes the template of `message` into `out` (cleared first); `scratch` holds pass 1.
pub fn template_with(message: &str, out: &mut String, scratch: &mut String) {
    out.clear();
    let message = match message.len() > MAX_CHARS {
        true => message.char_indices().nth(MAX_CHARS).map_or(message, |(i, _)| &message[..i]),
        false => message,
    };
    if is_plain(message.as_bytes()) {
        // Nothing for pass 1 to do: no quote, and single spaces only between words.
        mask_words(message, out);
    } else {
        mask_quotes(message, scratch);
        mask_words(scratch, out);
    }
}

/// A message pass 1 would copy unchanged.
fn is_plain(b: &[u8]) -> bool {
    let mut prev_space = true; // no leading space either
    for &c in b {
        if is(c, WS | QUOTE) {
            if c != b' ' || prev_space {
                return false;
            }
            prev_space = true;
        } else {
            prev_space = false;
        }
    }
    !prev_space || b.is_empty()
}

/// Writes the template of `message` into `out` (cleared first), with a per-thread scratch buffer.
pub fn template_into(message: &str, out: &mut String) {
    thread_local! {
        static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    SCRATCH.with(|s| template_with(message, out, &mut s.borrow_mut()));
}

pub fn template(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    template_into(message, &mut out);
    out
}

/// Pass 1: whitespace normalised, quoted values masked. Linear: a quote that opens nothing costs
/// a scan to the next quote of its kind, and those scans do not overlap.
fn mask_quotes(msg: &str, out: &mut String) {
    out.clear();
    let b = msg.as_bytes();
    let n = b.len();
    let mut i = b.iter().position(|&c| !is_ws(c)).unwrap_or(n);
    let start = i;
    // Start of the run of bytes not yet copied: copying runs, not bytes, keeps this fast.
    let mut run = i;
    while i < n {
        // Most bytes are neither whitespace nor quotes: skip them in a tight loop.
        while i < n && !is(b[i], WS | QUOTE) {
            i += 1;
        }
        if i == n {
            break;
        }
        let c = b[i];
        if is_ws(c) {
            out.push_str(&msg[run..i]);
            while i < n && is_ws(b[i]) {
                i += 1;
            }
            if i < n {
                out.push(' ');
            }
            run = i;
            continue;
        }
        if (c == b'"' || c == b'\'')
            && i > start
            && is(b[i - 1], QUOTE_AFTER)
            && !is_text_key(&b[..i])
            && let Some(end) = closing_quote(b, i)
        {
            out.push_str(&msg[run..i]);
            let quote = &msg[i..=i];
            out.push_str(quote);
            if let Some(method) = http_method(&b[i + 1..end]) {
                out.push_str(method);
                out.push(' ');
            }
            out.push_str(WILDCARD);
            out.push_str(quote);
            i = end + 1;
            run = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&msg[run..n]);
}

/// The closing quote of the quote at `open`: the next unescaped quote of the same kind, if a
/// space, the end or closing punctuation follows it.
fn closing_quote(msg: &[u8], open: usize) -> Option<usize> {
    let q = msg[open];
    let mut k = open + 1;
    while k < msg.len() {
        match msg[k] {
            b'\\' => k += 2,
            b if b == q => {
                return match msg.get(k + 1) {
                    Some(&a) if !is(a, QUOTE_BEFORE) => None,
                    _ => Some(k),
                };
            }
            _ => k += 1,
        }
    }
    None
}

/// The method of a quoted HTTP request line (`GET /x HTTP/1.1`): an upper-case method, then
/// whitespace.
fn http_method(quoted: &[u8]) -> Option<&'static str> {
    let sp = quoted.iter().position(|&b| is_ws(b))?;
    HTTP_METHODS.iter().find(|m| m.as_bytes() == &quoted[..sp]).copied()
}

/// Whether `before` ends with a text key and `=` (`msg=`): the quote after it opens the
/// message's own text. (A quote at the very start is text too; the caller checks that.)
fn is_text_key(before: &[u8]) -> bool {
    let Some(key) = before.strip_suffix(b"=") else { return false };
    let start = key.iter().rposition(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')));
    is_text_key_word(&key[start.map_or(0, |p| p + 1)..])
}

/// Pass 2: each word masked or kept; runs of variable words collapsed.
fn mask_words(text: &str, out: &mut String) {
    // A name follows a key word (`user bob`) unless that key word is itself the name after
    // another one (`user user bob`: the second `user` is the name).
    let (mut key1, mut key2) = (false, false);
    let mut after_for = false;
    let mut last_was_wildcard = false;
    let t = text.as_bytes();
    let mut start = 0;
    while start < t.len() {
        let end = t[start..].iter().position(|&c| c == b' ').map_or(t.len(), |p| start + p);
        let (w, word) = (&t[start..end], &text[start..end]);
        let before = out.len();
        if before > 0 {
            out.push(' ');
        }
        let between_for_from = after_for && {
            let next = &t[(end + 1).min(t.len())..];
            next.len() >= 4 && next[..4].eq_ignore_ascii_case(b"from") && next.get(4).is_none_or(|&c| c == b' ')
        };
        let (a, b) = split_core(w);
        mask_split(w, word, a, b, (key1 && !key2) || between_for_from, last_was_wildcard, 0, out);
        let is_wildcard = &out.as_bytes()[before + usize::from(before > 0)..] == WILDCARD.as_bytes();
        if is_wildcard && last_was_wildcard {
            out.truncate(before);
        } else {
            last_was_wildcard = is_wildcard;
        }
        key2 = key1;
        // `user.` ends a sentence; `user:` still introduces a name.
        key1 = b > a && !w[b..].contains(&b'.') && is_key_word(&w[a..b]);
        after_for = w.eq_ignore_ascii_case(b"for");
        start = end + 1;
    }
}

/// Splits `word` into (leading brackets and quotes, core, trailing punctuation and closers) and
/// returns the two cut points. A trailing closer belongs to the suffix only while the leading
/// part opened as many: in `LOCAL(0),` the `)` is part of the core.
fn split_core(word: &[u8]) -> (usize, usize) {
    let a = word.iter().position(|&b| !is(b, OPEN)).unwrap_or(word.len());
    let mut b = word.len();
    let mut closed = 0;
    while b > a {
        let c = word[b - 1];
        if is(c, CLOSE) && closed < a {
            closed += 1;
        } else if !is(c, PUNCT) {
            break;
        }
        b -= 1;
    }
    (a, b)
}

/// How deep rules 3 and 4 may split a word into parts judged apart (`a(b(c=1))`, `msg=msg=x`):
/// the bound keeps a huge word's cost linear.
const MAX_DEPTH: u32 = 3;

/// What one pass over a core finds: enough to choose the rule without scanning it again.
struct Shape {
    /// A digit, `/`, `\`, or an `@` after the start: variable whatever else.
    variable: bool,
    /// The first `(`, `=`, `:`, digit, `/` or `\`, capital, and byte that is neither a letter
    /// nor `_` (or the core's length).
    paren: usize,
    eq: usize,
    colon: usize,
    digit: usize,
    slash: usize,
    upper: usize,
    not_alpha: usize,
    /// A `.`, and only `[a-z_.-]` bytes with no empty label around a dot: `host.example.com`.
    dot: bool,
    dotted: bool,
    /// Only hexadecimal letters (`deadbeef`: one id in a few thousand has no digit).
    hex_letters: bool,
}

impl Shape {
    fn of(core: &[u8]) -> Shape {
        let n = core.len();
        let mut s = Shape {
            variable: false,
            paren: n,
            eq: n,
            colon: n,
            digit: n,
            slash: n,
            upper: n,
            not_alpha: n,
            dot: false,
            dotted: true,
            hex_letters: true,
        };
        let mut label_empty = true;
        for (i, &c) in core.iter().enumerate() {
            // The common case first: a lower-case letter or `_` changes nothing but the label.
            if c.is_ascii_lowercase() || c == b'_' {
                label_empty = false;
                s.hex_letters &= matches!(c, b'a'..=b'f');
                continue;
            }
            s.hex_letters &= matches!(c, b'A'..=b'F');
            if c.is_ascii_uppercase() {
                s.dotted = false;
                s.upper = s.upper.min(i);
                continue;
            }
            s.not_alpha = s.not_alpha.min(i);
            match c {
                b'-' => label_empty = false,
                b'.' => {
                    s.dot = true;
                    s.dotted &= !label_empty;
                    label_empty = true;
                }
                b'0'..=b'9' => {
                    s.variable = true;
                    s.dotted = false;
                    s.digit = s.digit.min(i);
                }
                b'/' | b'\\' => {
                    s.variable = true;
                    s.dotted = false;
                    s.slash = s.slash.min(i);
                }
                b'@' => {
                    s.variable |= i > 0;
                    s.dotted = false;
                }
                b'(' => {
                    s.paren = s.paren.min(i);
                    s.dotted = false;
                }
                b'=' => {
                    s.eq = s.eq.min(i);
                    s.dotted = false;
                }
                b':' => {
                    s.colon = s.colon.min(i);
                    s.dotted = false;
                }
                _ => s.dotted = false,
            }
        }
        s.dotted &= !label_empty;
        s
    }

    /// The core is a variable by itself: it holds a digit, `/`, `\` or an `@` after its start,
    /// or is 8 or more hexadecimal letters, or is a lower-case dotted name (`proxy.example.com`, `chrome.exe`; `java.lang.Error` has
    /// capitals and stays) or a capitalised month or weekday.
    fn is_variable(&self, core: &[u8]) -> bool {
        self.variable
            || (self.hex_letters && core.len() >= 8)
            || (self.dot && self.dotted)
            || (self.upper == 0 && is_date_word(core))
    }
}

fn is_variable(core: &[u8]) -> bool {
    Shape::of(core).is_variable(core)
}

/// Masks one word into `out`. `w` and `word` are the same text (bytes to judge, str to copy).
/// `after_key`: the word is in a name position (after a key word, or between `for` and `from`);
/// `after_number`: the word before it was variable; `depth`: how many splits led here.
fn mask_word(w: &[u8], word: &str, after_key: bool, after_number: bool, depth: u32, out: &mut String) {
    let (a, b) = split_core(w);
    mask_split(w, word, a, b, after_key, after_number, depth, out);
}

/// `mask_word` with the word already split at `a` (end of the leading brackets) and `b` (start
/// of the trailing punctuation).
#[allow(clippy::too_many_arguments)]
fn mask_split(
    w: &[u8],
    word: &str,
    a: usize,
    b: usize,
    after_key: bool,
    after_number: bool,
    depth: u32,
    out: &mut String,
) {
    let core = &w[a..b];
    let n = core.len();
    if n == 0 {
        if w == b"::" {
            // The IPv6 any-address: the one address without a digit.
            out.push_str(WILDCARD);
        } else if a > 0 && b < w.len() && is(w[b], CLOSE) {
            // `()`, `[]`: an empty value is a value.
            out.push_str(&word[..a]);
            out.push_str(WILDCARD);
            out.push_str(&word[b..]);
        } else {
            out.push_str(word);
        }
        return;
    }
    let shape = Shape::of(core);
    // `root(uid=0)`, `KeyError('id')`: a name, then its bracketed arguments, judged apart.
    let paren = shape.paren;
    if depth < MAX_DEPTH
        && paren > 0
        && paren < n
        && (if shape.eq > paren { shape.eq < n } else { core[paren + 1..].contains(&b'=') }
            || matches!(core.get(paren + 1), Some(b'"' | b'\'')))
    {
        let name = &core[..paren];
        out.push_str(&word[..a]);
        if is_variable(name) || (after_key && is_name(name)) {
            out.push_str(WILDCARD);
        } else {
            out.push_str(&word[a..a + paren]);
        }
        mask_word(&w[a + paren..], &word[a + paren..], false, false, depth + 1, out);
        return;
    }
    // `key=value`: the key stays (no digit in it, and no `/`: `/feed/alice?page=2` is a path);
    // a text key's value is judged as a word of its own.
    let eq = shape.eq;
    if eq > 0 && eq < n && shape.digit > eq && shape.slash > eq {
        out.push_str(&word[..a + eq + 1]);
        if depth < MAX_DEPTH && is_text_key_word(&core[..eq]) {
            mask_word(&w[a + eq + 1..], &word[a + eq + 1..], false, false, depth + 1, out);
        } else {
            out.push_str(WILDCARD);
            out.push_str(&word[b..]);
        }
        return;
    }
    // `onExtend:1514038530000`, `UID:1000`: a code label (it has a capital; host names in
    // `host:port` do not) keeps its name.
    let colon = shape.colon;
    if colon > 0
        && colon + 1 < n
        && shape.not_alpha == colon
        && shape.upper < colon
        && !matches!(core[colon + 1], b'/' | b'\\')
        && is_variable(&core[colon + 1..])
    {
        out.push_str(&word[..a + colon + 1]);
        out.push_str(WILDCARD);
        out.push_str(&word[b..]);
        return;
    }
    if shape.is_variable(core) || (after_key && is_name(core)) || (after_number && is_unit(core)) {
        // Leading brackets the suffix does not close belong to the variable.
        let closers = w[b..].iter().filter(|&&c| is(c, CLOSE)).count();
        out.push_str(&word[a - closers..a]);
        out.push_str(WILDCARD);
        out.push_str(&word[b..]);
        return;
    }
    out.push_str(word);
}

/// `Nov`, `Tuesday`: capitalised, as dates write them (`may` is a verb).
fn is_date_word(core: &[u8]) -> bool {
    core.len() >= 3 && core[0].is_ascii_uppercase() && is_date_name(core)
}

fn is_name(core: &[u8]) -> bool {
    !is_stop(core)
}

/// A unit, possibly with closers its word leaves unbalanced: `KB)` in `(18.4 KB)`.
fn is_unit(core: &[u8]) -> bool {
    let end = core.iter().rposition(|&c| !is(c, CLOSE)).map_or(0, |p| p + 1);
    is_unit_word(&core[..end])
}
