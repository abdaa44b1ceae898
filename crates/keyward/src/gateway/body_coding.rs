//! Request bodies sent compressed (`content-encoding`): the Codex CLI's built-in provider
//! compresses its requests with zstd, and HTTP clients may use gzip or deflate. The front door
//! decodes them before anything reads the body, within the limits a plain body has: the decoded
//! bytes are held to `max_body_bytes` as they come out, so a small body that expands without end
//! (a compression bomb) is refused like a large one, having cost at most that much memory.

use std::io::Read;

use axum::http::{header, HeaderMap};

/// How a request body is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Coding {
    Identity,
    Zstd,
    Gzip,
    /// zlib-wrapped (RFC 9110), or a bare deflate stream as some clients send it.
    Deflate,
}

impl Coding {
    /// The coding `content-encoding` names; `Err` with what it says when keyward cannot decode
    /// that (another coding, or several stacked).
    pub(super) fn of(headers: &HeaderMap) -> Result<Self, String> {
        let mut codings = Vec::new();
        for value in headers.get_all(header::CONTENT_ENCODING) {
            let text = value.to_str().map_err(|_| "<not text>".to_string())?;
            codings.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity")),
            );
        }
        let named = |text: &str| crate::dialect::cut_short(text).to_string();
        match codings.as_slice() {
            [] => Ok(Self::Identity),
            [one] => match one.to_ascii_lowercase().as_str() {
                "zstd" => Ok(Self::Zstd),
                "gzip" | "x-gzip" => Ok(Self::Gzip),
                "deflate" => Ok(Self::Deflate),
                _ => Err(named(one)),
            },
            several => Err(named(&several.join(", "))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(super) enum DecodeError {
    #[error("decoded, the request body is larger than keyward's limit of {limit} bytes ([gateway] max_body_bytes)")]
    TooLarge { limit: usize },
    #[error("the request body is not valid {coding} (content-encoding): {source}")]
    Corrupt {
        coding: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// `body` decoded from `coding`, at most `limit` bytes of it.
pub(super) fn decode(coding: Coding, body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let decoded = match coding {
        Coding::Identity => append(body, limit, &mut out),
        Coding::Gzip => append(flate2::read::MultiGzDecoder::new(body), limit, &mut out),
        Coding::Deflate if is_zlib(body) => {
            append(flate2::read::ZlibDecoder::new(body), limit, &mut out)
        }
        Coding::Deflate => append(flate2::read::DeflateDecoder::new(body), limit, &mut out),
        Coding::Zstd => zstd_frames(body, limit, &mut out),
    };
    match decoded {
        Ok(true) => Ok(out),
        Ok(false) => Err(DecodeError::TooLarge { limit }),
        Err(source) => Err(DecodeError::Corrupt {
            coding: coding.name(),
            source,
        }),
    }
}

/// Whether a deflate body starts with a zlib header (RFC 1950: method 8, a check multiple of 31).
fn is_zlib(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Each zstd frame of `body` in turn (a coder may write several), appended to `out`; `false`
/// once `out` would pass `limit`.
fn zstd_frames(mut body: &[u8], limit: usize, out: &mut Vec<u8>) -> std::io::Result<bool> {
    while !body.is_empty() {
        // The frame's decoder reads through `body`, leaving it at the next frame.
        let frame = ruzstd::decoding::StreamingDecoder::new(&mut body)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if !append(frame, limit, out)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Appends what `reader` yields to `out`; `false` (and stops) once `out` would pass `limit`.
fn append(mut reader: impl Read, limit: usize, out: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if out.len() + read > limit {
            return Ok(false);
        }
        out.extend_from_slice(chunk.get(..read).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn coding(value: &str) -> Result<Coding, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
        );
        Coding::of(&headers)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        encoder.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
    }

    /// The codings keyward decodes are named in any case; identity is no coding; others, and
    /// several stacked, are named back.
    #[test]
    fn codings_are_read_from_the_header() {
        assert_eq!(Coding::of(&HeaderMap::new()), Ok(Coding::Identity));
        assert_eq!(coding("identity"), Ok(Coding::Identity));
        assert_eq!(coding("ZSTD"), Ok(Coding::Zstd));
        assert_eq!(coding("gzip"), Ok(Coding::Gzip));
        assert_eq!(coding("x-gzip"), Ok(Coding::Gzip));
        assert_eq!(coding(" deflate "), Ok(Coding::Deflate));
        assert_eq!(coding("br"), Err("br".into()));
        assert_eq!(coding("gzip, zstd"), Err("gzip, zstd".into()));
    }

    /// Each coding decodes back to the body; zstd frames one after the other are one body.
    #[test]
    fn bodies_decode() {
        let body = br#"{"model":"gpt-6.1-sol","input":"ping"}"#.repeat(50);
        assert_eq!(
            decode(Coding::Gzip, &gzip(&body), 1 << 20).ok(),
            Some(body.clone())
        );
        assert_eq!(
            decode(Coding::Zstd, &zstd(&body), 1 << 20).ok(),
            Some(body.clone())
        );
        let two = [zstd(b"{\"a\":"), zstd(b"1}")].concat();
        assert_eq!(
            decode(Coding::Zstd, &two, 1 << 20).ok(),
            Some(b"{\"a\":1}".to_vec())
        );
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&body).unwrap_or_else(|e| panic!("{e}"));
        let zlib = zlib.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            decode(Coding::Deflate, &zlib, 1 << 20).ok(),
            Some(body.clone())
        );
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&body).unwrap_or_else(|e| panic!("{e}"));
        let raw = raw.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decode(Coding::Deflate, &raw, 1 << 20).ok(), Some(body));
    }

    /// A body that decodes past the limit stops there (a compression bomb costs at most the
    /// limit); one that is not what its coding says is refused as such.
    #[test]
    fn bombs_and_garbage_are_refused() {
        let bomb = vec![b' '; 8 << 20];
        for (coding, coded) in [(Coding::Gzip, gzip(&bomb)), (Coding::Zstd, zstd(&bomb))] {
            assert!(coded.len() < 64 << 10, "{coding:?}: {} bytes", coded.len());
            assert!(
                matches!(decode(coding, &coded, 1 << 20), Err(DecodeError::TooLarge { limit }) if limit == 1 << 20),
                "{coding:?}"
            );
        }
        for (coding, garbage) in [
            (Coding::Gzip, &b"{\"model\":\"not compressed\"}"[..]),
            (Coding::Zstd, b"{\"model\":\"not compressed\"}"),
            // A deflate block of the reserved type 3.
            (Coding::Deflate, b"\x07not deflate"),
        ] {
            let refused = decode(coding, garbage, 1 << 20);
            assert!(
                matches!(refused, Err(DecodeError::Corrupt { .. })),
                "{coding:?}: {refused:?}"
            );
        }
    }
}
