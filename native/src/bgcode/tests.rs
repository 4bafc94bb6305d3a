use super::*;

const REAL_FILE: &str = "/work/shared/corpus/public/mk_prusaslicer_2.9.1.bgcode";

fn load_real() -> Option<Vec<u8>> {
    match std::fs::read(REAL_FILE) {
        Ok(b) => Some(b),
        Err(e) => {
            println!("skipping: cannot read {REAL_FILE}: {e}");
            None
        }
    }
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------
// Synthetic file builder

struct Builder {
    bytes: Vec<u8>,
    crc: bool,
}

impl Builder {
    fn new(crc: bool) -> Self {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&u16::from(crc).to_le_bytes());
        Builder { bytes, crc }
    }

    /// Appends a block; `stored` is the payload as stored (already compressed).
    fn block(
        mut self,
        ty: u16,
        comp: u16,
        uncompressed: u32,
        params: &[u8],
        stored: &[u8],
    ) -> Self {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&ty.to_le_bytes());
        self.bytes.extend_from_slice(&comp.to_le_bytes());
        self.bytes.extend_from_slice(&uncompressed.to_le_bytes());
        if comp != 0 {
            self.bytes
                .extend_from_slice(&(stored.len() as u32).to_le_bytes());
        }
        self.bytes.extend_from_slice(params);
        self.bytes.extend_from_slice(stored);
        if self.crc {
            let c = crc32fast::hash(&self.bytes[start..]);
            self.bytes.extend_from_slice(&c.to_le_bytes());
        }
        self
    }

    fn plain(self, ty: u16, params: &[u8], data: &[u8]) -> Self {
        self.block(ty, 0, data.len() as u32, params, data)
    }
}

// ---------------------------------------------------------------------------
// The real PrusaSlicer file

#[test]
fn real_file_blocks_and_crcs() {
    let Some(bytes) = load_real() else { return };
    assert!(is_bgcode(&bytes));
    assert_eq!(read_header(&bytes).unwrap(), (1, ChecksumType::Crc32));
    let blocks = raw_blocks(&bytes).expect("every block parses and its CRC verifies");
    assert!(blocks.len() > 5);
    assert!(blocks.iter().all(|b| b.crc.is_some()));
    let last = blocks.last().unwrap();
    let data_end = last.data.as_ptr() as usize - bytes.as_ptr() as usize + last.data.len();
    assert_eq!(data_end + 4, bytes.len());
    let mut summary = std::collections::BTreeMap::new();
    for b in &blocks {
        *summary
            .entry(format!("{:?}/{:?}", b.block_type, b.compression))
            .or_insert(0) += 1;
    }
    println!("{} blocks: {summary:?}", blocks.len());
}

