//! What every provider's send client shares: classifying transport failures for the outbox's
//! retry policy, reading `Retry-After`, and keeping error snippets short.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{FetchError, FetchedMedia, ProviderError, SendOutcome};

/// Longest snippet of a provider's answer kept in an error (bodies can be large, and may
/// echo customer data).
pub(crate) const MAX_SNIPPET_CHARS: usize = 200;

/// The first `MAX_SNIPPET_CHARS` characters.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(MAX_SNIPPET_CHARS).collect()
}

/// A request that could not even be built (bad URL or header value): configuration, so
/// retrying cannot help.
pub(crate) fn invalid_request(detail: String) -> SendOutcome {
    SendOutcome::Rejected {
        http_status: 0,
        error: ProviderError {
            code: "invalid_request".into(),
            title: "the request could not be built".into(),
            detail: Some(truncate(&detail)),
        },
    }
}

/// A send that got no HTTP answer: retryable (the provider may or may not have received
/// it: the outbox's policy is at-least-once), except a request that could not be built.
pub(crate) fn classify_transport_error(e: &reqwest::Error) -> SendOutcome {
    if e.is_builder() {
        return invalid_request(e.to_string());
    }
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    SendOutcome::Retryable { reason: format!("{kind}: {}", truncate(&e.to_string())), retry_after: None }
}

/// `Retry-After` is either delay-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// Sends a prepared GET and reads the media it answers, never holding more than
/// `max_bytes`: a `Content-Length` over the limit is refused before the body is read, and a
/// body that grows past it (no or lying length) is cut off as soon as it does.
///
/// 5xx, 429 and transport failures are retryable; any other non-2xx is permanent.
pub(crate) async fn download(
    request: reqwest::RequestBuilder,
    max_bytes: u64,
) -> Result<FetchedMedia, FetchError> {
    let mut response = request.send().await.map_err(|e| FetchError::Retryable(transport_reason(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let reason = format!("media download answered HTTP {}", status.as_u16());
        return Err(if status.is_server_error() || status.as_u16() == 429 {
            FetchError::Retryable(reason)
        } else {
            FetchError::Permanent(reason)
        });
    }
    if response.content_length().is_some_and(|len| len > max_bytes) {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Retryable(transport_reason(&e)))? {
        if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(FetchedMedia { bytes, content_type })
}

fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    format!("{kind}: {}", truncate(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(truncate(&"é".repeat(500)).chars().count(), MAX_SNIPPET_CHARS);
    }
}
