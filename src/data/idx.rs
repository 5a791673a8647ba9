//! The IDX file format of the MNIST distribution, read from bytes that may be
//! raw or gzip-compressed.
//!
//! ```text
//! offset  size  meaning
//! 0       2     magic: 0x00 0x00
//! 2       1     element type: 0x08 = unsigned byte (the only one MNIST uses)
//! 3       1     number of dimensions n
//! 4       4·n   dimensions, big-endian u32
//! 4+4n    Π d   the elements, row-major
//! ```
//!
//! Nothing in a header is trusted before it is checked: the declared size is
//! computed with overflow checks and capped ([`MAX_DATA_BYTES`]) before any
//! buffer is sized from it, and the data must end exactly where the header says.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Largest data section accepted (1 GiB); MNIST's largest file holds 47 MB.
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// An IDX file that failed to read, with the file named.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct IdxError {
    pub path: PathBuf,
    pub problem: IdxProblem,
}

/// What is wrong with an IDX file.
#[derive(Debug, thiserror::Error)]
pub enum IdxProblem {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("the file is empty")]
    Empty,
    #[error("the name ends in .gz but the content is not gzip: it looks like {0}")]
    NotGzip(String),
    #[error("the gzip stream is corrupt or cut short ({0}); delete the file and download it again")]
    BadGzip(String),
    #[error("the header is cut short: {found} bytes, the header needs {needed}")]
    ShortHeader { found: usize, needed: usize },
    #[error("not an IDX file: it starts with {0}, an IDX file starts with the magic bytes 00 00")]
    BadMagic(String),
    #[error("element type 0x{code:02x} ({name}), expected 0x08 (unsigned byte)")]
    ElementType { code: u8, name: &'static str },
    #[error("the header declares {0} dimensions; expected between 1 and 4")]
    Rank(u8),
    #[error(
        "the header declares dimensions {dims:?}, {bytes} bytes of data, more than the {limit}-byte limit"
    )]
    TooLarge {
        dims: Vec<u64>,
        bytes: String,
        limit: u64,
    },
    #[error(
        "truncated: the header declares {expected} data bytes (dimensions {dims:?}) but the file holds {found}"
    )]
    Truncated {
        dims: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error(
        "over-long: the header declares {expected} data bytes (dimensions {dims:?}) but more bytes follow them"
    )]
    TooLong { dims: Vec<usize>, expected: usize },
}

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
    /// SHA-256 of the decompressed file (header and data), lowercase hex.
    pub sha256: String,
}

/// Reads and validates the IDX file at `path` (raw or gzip, every member of
/// a multi-member gzip file), streaming it: only the declared data is kept,
/// and a path that is not a regular file, or larger than any IDX file of
/// [`MAX_DATA_BYTES`] can be, is refused before it is read.
pub fn read_idx_file(path: &Path) -> Result<IdxArray, IdxError> {
    let fail = |problem| IdxError {
        path: path.to_path_buf(),
        problem,
    };
    let io = |e: std::io::Error| fail(IdxProblem::Io(e.to_string()));
    // The type is asked of the path first: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(fail(IdxProblem::Io("not a regular file".into())));
    }
    // The header is at most 4 + 4·4 bytes.
    if meta.len() > MAX_DATA_BYTES + 20 {
        return Err(fail(IdxProblem::Io(format!(
            "{} bytes, larger than an IDX file of at most {MAX_DATA_BYTES} data bytes can be",
            meta.len()
        ))));
    }
    if meta.len() == 0 {
        return Err(fail(IdxProblem::Empty));
    }
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let is_gzip = reader.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let named_gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let parsed = if is_gzip {
        parse_stream(flate2::bufread::MultiGzDecoder::new(reader), true)
    } else if named_gz {
        let mut head = [0u8; 512];
        let n = read_up_to(&mut reader, &mut head, false).map_err(fail)?;
        Err(IdxProblem::NotGzip(describe_bytes(&head[..n])))
    } else {
        parse_stream(reader, false)
    };
    parsed.map_err(fail)
}

/// Parses IDX `bytes`, decompressing them first when they are gzip. When
/// `named_gz` is set, content that is not gzip is an error describing it.
pub fn parse_idx(bytes: &[u8], named_gz: bool) -> Result<IdxArray, IdxProblem> {
    if bytes.is_empty() {
        return Err(IdxProblem::Empty);
    }
    let is_gzip = bytes.starts_with(&[0x1f, 0x8b]);
    if is_gzip {
        parse_stream(flate2::read::MultiGzDecoder::new(bytes), true)
    } else if named_gz {
        Err(IdxProblem::NotGzip(describe_bytes(bytes)))
    } else {
        parse_stream(bytes, false)
    }
}