#[test]
fn real_file_contents() {
    let Some(bytes) = load_real() else { return };
    let f = read(&bytes).unwrap();
    assert_eq!(f.version, 1);

    // Metadata.
    assert!(get(&f.file_metadata, "Producer")
        .unwrap()
        .starts_with("PrusaSlicer"));
    assert_eq!(get(&f.printer_metadata, "printer_model"), Some("COREONE"));
    assert!(get(&f.printer_metadata, "nozzle_diameter").is_some());
    let time = get(&f.print_metadata, "estimated printing time (normal mode)").expect("print time");
    assert!(time.contains('m') || time.contains('s'), "{time}");
    assert!(get(&f.print_metadata, "filament used [g]").is_some());
    assert!(
        f.slicer_metadata.len() > 100,
        "slicer config has {} keys",
        f.slicer_metadata.len()
    );
    assert!(get(&f.slicer_metadata, "layer_height").is_some());

    // Thumbnails.
    assert!(!f.thumbnails.is_empty());
    for t in &f.thumbnails {
        assert!(t.width > 0 && t.height > 0);
        match t.format {
            ThumbnailFormat::Png => {
                assert!(t.data.starts_with(b"\x89PNG\r\n\x1a\n"));
                assert_eq!(&t.data[12..16], b"IHDR");
                let w = u32::from_be_bytes(t.data[16..20].try_into().unwrap());
                let h = u32::from_be_bytes(t.data[20..24].try_into().unwrap());
                assert_eq!((w, h), (u32::from(t.width), u32::from(t.height)));
            }
            ThumbnailFormat::Jpg => assert!(t.data.starts_with(b"\xFF\xD8")),
            ThumbnailFormat::Qoi => {
                assert!(t.data.starts_with(b"qoif"));
                let w = u32::from_be_bytes(t.data[4..8].try_into().unwrap());
                let h = u32::from_be_bytes(t.data[8..12].try_into().unwrap());
                assert_eq!((w, h), (u32::from(t.width), u32::from(t.height)));
            }
        }
    }

    // G-code text.
    let text = std::str::from_utf8(&f.gcode).expect("G-code is UTF-8");
    let first = text.as_bytes()[0];
    assert!(
        first == b';' || first.is_ascii_uppercase(),
        "starts with {first:?}"
    );
    let lines = text.lines().count();
    let g1 = text.lines().filter(|l| l.starts_with("G1 ")).count();
    println!(
        "{} bytes of G-code, {lines} lines, {g1} G1 lines, {} thumbnails",
        f.gcode.len(),
        f.thumbnails.len()
    );
    assert!(lines >= 1000 && g1 >= 1000);
    assert!(text.contains("M73 P"), "progress markers");
    assert!(!text.contains("G1X"), "spaces restored");

    // Block offsets.
    let gcode_blocks: Vec<_> = raw_blocks(&bytes)
        .unwrap()
        .into_iter()
        .filter(|b| b.block_type == BlockType::Gcode)
        .collect();
    assert_eq!(f.gcode_block_offsets.len(), gcode_blocks.len());
    assert_eq!(f.gcode_block_offsets[0].1, 0);
    for (i, (file_off, text_off)) in f.gcode_block_offsets.iter().enumerate() {
        assert_eq!(*file_off, gcode_blocks[i].offset);
        assert!(*text_off <= f.gcode.len() as u64);
        if i > 0 {
            assert!(*text_off > f.gcode_block_offsets[i - 1].1);
        }
    }

    // Metadata-only read agrees and skips the G-code.
    let m = read_metadata(&bytes).unwrap();
    assert_eq!(m.print_metadata, f.print_metadata);
    assert!(m.gcode.is_empty() && m.gcode_block_offsets.is_empty());
}

// ---------------------------------------------------------------------------
// Synthetic files

