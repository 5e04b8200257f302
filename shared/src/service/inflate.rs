//! The fast path of gzip decoding. Nearly every body and stored blob is one gzip member (the
//! CLI's Go `gzip.Writer`, our own `gzip`), whose trailer states its decoded size (`ISIZE`, the
//! size mod 2^32). Such a member decodes in one call of libdeflate into a buffer of exactly that
//! size, about 2.5 times faster than flate2's streaming decoder (docs/BENCHMARKS.md, Server
//! cost). Anything else — several members, a trailer that lies, data libdeflate refuses — is
//! left to the caller's streaming decoder, which gives the same bytes for every input both
//! accept (a property test holds them to each other).

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// The smallest gzip member: a 10-byte header, an empty deflate block, the 8-byte trailer.
const MIN_MEMBER: usize = 18;

/// The decoded size a single-member gzip `data` states in its trailer, if it looks like gzip.
/// Only a hint: the decoder checks it.
pub fn stated_size(data: &[u8]) -> Option<usize> {
    if data.len() < MIN_MEMBER || data[..2] != [0x1f, 0x8b] {
        return None;
    }
    let trailer: [u8; 4] = data[data.len() - 4..].try_into().ok()?;
    usize::try_from(u32::from_le_bytes(trailer)).ok()
}

/// Decodes `data` if it is exactly one gzip member that decodes to `size` bytes (CRC checked);
/// `None` for anything else, which the caller then decodes the slow way.
pub fn exact(data: &[u8], size: usize) -> Option<Vec<u8>> {
    let decompressor = Decompressor::new()?;
    let mut out = vec![0u8; size];
    let (mut read, mut written) = (0usize, 0usize);
    // SAFETY: the pointers and lengths come from live slices that outlive the call; libdeflate
    // reads at most `data.len()` bytes, writes at most `out.len()` bytes into `out`, and writes
    // the two counts through the pointers to the locals.
    let result = unsafe {
        libdeflate_gzip_decompress_ex(
            decompressor.0.as_ptr(),
            data.as_ptr().cast(),
            data.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            &mut read,
            &mut written,
        )
    };
    // `read` short of the input means more members follow: not ours to judge.
    (result == libdeflate_result_LIBDEFLATE_SUCCESS && read == data.len() && written == size)
        .then_some(out)
}

/// An allocated libdeflate decompressor (its state is reset at each call), freed on drop.
struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Decompressor> {
        // SAFETY: no preconditions; returns null when out of memory.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Decompressor)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor` and freed only here.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use proptest::prelude::*;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn streaming(data: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).ok().map(|_| out)
    }

    fn fast(data: &[u8]) -> Option<Vec<u8>> {
        exact(data, stated_size(data)?)
    }

    #[test]
    fn one_member_decodes_and_anything_else_is_left_to_the_caller() {
        let text = b"{\"events\": [{\"sequence\": 1}]}".repeat(50);
        let one = gz(&text);
        assert_eq!(fast(&one), Some(text.clone()));
        assert_eq!(fast(&gz(b"")), Some(Vec::new()));
        // Two members: the trailer is the second's; the fast path must not stop at the first.
        let twice = [one.clone(), one.clone()].concat();
        assert_eq!(fast(&twice), None);
        assert_eq!(streaming(&twice), Some(text.repeat(2)));
        // A trailer that lies about the size, a broken CRC, trailing garbage, not gzip.
        let mut lying = one.clone();
        let n = lying.len();
        lying[n - 4] ^= 1;
        assert_eq!(fast(&lying), None);
        let mut bad_crc = one.clone();
        bad_crc[n - 8] ^= 1;
        assert_eq!(fast(&bad_crc), None);
        assert_eq!(fast(&[one.clone(), b"xx".to_vec()].concat()), None);
        assert_eq!(stated_size(b"{\"events\": []}\n\n\n\n\n"), None);
    }

    proptest! {
        /// Whatever the fast path accepts, the streaming decoder decodes to the same bytes.
        #[test]
        fn the_fast_path_agrees_with_the_streaming_decoder(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..4),
            flip in proptest::option::of((any::<prop::sample::Index>(), 0u8..8)),
        ) {
            let mut data: Vec<u8> = parts.iter().flat_map(|p| gz(p)).collect();
            if let Some((at, bit)) = flip {
                let i = at.index(data.len());
                data[i] ^= 1 << bit;
            }
            if let Some(out) = fast(&data) {
                prop_assert_eq!(Some(out), streaming(&data));
            }
            if parts.len() == 1 && flip.is_none() {
                prop_assert_eq!(fast(&data), Some(parts[0].clone()));
            }
        }
    }
}
