//! Reader for Prusa binary G-code (`.bgcode`, "GCDE") files.
//!
//! Layout (prusa3d/libbgcode `doc/specifications.md`; all integers little-endian):
//! * File header (10 bytes): magic `GCDE`, version `u32` (= 1),
//!   checksum type `u16` (0 = none, 1 = CRC32).
//! * Blocks, each: header `type u16, compression u16, uncompressed_size u32`
//!   plus `compressed_size u32` only when compression != 0; parameters
//!   (thumbnail: `format u16, width u16, height u16`; every other block:
//!   `encoding u16`); data (`compressed_size` bytes if compressed, else
//!   `uncompressed_size`); then, with CRC32, a `u32` CRC-32 of the header,
//!   parameters and data.
//! * Block types: 0 file metadata, 1 G-code, 2 slicer metadata, 3 printer
//!   metadata, 4 print metadata, 5 thumbnail. Compression: 0 none, 1 deflate
//!   (zlib stream), 2 heatshrink 11/4, 3 heatshrink 12/4. Metadata encoding:
//!   0 INI (`key=value\n`), 1 JSON (libbgcode source only; returned as one
//!   pair with an empty key). G-code encoding: 0 plain, 1 MeatPack,
//!   2 MeatPack keeping comment lines. Thumbnail format: 0 PNG, 1 JPG, 2 QOI.
//!
//! The specified block order (file metadata, printer metadata, thumbnails,
//! print metadata, slicer metadata, G-code) is not enforced.

pub mod heatshrink;
pub mod meatpack;

use std::borrow::Cow;

/// The four magic bytes at the start of every binary G-code file.
pub const MAGIC: &[u8; 4] = b"GCDE";
/// The only binary G-code version this reader knows.
pub const SUPPORTED_VERSION: u32 = 1;
const FILE_HEADER_LEN: usize = 10;
/// Deflate cannot expand data by more than about 1032:1.
const MAX_DEFLATE_RATIO: usize = 1032;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThumbnailFormat {
    Png,
    Jpg,
    Qoi,
}

impl ThumbnailFormat {
    pub fn name(self) -> &'static str {
        match self {
            ThumbnailFormat::Png => "png",
            ThumbnailFormat::Jpg => "jpg",
            ThumbnailFormat::Qoi => "qoi",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thumbnail {
    pub format: ThumbnailFormat,
    pub width: u16,
    pub height: u16,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BgcodeFile {
    pub version: u32,
    /// INI `key=value` pairs, in file order (same for the other metadata).
    pub file_metadata: Vec<(String, String)>,
    pub printer_metadata: Vec<(String, String)>,
    pub print_metadata: Vec<(String, String)>,
    pub slicer_metadata: Vec<(String, String)>,
    pub thumbnails: Vec<Thumbnail>,
    /// All G-code blocks decoded and concatenated: plain-text G-code.
    pub gcode: Vec<u8>,
    /// For each G-code block: (file offset of the block header, offset in
    /// `gcode` where the block's text starts).
    pub gcode_block_offsets: Vec<(u64, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumType {
    None,
    Crc32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockType {
    FileMetadata,
    Gcode,
    SlicerMetadata,
    PrinterMetadata,
    PrintMetadata,
    Thumbnail,
}

impl BlockType {
    fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0 => BlockType::FileMetadata,
            1 => BlockType::Gcode,
            2 => BlockType::SlicerMetadata,
            3 => BlockType::PrinterMetadata,
            4 => BlockType::PrintMetadata,
            5 => BlockType::Thumbnail,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Deflate,
    Heatshrink11_4,
    Heatshrink12_4,
}

impl Compression {
    fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0 => Compression::None,
            1 => Compression::Deflate,
            2 => Compression::Heatshrink11_4,
            3 => Compression::Heatshrink12_4,
            _ => return None,
        })
    }
}

/// One block as stored in the file, CRC already verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawBlock<'a> {
    pub index: usize,
    /// File offset of the block header.
    pub offset: u64,
    pub block_type: BlockType,
    pub compression: Compression,
    pub uncompressed_size: u32,
    /// Block parameters (6 bytes for thumbnails, 2 otherwise).
    pub params: &'a [u8],
    /// Stored payload (compressed when `compression` is not `None`).
    pub data: &'a [u8],
    /// Stored checksum, when the file has checksums.
    pub crc: Option<u32>,
}

/// Errors. Block-level errors carry the block index and the file offset of
/// the block header.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BgcodeError {
    #[error("not a binary G-code file (magic is not \"GCDE\")")]
    BadMagic,
    #[error("unsupported binary G-code version {version}")]
    UnsupportedVersion { version: u32 },
    #[error("unsupported checksum type {value} (byte 8)")]
    BadChecksumType { value: u16 },
    #[error("input truncated: data needed at byte {offset} is missing{}", block_index.map_or(String::new(), |b| format!(" (block {b})")))]
    Truncated {
        offset: u64,
        block_index: Option<usize>,
    },
    #[error("block {block_index} at byte {offset}: unknown block type {value}")]
    BadBlockType {
        block_index: usize,
        offset: u64,
        value: u16,
    },
    #[error("block {block_index} at byte {offset}: unknown compression {value}")]
    BadCompression {
        block_index: usize,
        offset: u64,
        value: u16,
    },
    #[error("block {block_index} at byte {offset}: unknown encoding {value}")]
    BadEncoding {
        block_index: usize,
        offset: u64,
        value: u16,
    },
    #[error("block {block_index} at byte {offset}: unknown thumbnail format {value}")]
    BadThumbnailFormat {
        block_index: usize,
        offset: u64,
        value: u16,
    },
    #[error("block {block_index} at byte {offset}: CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    CrcMismatch {
        block_index: usize,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("block {block_index} at byte {offset}: decompression failed: {reason}")]
    Decompress {
        block_index: usize,
        offset: u64,
        reason: String,
    },
}