#[test]
fn synthetic_all_compressions_and_encodings() {
    let ini = b"Producer=test\r\nno equals sign\nk=v=w\n";
    let gcode = b"; comment\nG1 X1 Y2\n";
    let deflated = miniz_oxide::deflate::compress_to_vec_zlib(gcode, 6);
    // Heatshrink 11/4: literal 'G', literal '1', backref dist 2 len 2 -> "G1G1".
    let hs = [0xA3, 0xCC, 0x40, 0x04, 0x40];
    let mut hs_check = Vec::new();
    heatshrink::decode_into(&hs, 11, 4, 100, &mut hs_check).unwrap();
    assert_eq!(hs_check, b"G1G1");
    // MeatPack: enable packing, "G1\n".
    let mp = [0xFF, 0xFF, 0xFB, 0x1D, 0xCC];
    let png = b"\x89PNG fake";
    let mut thumb_params = 2u16.to_le_bytes().to_vec(); // QOI
    thumb_params.extend_from_slice(&16u16.to_le_bytes());
    thumb_params.extend_from_slice(&9u16.to_le_bytes());

    for crc in [false, true] {
        let bytes = Builder::new(crc)
            .plain(0, &[0, 0], ini)
            .plain(3, &[0, 0], b"printer_model=MK4\n")
            .plain(5, &thumb_params, png)
            .block(4, 1, 0, &[0, 0], b"")
            .block(
                2,
                1,
                13,
                &[1, 0],
                &miniz_oxide::deflate::compress_to_vec_zlib(b"{\"json\":true}", 6),
            )
            .plain(1, &[0, 0], gcode)
            .block(1, 1, gcode.len() as u32, &[0, 0], &deflated)
            .block(1, 2, 4, &[0, 0], &hs)
            .block(1, 0, mp.len() as u32, &[1, 0], &mp)
            .bytes;
        let f = read(&bytes).unwrap();
        assert_eq!(
            f.file_metadata,
            vec![
                ("Producer".into(), "test".into()),
                ("k".into(), "v=w".into())
            ]
        );
        assert_eq!(get(&f.printer_metadata, "printer_model"), Some("MK4"));
        assert!(f.print_metadata.is_empty());
        assert_eq!(
            f.slicer_metadata,
            vec![(String::new(), "{\"json\":true}".into())]
        );
        assert_eq!(f.thumbnails.len(), 1);
        assert_eq!(f.thumbnails[0].format, ThumbnailFormat::Qoi);
        assert_eq!((f.thumbnails[0].width, f.thumbnails[0].height), (16, 9));
        assert_eq!(f.thumbnails[0].data, png);
        assert_eq!(
            f.gcode,
            b"; comment\nG1 X1 Y2\n; comment\nG1 X1 Y2\nG1G1G1\n"
        );
        let text_offsets: Vec<u64> = f.gcode_block_offsets.iter().map(|o| o.1).collect();
        assert_eq!(text_offsets, vec![0, 19, 38, 42]);
    }
}

