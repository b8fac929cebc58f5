//! The cookie: the layer's settings for it, finding it in a request's `Cookie` headers, and the
//! `Set-Cookie` line that sends it, as express-session writes them.

use std::fmt::{self, Write as _};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cookie::Cookie;
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};

use super::signature::sign_cookie;
use crate::{SessionData, SessionModel, Store};

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (browsers require `Secure` with it).
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

#[derive(Clone)]
pub(super) struct Config {
    pub(super) secrets: Vec<Vec<u8>>,
    pub(super) name: String,
    pub(super) path: String,
    pub(super) domain: Option<String>,
    pub(super) http_only: bool,
    pub(super) secure: bool,
    pub(super) same_site: Option<SameSite>,
    pub(super) max_age: Option<Duration>,
    pub(super) rolling: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secrets", &format_args!("[{} hidden]", self.secrets.len()))
            .field("name", &self.name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("http_only", &self.http_only)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("max_age", &self.max_age)
            .field("rolling", &self.rolling)
            .finish()
    }
}

impl Config {
    /// The expiry of a row written now: now + max-age when the cookie has one, else the
    /// store's ttl.
    pub(super) fn row_expiry<M: SessionModel>(&self, store: &Store<M>) -> DateTime<Utc> {
        match self.max_age {
            Some(age) => store.expiry_after(age),
            None => store.expiry(None),
        }
    }

    /// express-session's cookie object for a session made here, with the layer's max-age;
    /// `ExpressJson` fills in `expires` when it writes the row.
    pub(super) fn cookie_object(&self) -> Value {
        let mut cookie = SessionData::new();
        // express-session's `cookie.maxAge` in milliseconds; `ExpressJson` sets `expires` to the
        // row's expiry when there is one.
        let max_age = self.max_age.map_or(Value::Null, |age| {
            json!(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
        });
        cookie.insert("originalMaxAge".into(), max_age);
        cookie.insert("expires".into(), Value::Null);
        if self.secure {
            cookie.insert("secure".into(), Value::Bool(true));
        }
        cookie.insert("httpOnly".into(), Value::Bool(self.http_only));
        if let Some(domain) = &self.domain {
            cookie.insert("domain".into(), json!(domain));
        }
        cookie.insert("path".into(), json!(self.path));
        if let Some(same_site) = self.same_site {
            cookie.insert(
                "sameSite".into(),
                json!(same_site.as_str().to_ascii_lowercase()),
            );
        }
        Value::Object(cookie)
    }

    /// `Set-Cookie` for session `sid`, attributes in the order express-session writes them.
    pub(super) fn set_cookie(
        &self,
        sid: &str,
        expires: Option<DateTime<Utc>>,
    ) -> Option<HeaderValue> {
        let value = sign_cookie(sid, self.secrets.first()?);
        self.header(&value, expires.filter(|_| self.max_age.is_some()))
    }

    /// `Set-Cookie` that removes the cookie, as Express's `res.clearCookie` does.
    pub(super) fn clear_cookie(&self) -> Option<HeaderValue> {
        self.header("", Some(DateTime::<Utc>::UNIX_EPOCH))
    }

    /// The `Set-Cookie` line, written here rather than by the `cookie` crate: express-session
    /// writes the attributes in the order `Domain`, `Path`, `Expires`, `HttpOnly`, `Secure`,
    /// `SameSite`, and the tests compare our line with Node's byte for byte, while the crate
    /// writes `HttpOnly; SameSite; Secure; Path; Domain; Expires`, adds `Secure` to
    /// `SameSite=None` by itself and drops a leading dot from the domain.
    fn header(&self, value: &str, expires: Option<DateTime<Utc>>) -> Option<HeaderValue> {
        let mut line = format!("{}={value}", self.name);
        if let Some(domain) = &self.domain {
            let _ = write!(line, "; Domain={domain}");
        }
        let _ = write!(line, "; Path={}", self.path);
        if let Some(t) = expires {
            let _ = write!(line, "; Expires={}", t.format("%a, %d %b %Y %H:%M:%S GMT"));
        }
        if self.http_only {
            line.push_str("; HttpOnly");
        }
        if self.secure {
            line.push_str("; Secure");
        }
        if let Some(same_site) = self.same_site {
            let _ = write!(line, "; SameSite={}", same_site.as_str());
        }
        match HeaderValue::from_str(&line) {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::error!(error = %err, "the session cookie is not a valid header; not sent");
                None
            }
        }
    }
}