impl BgcodeError {
    /// Byte offset the error refers to, if any.
    pub fn offset(&self) -> Option<u64> {
        use BgcodeError::*;
        match self {
            BadMagic => Some(0),
            UnsupportedVersion { .. } => Some(4),
            BadChecksumType { .. } => Some(8),
            Truncated { offset, .. }
            | BadBlockType { offset, .. }
            | BadCompression { offset, .. }
            | BadEncoding { offset, .. }
            | BadThumbnailFormat { offset, .. }
            | CrcMismatch { offset, .. }
            | Decompress { offset, .. } => Some(*offset),
        }
    }

    /// Index of the block the error refers to, if any.
    pub fn block_index(&self) -> Option<usize> {
        use BgcodeError::*;
        match self {
            BadMagic | UnsupportedVersion { .. } | BadChecksumType { .. } => None,
            Truncated { block_index, .. } => *block_index,
            BadBlockType { block_index, .. }
            | BadCompression { block_index, .. }
            | BadEncoding { block_index, .. }
            | BadThumbnailFormat { block_index, .. }
            | CrcMismatch { block_index, .. }
            | Decompress { block_index, .. } => Some(*block_index),
        }
    }
}

/// True when `bytes` starts with the binary G-code magic `GCDE`.
pub fn is_bgcode(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses the file header; returns (version, checksum type).
pub fn read_header(bytes: &[u8]) -> Result<(u32, ChecksumType), BgcodeError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(BgcodeError::BadMagic);
    }
    let truncated = |offset: usize| BgcodeError::Truncated {
        offset: offset as u64,
        block_index: None,
    };
    if bytes.len() < MAGIC.len() {
        return Err(truncated(bytes.len()));
    }
    let version = le_u32(bytes, 4).ok_or_else(|| truncated(4))?;
    if version != SUPPORTED_VERSION {
        return Err(BgcodeError::UnsupportedVersion { version });
    }
    let checksum = match le_u16(bytes, 8).ok_or_else(|| truncated(8))? {
        0 => ChecksumType::None,
        1 => ChecksumType::Crc32,
        value => return Err(BgcodeError::BadChecksumType { value }),
    };
    Ok((version, checksum))
}

/// Splits the file into blocks and verifies every block's CRC, without
/// decompressing anything.
pub fn raw_blocks(bytes: &[u8]) -> Result<Vec<RawBlock<'_>>, BgcodeError> {
    let (_, checksum) = read_header(bytes)?;
    let mut blocks = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    while pos < bytes.len() {
        let block = parse_block(bytes, pos, blocks.len(), checksum)?;
        pos = block.1;
        blocks.push(block.0);
    }
    Ok(blocks)
}