#[test]
fn synthetic_errors() {
    let good = Builder::new(true).plain(3, &[0, 0], b"a=b\n").bytes;
    assert!(read(&good).is_ok());

    assert!(matches!(
        read(b""),
        Err(BgcodeError::Truncated { offset: 0, .. })
    ));
    assert!(matches!(read(b"GC"), Err(BgcodeError::Truncated { .. })));
    assert!(matches!(
        read(b"GCDE"),
        Err(BgcodeError::Truncated { offset: 4, .. })
    ));
    assert!(matches!(
        read(b"GCDE\x01\0\0\0"),
        Err(BgcodeError::Truncated { offset: 8, .. })
    ));
    assert!(matches!(
        read(b"XCDE\x01\0\0\0\x01\0"),
        Err(BgcodeError::BadMagic)
    ));
    assert!(matches!(read(b";G1 X1\n"), Err(BgcodeError::BadMagic)));
    assert!(matches!(
        read(b"GCDE\x02\0\0\0\x01\0"),
        Err(BgcodeError::UnsupportedVersion { version: 2 })
    ));
    assert!(matches!(
        read(b"GCDE\x01\0\0\0\x02\0"),
        Err(BgcodeError::BadChecksumType { value: 2 })
    ));
    // Header only: a valid, empty file.
    assert_eq!(
        read(b"GCDE\x01\0\0\0\x01\0").unwrap(),
        BgcodeFile {
            version: 1,
            ..Default::default()
        }
    );
    assert!(!is_bgcode(b"GCD") && is_bgcode(b"GCDE"));

    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 1;
    assert!(matches!(
        read(&bad_crc),
        Err(BgcodeError::CrcMismatch {
            block_index: 0,
            offset: 10,
            ..
        })
    ));

    let e = read(
        &Builder::new(false)
            .plain(3, &[0, 0], b"")
            .plain(9, &[0, 0], b"")
            .bytes,
    )
    .unwrap_err();
    assert_eq!(
        e,
        BgcodeError::BadBlockType {
            block_index: 1,
            offset: 20,
            value: 9
        }
    );
    assert_eq!((e.offset(), e.block_index()), (Some(20), Some(1)));
    assert!(e.to_string().contains("block 1 at byte 20"));
    let e = read(&Builder::new(false).block(3, 7, 0, &[0, 0], b"").bytes).unwrap_err();
    assert!(matches!(e, BgcodeError::BadCompression { value: 7, .. }));
    let e = read(&Builder::new(false).plain(1, &[3, 0], b"").bytes).unwrap_err();
    assert!(matches!(e, BgcodeError::BadEncoding { value: 3, .. }));
    let e = read(&Builder::new(false).plain(4, &[2, 0], b"").bytes).unwrap_err();
    assert!(matches!(e, BgcodeError::BadEncoding { value: 2, .. }));
    let e = read(
        &Builder::new(false)
            .plain(5, &[3, 0, 1, 0, 1, 0], b"x")
            .bytes,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        BgcodeError::BadThumbnailFormat { value: 3, .. }
    ));

    // Huge size fields never allocate: they are rejected as truncated or impossible.
    let mut huge = Builder::new(false).plain(1, &[0, 0], b"G1\n").bytes;
    huge[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        read(&huge),
        Err(BgcodeError::Truncated {
            block_index: Some(0),
            ..
        })
    ));
    for comp in [1u16, 2, 3] {
        let bytes = Builder::new(true)
            .block(
                1,
                comp,
                u32::MAX,
                &[0, 0],
                b"\x78\x9c\x03\x00\x00\x00\x00\x01",
            )
            .bytes;
        assert!(
            matches!(
                read(&bytes),
                Err(BgcodeError::Decompress {
                    block_index: 0,
                    offset: 10,
                    ..
                })
            ),
            "{comp}"
        );
        let mut bytes = Builder::new(false).block(1, comp, 8, &[0, 0], b"abc").bytes;
        bytes[18..22].copy_from_slice(&u32::MAX.to_le_bytes()); // compressed size
        assert!(matches!(read(&bytes), Err(BgcodeError::Truncated { .. })));
    }
    // Declared size smaller / larger than the real output.
    let deflated = miniz_oxide::deflate::compress_to_vec_zlib(b"G1 X1\n", 6);
    for size in [5u32, 7] {
        let e = read(
            &Builder::new(true)
                .block(1, 1, size, &[0, 0], &deflated)
                .bytes,
        )
        .unwrap_err();
        assert!(matches!(e, BgcodeError::Decompress { .. }), "{e}");
    }
    for size in [3u32, 5] {
        let e = read(
            &Builder::new(true)
                .block(1, 2, size, &[0, 0], &[0xA3, 0xCC, 0x40, 0x04, 0x40])
                .bytes,
        )
        .unwrap_err();
        assert!(matches!(e, BgcodeError::Decompress { .. }), "{e}");
    }
    // Garbage deflate stream.
    let e = read(
        &Builder::new(true)
            .block(1, 1, 10, &[0, 0], b"not zlib at all")
            .bytes,
    )
    .unwrap_err();
    assert!(matches!(e, BgcodeError::Decompress { .. }), "{e}");
}

