//! CRC-64 with the "Jones" polynomial, reflected, zero initial value and no
//! final xor: the checksum Redis puts at the end of an RDB file and of a
//! DUMP payload. Slice-by-8 tables, built at compile time.

const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 reflected

const fn tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut j = 1;
        while j < 8 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            j += 1;
        }
        i += 1;
    }
    t
}

static T: [[u64; 256]; 8] = tables();

/// Continues a CRC over `data` (start with 0).
pub fn update(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        crc = T[7][(v & 0xff) as usize]
            ^ T[6][((v >> 8) & 0xff) as usize]
            ^ T[5][((v >> 16) & 0xff) as usize]
            ^ T[4][((v >> 24) & 0xff) as usize]
            ^ T[3][((v >> 32) & 0xff) as usize]
            ^ T[2][((v >> 40) & 0xff) as usize]
            ^ T[1][((v >> 48) & 0xff) as usize]
            ^ T[0][(v >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = T[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_value() {
        // Redis's crc64 self-test value.
        assert_eq!(super::update(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = super::update(0, &data);
        let split = super::update(super::update(0, &data[..333]), &data[333..]);
        assert_eq!(whole, split);
    }
}
