//! cookie-signature's algorithm, which express-session signs its cookie with, and the
//! URL encoding of the cookie value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// cookie-signature's `sign`: `value` + `.` + the base64 (standard alphabet, padding removed)
/// HMAC-SHA256 of `value` under `secret`. A string secret is its UTF-8 bytes, as in Node.
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::sign;
/// assert_eq!(
///     sign("hello", "tobiiscool"),
///     "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
/// );
/// ```
pub fn sign(value: &str, secret: impl AsRef<[u8]>) -> String {
    let tag = keyed(secret.as_ref(), value).finalize().into_bytes();
    format!("{value}.{}", STANDARD_NO_PAD.encode(tag))
}

/// cookie-signature's `unsign`, over a list of secrets as express-session tries them: the value
/// before the last `.` when what follows is its signature under any of `secrets`, else `None`.
/// The signature is compared in constant time.
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::unsign;
/// let signed = "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI";
/// assert_eq!(unsign(signed, &["new", "tobiiscool"]).as_deref(), Some("hello"));
/// assert_eq!(unsign(signed, &["luna"]), None);
/// ```
pub fn unsign<S: AsRef<[u8]>>(signed: &str, secrets: &[S]) -> Option<String> {
    let (value, signature) = signed.rsplit_once('.')?;
    // Canonical base64 without padding only (the decoder refuses `=` and stray trailing bits),
    // so a signature verifies exactly when its text equals the one cookie-signature computes.
    let tag = STANDARD_NO_PAD.decode(signature).ok()?;
    secrets
        .iter()
        .any(|secret| keyed(secret.as_ref(), value).verify_slice(&tag).is_ok())
        .then(|| value.to_owned())
}

/// The value express-session puts in its cookie for session `sid`: `s:` + [`sign`], URL-encoded
/// as the `cookie` module does (`s%3A…`).
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::sign_cookie;
/// assert_eq!(
///     sign_cookie("a.b.c", "keyboard cat"),
///     "s%3Aa.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm%2FEQ2aE"
/// );
/// ```
pub fn sign_cookie(sid: &str, secret: impl AsRef<[u8]>) -> String {
    encode_uri_component(&format!("s:{}", sign(sid, secret)))
}

/// The session id in express-session's cookie value `value` (as sent, URL-encoded or not),
/// when it is signed (`s:`) by one of `secrets`; `None` for an unsigned or tampered value.
///
/// # Examples
///
/// ```
/// use sequelstore::integration::express::unsign_cookie;
/// let wire = "s%3Aa.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm%2FEQ2aE";
/// assert_eq!(unsign_cookie(wire, &["keyboard cat"]).as_deref(), Some("a.b.c"));
/// let raw = "s:a.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm/EQ2aE";
/// assert_eq!(unsign_cookie(raw, &["keyboard cat"]).as_deref(), Some("a.b.c"));
/// assert_eq!(unsign_cookie("a.b.c", &["keyboard cat"]), None);
/// ```
pub fn unsign_cookie<S: AsRef<[u8]>>(value: &str, secrets: &[S]) -> Option<String> {
    let decoded = decode_uri_component(value);
    unsign(decoded.strip_prefix("s:")?, secrets)
}

fn keyed(secret: &[u8], value: &str) -> HmacSha256 {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(value.as_bytes());
    mac
}

/// What JavaScript's `encodeURIComponent` leaves as it is: ASCII letters, digits and
/// `-_.!~*'()`; every other byte of the UTF-8 text is escaped, in upper-case hex.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// JavaScript's `encodeURIComponent`.
fn encode_uri_component(text: &str) -> String {
    utf8_percent_encode(text, URI_COMPONENT).to_string()
}

/// The `cookie` module's decoding: `decodeURIComponent` when there is a `%`, and the text as it
/// is when that fails. `decodeURIComponent` fails on an escape that is not `%` and two hex
/// digits, where `percent_decode_str` would keep it as text, hence the check before it; and on
/// bytes that are not UTF-8, as `decode_utf8` does.
fn decode_uri_component(text: &str) -> String {
    let well_formed = text.bytes().enumerate().all(|(i, b)| {
        b != b'%'
            || text
                .as_bytes()
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return text.to_owned();
    }
    match percent_decode_str(text).decode_utf8() {
        Ok(decoded) => decoded.into_owned(),
        Err(_) => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_signature_known_answers() {
        // cookie-signature's own tests.
        assert_eq!(
            sign("hello", "tobiiscool"),
            "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
        );
        assert_ne!(
            sign("hello", "luna"),
            "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"
        );
        let key = [0xA0, 0xAB, 0xBC, 0x0C];
        assert_eq!(
            sign("hello", key),
            "hello.hIvljrKw5oOZtHHSq5u+MlL27cgnPKX77y7F+x5r1to"
        );
        assert_eq!(
            unsign("hello.hIvljrKw5oOZtHHSq5u+MlL27cgnPKX77y7F+x5r1to", &[key]).as_deref(),
            Some("hello")
        );
        let signed = sign("hello", "tobiiscool");
        assert_eq!(unsign(&signed, &["tobiiscool"]).as_deref(), Some("hello"));
        assert_eq!(unsign(&signed, &["luna"]), None);
    }

    #[test]
    fn malformed_signatures_are_refused_as_cookie_signature_does() {
        let pwd = "actual sekrit password";
        assert_eq!(unsign("fake unsigned data", &[pwd]), None);
        let val = sign("real data", pwd);
        for bad in [
            format!("garbage{val}"),
            format!("garbage.{val}"),
            format!("{val}.garbage"),
            format!("{val}garbage"),
            // cookie-signature compares the whole text: padding makes it another text.
            format!("{val}="),
            String::new(),
            ".".into(),
        ] {
            assert_eq!(unsign(&bad, &[pwd]), None, "{bad}");
        }
        assert_eq!(unsign(&val, &[] as &[&str]), None);
    }

    #[test]
    fn decoding_follows_decode_uri_component_and_falls_back_to_the_text() {
        assert_eq!(decode_uri_component("s%3Aab%2F%2Bc"), "s:ab/+c");
        assert_eq!(decode_uri_component("plain+text"), "plain+text");
        assert_eq!(decode_uri_component("%E2%82%AC"), "€");
        for bad in ["%E0%A4%A", "%", "%zz", "%+1", "%FF"] {
            assert_eq!(decode_uri_component(bad), bad);
        }
        assert_eq!(encode_uri_component("s:a+b/c=é"), "s%3Aa%2Bb%2Fc%3D%C3%A9");
        assert_eq!(encode_uri_component("-_.!~*'()"), "-_.!~*'()");
    }
}