/// Parses the block starting at `start`; returns it and the offset after it.
fn parse_block(
    bytes: &[u8],
    start: usize,
    index: usize,
    checksum: ChecksumType,
) -> Result<(RawBlock<'_>, usize), BgcodeError> {
    let offset = start as u64;
    let truncated = |at: usize| BgcodeError::Truncated {
        offset: at as u64,
        block_index: Some(index),
    };
    let type_raw = le_u16(bytes, start).ok_or_else(|| truncated(start))?;
    let block_type = BlockType::from_u16(type_raw).ok_or(BgcodeError::BadBlockType {
        block_index: index,
        offset,
        value: type_raw,
    })?;
    let comp_raw = le_u16(bytes, start + 2).ok_or_else(|| truncated(start + 2))?;
    let compression = Compression::from_u16(comp_raw).ok_or(BgcodeError::BadCompression {
        block_index: index,
        offset,
        value: comp_raw,
    })?;
    let uncompressed_size = le_u32(bytes, start + 4).ok_or_else(|| truncated(start + 4))?;
    let (stored_size, params_at) = if compression == Compression::None {
        (uncompressed_size, start + 8)
    } else {
        (
            le_u32(bytes, start + 8).ok_or_else(|| truncated(start + 8))?,
            start + 12,
        )
    };
    let params_len = if block_type == BlockType::Thumbnail {
        6
    } else {
        2
    };
    let data_at = params_at + params_len;
    let data_end = data_at
        .checked_add(stored_size as usize)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| truncated(data_at.min(bytes.len())))?;
    let (crc, end) = match checksum {
        ChecksumType::None => (None, data_end),
        ChecksumType::Crc32 => {
            let stored = le_u32(bytes, data_end).ok_or_else(|| truncated(data_end))?;
            let computed = crc32fast::hash(&bytes[start..data_end]);
            if stored != computed {
                return Err(BgcodeError::CrcMismatch {
                    block_index: index,
                    offset,
                    stored,
                    computed,
                });
            }
            (Some(stored), data_end + 4)
        }
    };
    let block = RawBlock {
        index,
        offset,
        block_type,
        compression,
        uncompressed_size,
        params: &bytes[params_at..data_at],
        data: &bytes[data_at..data_end],
        crc,
    };
    Ok((block, end))
}

/// Reads and fully decodes a binary G-code file held in memory.
pub fn read(bytes: &[u8]) -> Result<BgcodeFile, BgcodeError> {
    read_impl(bytes, true)
}

/// Like [`read`], but leaves `gcode` and `gcode_block_offsets` empty
/// (G-code blocks are still CRC-checked, not decompressed).
pub fn read_metadata(bytes: &[u8]) -> Result<BgcodeFile, BgcodeError> {
    read_impl(bytes, false)
}

fn read_impl(bytes: &[u8], decode_gcode: bool) -> Result<BgcodeFile, BgcodeError> {
    let (version, checksum) = read_header(bytes)?;
    let mut file = BgcodeFile {
        version,
        ..Default::default()
    };
    let mut scratch = Vec::new();
    let mut pos = FILE_HEADER_LEN;
    let mut index = 0usize;
    while pos < bytes.len() {
        let (block, end) = parse_block(bytes, pos, index, checksum)?;
        decode_block(&block, &mut file, &mut scratch, decode_gcode)?;
        pos = end;
        index += 1;
    }
    Ok(file)
}

