//! gzip encoding in one call of libdeflate, the encoder beside [`super::inflate`]'s decoder.
//! A deployment of 10,000 resources (several MB) is gzipped whenever an update publishes it or
//! the materialise job stores a replay state; libdeflate's level 1 encodes such JSON several
//! times faster than flate2's fast level, and smaller (docs/BENCHMARKS.md, Journal replay).
//! The output is one ordinary gzip member, so every reader (flate2, the CLI, S3 clients) is
//! unaffected.

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_compressor, libdeflate_compressor, libdeflate_free_compressor,
    libdeflate_gzip_compress, libdeflate_gzip_compress_bound,
};

/// libdeflate's fastest level: this runs on the request path, as flate2's fast level did.
const LEVEL: i32 = 1;

/// `data` as one gzip member; `None` only when libdeflate could not allocate its state (the
/// caller then encodes the slow way).
pub fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let compressor = Compressor::new()?;
    // SAFETY: the compressor is live; the call only computes a size.
    let bound = unsafe { libdeflate_gzip_compress_bound(compressor.0.as_ptr(), data.len()) };
    let mut out = vec![0u8; bound];
    // SAFETY: the pointers and lengths come from live slices that outlive the call; libdeflate
    // reads `data.len()` bytes and writes at most `out.len()` bytes into `out`.
    let written = unsafe {
        libdeflate_gzip_compress(
            compressor.0.as_ptr(),
            data.as_ptr().cast(),
            data.len(),
            out.as_mut_ptr().cast(),
            out.len(),
        )
    };
    // 0 means the output did not fit, which the bound rules out.
    if written == 0 {
        return None;
    }
    out.truncate(written);
    // The bound is about the input's size; keep only what the member needs.
    out.shrink_to_fit();
    Some(out)
}

/// An allocated libdeflate compressor, freed on drop.
struct Compressor(NonNull<libdeflate_compressor>);

impl Compressor {
    fn new() -> Option<Compressor> {
        // SAFETY: no preconditions; returns null when out of memory or for an invalid level.
        NonNull::new(unsafe { libdeflate_alloc_compressor(LEVEL) }).map(Compressor)
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_compressor` and freed only here.
        unsafe { libdeflate_free_compressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use proptest::prelude::*;

    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_member_decodes_with_flate2_and_the_fast_path() {
        let text = b"{\"resources\": [{\"urn\": \"urn:pulumi:dev::p::t::n\"}]}".repeat(500);
        let gz = gzip(&text).unwrap();
        assert!(gz.len() < text.len() / 10, "{} bytes", gz.len());
        assert_eq!(gunzip(&gz), text);
        let size = super::super::inflate::stated_size(&gz).unwrap();
        assert_eq!(super::super::inflate::exact(&gz, size), Some(text));
        assert_eq!(gunzip(&gzip(b"").unwrap()), b"");
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            prop_assert_eq!(gunzip(&gzip(&data).unwrap()), data);
        }
    }
}