/// A cookie name as the `cookie` module accepts it: an RFC 7230 token.
pub(super) fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An attribute value that cannot break the `Set-Cookie` line: visible ASCII and blanks, no `;`.
pub(super) fn is_attribute_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b';')
}

/// The value of the first cookie called `name` in the request's `Cookie` headers, as the
/// `cookie` module's `parse` finds it: pairs split at `;`, blanks trimmed, one pair of
/// surrounding double quotes removed, the first occurrence of a name kept.
pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().find_map(|line| {
        let line = String::from_utf8_lossy(line.as_bytes());
        Cookie::split_parse(line.as_ref())
            .flatten()
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value_trimmed().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::express::DEFAULT_COOKIE_NAME;

    // Computed by express-session 1.19.0's dependencies (cookie-signature 1.0.7, cookie 0.7.2)
    // in Node: `cookie.serialize('connect.sid', 's:' + signature.sign(sid, 'keyboard cat'),
    // {path: '/', httpOnly: true, expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
    // sameSite: 'lax', secure: true, domain: 'example.com'})`.
    const NODE_A: &str = "connect.sid=s%3AzJ1qKbWQ3xVnCX0mVhYlYbW9cQ3xq3bT.Kk39JmnY5c97ym4JYYZfk0jABIwVv0JRt28eOw85Vlo; Domain=example.com; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Secure; SameSite=Lax";
    const NODE_B: &str = "connect.sid=s%3Aa.b.c.G8ReS2HiYVtvMBGFvZUGp5RaCauWFLUTjnnTm%2FEQ2aE; Domain=example.com; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Secure; SameSite=Lax";

    fn config() -> Config {
        Config {
            secrets: vec![b"keyboard cat".to_vec()],
            name: DEFAULT_COOKIE_NAME.into(),
            path: "/".into(),
            domain: Some("example.com".into()),
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Lax),
            max_age: Some(Duration::from_secs(60)),
            rolling: false,
        }
    }

    #[test]
    fn set_cookie_matches_express_byte_for_byte() {
        let expires = DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = config();
        let a = c
            .set_cookie("zJ1qKbWQ3xVnCX0mVhYlYbW9cQ3xq3bT", Some(expires))
            .unwrap();
        assert_eq!(a.to_str().unwrap(), NODE_A);
        let b = c.set_cookie("a.b.c", Some(expires)).unwrap();
        assert_eq!(b.to_str().unwrap(), NODE_B);
    }

    #[test]
    fn cookies_are_found_as_the_cookie_module_finds_them() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1;b ; connect.sid = \"s%3Ax\" ; connect.sid=second"),
        );
        assert_eq!(
            cookie_value(&headers, "connect.sid").as_deref(),
            Some("s%3Ax")
        );
        assert_eq!(cookie_value(&headers, "b"), None);
        // A second Cookie header is read after the first.
        headers.append(header::COOKIE, HeaderValue::from_static("other=z"));
        assert_eq!(cookie_value(&headers, "other").as_deref(), Some("z"));
    }

    #[test]
    fn bad_cookie_names_and_attributes_are_refused() {
        assert!(is_cookie_name("connect.sid"));
        assert!(!is_cookie_name(""));
        assert!(!is_cookie_name("a b"));
        assert!(!is_cookie_name("a=b"));
        assert!(!is_cookie_name("a;b"));
        assert!(is_attribute_value("/app path"));
        assert!(!is_attribute_value("/a;b"));
        assert!(!is_attribute_value("/a\nb"));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let text = format!("{:?}", config());
        assert!(!text.contains("keyboard"), "{text}");
        assert!(text.contains("1 hidden"), "{text}");
    }
}
