//! Files for CPEs to download (firmware, configuration), with byte ranges (RFC 9110 §14) so
//! an interrupted download resumes.

use bytes::Bytes;
use edge_shared::store::StoreError;
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::service::{plain, HttpResponse};
use super::Acs;

/// The byte range a `Range` header asks of a body of `len` bytes: `Ok(None)` for the whole
/// body, `Err(())` when the range cannot be satisfied. One range only; a multi-range request
/// gets the whole body, which RFC 9110 allows.
pub fn range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len.checked_sub(1).ok_or(())?)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len.checked_sub(1).ok_or(())?
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        (start, end)
    };
    if start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

pub async fn serve(acs: &Acs, req: Request<Body>) -> HttpResponse {
    let raw = req.uri().path().trim_start_matches("/files/");
    let name = unpercent(raw);
    let store = &acs.registry.store;
    let unavailable = |e: StoreError| match e {
        StoreError::NotFound(..) => plain(StatusCode::NOT_FOUND, "no such file"),
        e => {
            tracing::warn!(error = %e, "cannot read file");
            plain(StatusCode::SERVICE_UNAVAILABLE, "file store unavailable")
        }
    };
    let len = match store.file_meta(&name).await {
        Ok(f) => f.size as u64,
        Err(e) => return unavailable(e),
    };
    let header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, (start, end), content_range) = match range(header, len) {
        Ok(None) => (StatusCode::OK, (0, len.saturating_sub(1)), None),
        Ok(Some((s, e))) => (
            StatusCode::PARTIAL_CONTENT,
            (s, e),
            Some(format!("bytes {s}-{e}/{len}")),
        ),
        Err(()) => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let size = if len == 0 { 0 } else { end - start + 1 };
    // Only the bytes asked for are read; a HEAD reads none.
    let body = if req.method() == Method::HEAD || size == 0 {
        Bytes::new()
    } else {
        match store.file_range(&name, start, size).await {
            Ok(b) => Bytes::from(b),
            Err(e) => return unavailable(e),
        }
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

fn unpercent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range(None, 10), Ok(None));
        assert_eq!(range(Some("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(range(Some("bytes=4-"), 10), Ok(Some((4, 9))));
        assert_eq!(range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(range(Some("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(range(Some("bytes=5-2"), 10), Err(()));
        assert_eq!(range(Some("bytes=x-2"), 10), Err(()));
        assert_eq!(range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(range(Some("bytes=0-0"), 0), Err(()));
        assert_eq!(unpercent("fw%20v2.bin"), "fw v2.bin");
        assert_eq!(unpercent("a%2"), "a%2");
        assert_eq!(unpercent("%é"), "%é");
    }
}