fn decode_block(
    block: &RawBlock<'_>,
    file: &mut BgcodeFile,
    scratch: &mut Vec<u8>,
    decode_gcode: bool,
) -> Result<(), BgcodeError> {
    let (block_index, offset) = (block.index, block.offset);
    let param = |i: usize| le_u16(block.params, 2 * i).unwrap_or(0);
    match block.block_type {
        BlockType::Thumbnail => {
            let format = match param(0) {
                0 => ThumbnailFormat::Png,
                1 => ThumbnailFormat::Jpg,
                2 => ThumbnailFormat::Qoi,
                value => {
                    return Err(BgcodeError::BadThumbnailFormat {
                        block_index,
                        offset,
                        value,
                    })
                }
            };
            let data = payload(block, scratch)?.into_owned();
            file.thumbnails.push(Thumbnail {
                format,
                width: param(1),
                height: param(2),
                data,
            });
        }
        BlockType::Gcode => {
            let encoding = param(0);
            if encoding > 2 {
                return Err(BgcodeError::BadEncoding {
                    block_index,
                    offset,
                    value: encoding,
                });
            }
            if !decode_gcode {
                return Ok(());
            }
            let text_start = file.gcode.len() as u64;
            let data = payload(block, scratch)?;
            if encoding == 0 {
                file.gcode.extend_from_slice(&data);
            } else {
                meatpack::decode_into(&data, &mut file.gcode);
            }
            file.gcode_block_offsets.push((offset, text_start));
        }
        BlockType::FileMetadata
        | BlockType::PrinterMetadata
        | BlockType::PrintMetadata
        | BlockType::SlicerMetadata => {
            let encoding = param(0);
            if encoding > 1 {
                return Err(BgcodeError::BadEncoding {
                    block_index,
                    offset,
                    value: encoding,
                });
            }
            let data = payload(block, scratch)?;
            let target = match block.block_type {
                BlockType::FileMetadata => &mut file.file_metadata,
                BlockType::PrinterMetadata => &mut file.printer_metadata,
                BlockType::PrintMetadata => &mut file.print_metadata,
                _ => &mut file.slicer_metadata,
            };
            if encoding == 0 {
                parse_ini(&data, target);
            } else {
                target.push((String::new(), String::from_utf8_lossy(&data).into_owned()));
            }
        }
    }
    Ok(())
}

/// INI metadata: one `key=value` per `\n`-terminated line, split at the
/// first `=`. Lines without `=` are skipped; a trailing `\r` is removed.
/// Invalid UTF-8 is replaced (lossy).
fn parse_ini(data: &[u8], out: &mut Vec<(String, String)>) {
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            out.push((
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
    }
}

/// The block's uncompressed payload (borrowed when stored uncompressed).
fn payload<'a>(
    block: &RawBlock<'a>,
    scratch: &'a mut Vec<u8>,
) -> Result<Cow<'a, [u8]>, BgcodeError> {
    let expected = block.uncompressed_size as usize;
    let fail = |reason: String| BgcodeError::Decompress {
        block_index: block.index,
        offset: block.offset,
        reason,
    };
    if expected == 0 && block.data.is_empty() {
        // libbgcode writes an empty block with no payload even when the
        // header names a compression.
        return Ok(Cow::Borrowed(block.data));
    }
    match block.compression {
        Compression::None => Ok(Cow::Borrowed(block.data)),
        Compression::Deflate => {
            let max = block
                .data
                .len()
                .saturating_mul(MAX_DEFLATE_RATIO)
                .saturating_add(64);
            if expected > max {
                return Err(fail(format!(
                    "declared size {expected} is impossible for {} bytes of deflate data",
                    block.data.len()
                )));
            }
            let out = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(block.data, expected)
                .map_err(|e| fail(format!("deflate: {e}")))?;
            if out.len() != expected {
                return Err(fail(format!(
                    "deflate produced {} bytes, header says {expected}",
                    out.len()
                )));
            }
            Ok(Cow::Owned(out))
        }
        Compression::Heatshrink11_4 | Compression::Heatshrink12_4 => {
            let w = if block.compression == Compression::Heatshrink11_4 {
                11
            } else {
                12
            };
            let max = heatshrink::max_output_len(block.data.len(), w, 4);
            if expected > max {
                return Err(fail(format!(
                    "declared size {expected} is impossible for {} bytes of heatshrink data",
                    block.data.len()
                )));
            }
            scratch.clear();
            let n = heatshrink::decode_into(block.data, w, 4, expected, scratch)
                .map_err(|e| fail(e.to_string()))?;
            if n != expected {
                return Err(fail(format!(
                    "heatshrink produced {n} bytes, header says {expected}"
                )));
            }
            Ok(Cow::Borrowed(scratch.as_slice()))
        }
    }
}

#[cfg(test)]
mod tests;