fn read_error(e: std::io::Error, gzip: bool) -> IdxProblem {
    if gzip {
        IdxProblem::BadGzip(e.to_string())
    } else {
        IdxProblem::Io(e.to_string())
    }
}

/// Reads as many bytes as `buf` holds or until the end; returns how many.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8], gzip: bool) -> Result<usize, IdxProblem> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e, gzip)),
        }
    }
    Ok(filled)
}

fn parse_stream(mut reader: impl Read, gzip: bool) -> Result<IdxArray, IdxProblem> {
    let mut head = [0u8; 4];
    let found = read_up_to(&mut reader, &mut head, gzip)?;
    if found >= 2 && head[..2] != [0, 0] {
        return Err(IdxProblem::BadMagic(describe_bytes(&head[..found])));
    }
    if found < 4 {
        return Err(IdxProblem::ShortHeader { found, needed: 4 });
    }
    if head[2] != 0x08 {
        return Err(IdxProblem::ElementType {
            code: head[2],
            name: element_type_name(head[2]),
        });
    }
    let rank = head[3];
    if !(1..=4).contains(&rank) {
        return Err(IdxProblem::Rank(rank));
    }
    let mut dim_bytes = vec![0u8; 4 * rank as usize];
    let got = read_up_to(&mut reader, &mut dim_bytes, gzip)?;
    if got < dim_bytes.len() {
        return Err(IdxProblem::ShortHeader {
            found: 4 + got,
            needed: 4 + dim_bytes.len(),
        });
    }
    let dims64: Vec<u64> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64)
        .collect();
    let total = dims64.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let expected = match total {
        Some(t) if t <= MAX_DATA_BYTES => t as usize,
        _ => {
            let bytes = dims64.iter().map(|&d| d as u128).product::<u128>().to_string();
            return Err(IdxProblem::TooLarge {
                dims: dims64,
                bytes,
                limit: MAX_DATA_BYTES,
            });
        }
    };
    let dims: Vec<usize> = dims64.iter().map(|&d| d as usize).collect();

    // Read one byte more than declared to detect over-long files; the buffer
    // grows with the bytes actually present, never from the header alone.
    let mut data = Vec::with_capacity(expected.min(64 << 20) + 1);
    (&mut reader)
        .take(expected as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| read_error(e, gzip))?;
    if data.len() < expected {
        return Err(IdxProblem::Truncated {
            dims,
            expected,
            found: data.len(),
        });
    }
    if data.len() > expected {
        return Err(IdxProblem::TooLong { dims, expected });
    }

    let mut hasher = Sha256::new();
    hasher.update(head);
    hasher.update(&dim_bytes);
    hasher.update(&data);
    let sha256 = hex(&hasher.finalize());
    Ok(IdxArray { dims, data, sha256 })
}