// ---------------------------------------------------------------------------
// Robustness

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_truncation_is_handled() {
    let Some(bytes) = load_real() else { return };
    let full = read(&bytes).unwrap();
    let mut lens: Vec<usize> = (0..bytes.len().min(4096)).collect();
    lens.extend((4096..bytes.len()).step_by(bytes.len() / 61 + 1));
    // Also around each block boundary and inside its header / parameters.
    for b in raw_blocks(&bytes).unwrap() {
        let o = b.offset as usize;
        for d in [0, 1, 2, 7, 8, 9, 11, 12, 13, 14, 17, 18, 19, 20] {
            lens.push((o + d).min(bytes.len()));
        }
        lens.push(o - 1);
    }
    for len in lens {
        match read(&bytes[..len]) {
            Ok(f) => {
                // Only a cut exactly at a block boundary can succeed.
                assert!(f.gcode.len() <= full.gcode.len());
                assert_eq!(f.gcode[..], full.gcode[..f.gcode.len()]);
            }
            Err(e) => assert!(e.offset().unwrap_or(0) <= len as u64, "{len}: {e}"),
        }
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let Some(bytes) = load_real() else { return };
    // Keep the test fast in debug builds: all non-G-code blocks plus the
    // first few G-code blocks.
    let blocks = raw_blocks(&bytes).unwrap();
    let cut = blocks
        .iter()
        .filter(|b| b.block_type == BlockType::Gcode)
        .nth(2)
        .map_or(bytes.len(), |b| b.offset as usize);
    let small = &bytes[..cut];
    let spans: Vec<(usize, usize)> = raw_blocks(small)
        .unwrap()
        .iter()
        .map(|b| {
            (
                b.offset as usize,
                b.data.as_ptr() as usize - bytes.as_ptr() as usize + b.data.len(),
            )
        })
        .collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0, 0);
    for round in 0..2500 {
        let mut m = small.to_vec();
        let flips = 1 + rng.below(4);
        for _ in 0..flips {
            let i = rng.below(m.len());
            m[i] ^= 1u8 << rng.below(8);
        }
        // Every other round, repair the CRCs so the corruption reaches the
        // decompressors and decoders.
        if round % 2 == 1 {
            for &(start, data_end) in &spans {
                let c = crc32fast::hash(&m[start..data_end]);
                m[data_end..data_end + 4].copy_from_slice(&c.to_le_bytes());
            }
        }
        match read(&m) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    println!("flips: {ok} ok, {err} err");
    assert!(err > 0);
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(12345);
    for _ in 0..3000 {
        let len = rng.below(200);
        let mut m = Builder::new(rng.below(2) == 1).bytes;
        m.extend((0..len).map(|_| rng.next() as u8));
        // Make the block header plausible often enough to reach the decoders.
        if m.len() >= 22 {
            m[10] = rng.below(6) as u8;
            m[11] = 0;
            m[12] = rng.below(4) as u8;
            m[13] = 0;
            m[16] = 0;
            m[17] = 0;
            m[20] = 0;
            m[21] = 0;
        }
        let _ = read(&m);
        let _ = raw_blocks(&m);
        let mut out = Vec::new();
        let _ = heatshrink::decode_into(&m, 11, 4, 1 << 16, &mut out);
        let _ = meatpack::decode(&m);
    }
}

#[test]
#[ignore]
fn timing() {
    let Some(bytes) = load_real() else { return };
    let n = 20;
    let t = std::time::Instant::now();
    let mut total = 0;
    for _ in 0..n {
        total += read(&bytes).unwrap().gcode.len();
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "read(): {:.1} MB/s of G-code output ({:.2} ms per file)",
        total as f64 / s / 1e6,
        s * 1e3 / n as f64
    );

    let blocks = raw_blocks(&bytes).unwrap();
    let mut unpacked = Vec::new();
    for b in blocks.iter().filter(|b| b.block_type == BlockType::Gcode) {
        let w = if b.compression == Compression::Heatshrink11_4 {
            11
        } else {
            12
        };
        heatshrink::decode_into(b.data, w, 4, usize::MAX, &mut unpacked).unwrap();
    }
    let t = std::time::Instant::now();
    let mut out = Vec::new();
    for _ in 0..n {
        out.clear();
        for b in blocks.iter().filter(|b| b.block_type == BlockType::Gcode) {
            let w = if b.compression == Compression::Heatshrink11_4 {
                11
            } else {
                12
            };
            heatshrink::decode_into(b.data, w, 4, usize::MAX, &mut out).unwrap();
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "heatshrink: {:.1} MB/s output",
        (out.len() * n) as f64 / s / 1e6
    );
    let t = std::time::Instant::now();
    for _ in 0..n {
        out.clear();
        meatpack::decode_into(&unpacked, &mut out);
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "meatpack: {:.1} MB/s output",
        (out.len() * n) as f64 / s / 1e6
    );
}
