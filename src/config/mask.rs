//! Hiding the passwords of URLs (`postgresql://alice:S3cret@db/x` → `postgresql://alice:***@db/x`)
//! before a value is shown in an error or a log line.

use std::borrow::Cow;

/// What replaces a password.
const MASK: &str = "***";

/// Masks the password of every URL in `value`, which is one setting or one URL (it may be
/// malformed): for each `scheme://`, what lies between the first `:` after it and the last `@`
/// of its authority becomes `***`. When the authority (up to the first `/`, `?` or `#`) has no
/// `@`, the last `@` before the next URL counts, so that a password holding an unescaped `/`,
/// `?` or `#` is masked too. A value without `://`, or without a `user:password@` part, is
/// returned as it is.
///
/// For free text (an error message that quotes a URL among other words) use
/// [`mask_urls_in_text`], which looks for the `@` within the URL's own word only.
pub fn mask_url(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // This URL ends where the next one's scheme begins.
        let end = tail
            .find("://")
            .map_or(tail.len(), |j| scheme_start(tail, j));
        let (this, next) = tail.split_at(end);
        mask_after_scheme(this, &mut out);
        rest = next;
    }
    out.push_str(rest);
    out
}

/// Masks the passwords of the URLs in `text`, word by word (words end at whitespace), so that
/// an `@` later in the text is not mistaken for the end of a URL's user information.
pub fn mask_urls_in_text(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        if word.contains("://") {
            out.push_str(&mask_url(word));
        } else {
            out.push_str(word);
        }
    }
    Cow::Owned(out)
}

/// Where the scheme that precedes the `://` at `sep` begins.
fn scheme_start(s: &str, sep: usize) -> usize {
    s[..sep]
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        .len()
}

/// Appends `rest` (what follows `scheme://`) to `out`, with its password masked.
fn mask_after_scheme(rest: &str, out: &mut String) {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@').or_else(|| rest.rfind('@'));
    let colon = at.and_then(|at| Some((at, rest[..at].find(':')?)));
    match colon {
        Some((at, colon)) if colon + 1 < at => {
            out.push_str(&rest[..=colon]);
            out.push_str(MASK);
            out.push_str(&rest[at..]);
        }
        _ => out.push_str(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_of_urls_are_masked() {
        let cases = [
            (
                "postgresql://alice:S3cret@db:99999/x",
                "postgresql://alice:***@db:99999/x",
            ),
            (
                "postgresql+psycopg://alice:S3cret@db/x?sslmode=require",
                "postgresql+psycopg://alice:***@db/x?sslmode=require",
            ),
            (
                "amqp://guest:guest@localhost:5672",
                "amqp://guest:***@localhost:5672",
            ),
            // Unescaped `@`, `/`, `?`, `#` and spaces in the password.
            ("amqp://u:p@ss@h/v", "amqp://u:***@h/v"),
            ("postgresql://u:pa/ss@h/x", "postgresql://u:***@h/x"),
            ("postgresql://u:pa?s#s@h/x", "postgresql://u:***@h/x"),
            ("postgresql://u:S3 cret@h/x", "postgresql://u:***@h/x"),
            // Nothing to hide.
            ("postgresql://alice@db/x", "postgresql://alice@db/x"),
            ("postgresql://db:5432/x", "postgresql://db:5432/x"),
            ("postgresql://u:@db/x", "postgresql://u:@db/x"),
            ("postgresql://db/x?u=a@b", "postgresql://db/x?u=a@b"),
            ("not a url: a:b@c", "not a url: a:b@c"),
            ("", ""),
            ("://", "://"),
            ("a://b://c", "a://b://c"),
            // Two URLs in one value.
            (
                "amqp://a:one@h1,amqp://b:two@h2/",
                "amqp://a:***@h1,amqp://b:***@h2/",
            ),
        ];
        for (value, masked) in cases {
            assert_eq!(mask_url(value), masked, "{value:?}");
        }
    }

    #[test]
    fn urls_in_text_are_masked_word_by_word() {
        assert_eq!(
            mask_urls_in_text(
                "cannot connect to postgresql://h:5432/db: role \"alice@example\" \
                 (was postgresql://alice:S3cret@h/db)"
            ),
            "cannot connect to postgresql://h:5432/db: role \"alice@example\" \
             (was postgresql://alice:***@h/db)"
        );
        assert!(matches!(
            mask_urls_in_text("no urls: a:b@c"),
            Cow::Borrowed(_)
        ));
    }
}