fn element_type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "not a defined IDX type",
    }
}

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short human description of what some bytes look like, for error messages.
pub fn describe_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (no bytes)".to_string();
    }
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let trimmed = text.trim_start();
    let preview: String = String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") || text.contains("<html") {
        return format!(
            "an HTML page (\"{}…\"), probably an error page saved by a failed download",
            preview.trim()
        );
    }
    if trimmed.starts_with("<?xml") || trimmed.starts_with('<') {
        return format!(
            "XML/HTML text (\"{}…\"), probably an error response saved by a failed download",
            preview.trim()
        );
    }
    if bytes.len() >= 3 && bytes[..3] == [0, 0, 0x08] {
        return "an uncompressed IDX file; remove the .gz from its name".to_string();
    }
    if head
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        return format!("text (\"{}…\")", preview.trim());
    }
    let shown = &bytes[..bytes.len().min(8)];
    let spaced: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
    format!("binary data starting with bytes {}", spaced.join(" "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// Builds an IDX file of unsigned bytes.
    pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_raw_and_gzip_identically() {
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&raw, false).unwrap();
        let b = parse_idx(&gzip(&raw), true).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(a.dims, b.dims);
        assert_eq!(a.data, b.data);
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.sha256, hex(&Sha256::digest(&raw)));
    }

    /// A file of several gzip members (what pigz and `cat a.gz b.gz` write)
    /// reads as their concatenation; bytes after the last member are an error.
    #[test]
    fn reads_every_gzip_member_and_refuses_trailing_garbage() {
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let mut two = gzip(&raw[..7]);
        two.extend(gzip(&raw[7..]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a-idx1-ubyte.gz");
        std::fs::write(&path, &two).unwrap();
        let a = read_idx_file(&path).unwrap();
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(parse_idx(&two, true).unwrap().data, a.data);
        let mut garbage = two.clone();
        garbage.extend_from_slice(b"trailing bytes");
        std::fs::write(&path, &garbage).unwrap();
        assert!(read_idx_file(&path).is_err());
        assert!(parse_idx(&garbage, true).is_err());
    }

    #[test]
    fn rejects_truncated_and_over_long() {
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5]);
        let e = parse_idx(&raw, false).unwrap_err().to_string();
        assert!(
            e.contains("truncated") && e.contains("6") && e.contains("5"),
            "{e}"
        );
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6, 7]);
        let e = parse_idx(&raw, false).unwrap_err().to_string();
        assert!(e.contains("over-long"), "{e}");
        let e = parse_idx(&gzip(&raw), true).unwrap_err().to_string();
        assert!(e.contains("over-long"), "{e}");
    }

    #[test]
    fn rejects_bad_magic_type_rank_and_short_header() {
        let mut raw = idx_bytes(&[1], &[0]);
        raw[0] = 7;
        assert!(matches!(parse_idx(&raw, false), Err(IdxProblem::BadMagic(_))));
        let mut raw = idx_bytes(&[1], &[0, 0, 0, 0]);
        raw[2] = 0x0D;
        let e = parse_idx(&raw, false).unwrap_err().to_string();
        assert!(e.contains("32-bit float") && e.contains("unsigned byte"), "{e}");
        let mut raw = idx_bytes(&[1], &[0]);
        raw[3] = 0;
        assert!(matches!(parse_idx(&raw, false), Err(IdxProblem::Rank(0))));
        assert!(matches!(
            parse_idx(&[0, 0, 8], false),
            Err(IdxProblem::ShortHeader { .. })
        ));
        assert!(matches!(
            parse_idx(&[0, 0, 8, 3, 0, 0, 0, 1], false),
            Err(IdxProblem::ShortHeader { found: 8, needed: 16 })
        ));
        assert!(matches!(parse_idx(&[], false), Err(IdxProblem::Empty)));
    }

    #[test]
    fn huge_header_is_refused_without_allocating() {
        // 4 × 4e9 × 4e9 × 4e9 elements: overflows u64; and 60000 × 60000 × 60000 > 1 GiB.
        for dims in [[u32::MAX, u32::MAX, u32::MAX], [60_000, 60_000, 60_000]] {
            let raw = idx_bytes(&dims, &[1, 2, 3]);
            let e = parse_idx(&raw, false).unwrap_err();
            assert!(matches!(e, IdxProblem::TooLarge { .. }), "{e}");
            assert!(e.to_string().contains("limit"));
            let e = parse_idx(&gzip(&raw), true).unwrap_err();
            assert!(matches!(e, IdxProblem::TooLarge { .. }), "{e}");
        }
    }

    #[test]
    fn html_named_gz_is_described() {
        let page = b"<!DOCTYPE html><html><body>404 Not Found</body></html>";
        let e = parse_idx(page, true).unwrap_err().to_string();
        assert!(e.contains("not gzip") && e.contains("HTML page"), "{e}");
        let raw = idx_bytes(&[1], &[3]);
        let e = parse_idx(&raw, true).unwrap_err().to_string();
        assert!(e.contains("uncompressed IDX"), "{e}");
        let e = parse_idx(&[0xff, 0xfe, 0x00, 0x01, 0x80], true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ff fe 00 01 80"), "{e}");
    }

    #[test]
    fn cut_gzip_stream_is_an_error() {
        let raw = idx_bytes(&[100], &[7; 100]);
        let gz = gzip(&raw);
        let cut = &gz[..gz.len() - 12];
        let e = parse_idx(cut, true).unwrap_err();
        assert!(
            matches!(e, IdxProblem::BadGzip(_) | IdxProblem::Truncated { .. }),
            "{e}"
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train-labels-idx1-ubyte.gz");
        std::fs::write(&p, b"<html>oops</html>").unwrap();
        let e = read_idx_file(&p).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        let e = read_idx_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing") && e.contains("cannot read"), "{e}");
    }
}
