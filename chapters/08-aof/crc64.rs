//! CRC-64/Jones, the checksum Redis stores in the last 8 bytes of every RDB
//! file (and also uses for `DUMP` payloads).
//!
//! The parameters are: polynomial `0xad93d23594c935a9`, input and output
//! reflected, initial value 0, no final XOR. "Reflected" means the bits of
//! each byte are processed least significant first, so the register shifts
//! right and we use the bit-reversed polynomial `0x95ac9329ac4bc9b5`. The
//! standard check value, the CRC of the ASCII bytes `123456789`, is
//! `0xe9c6d914c4b8d9ca`.

/// The polynomial in reflected (bit-reversed) form, for a right-shifting
/// register.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

/// For every byte value, the effect of pushing that byte through the register
/// one bit at a time. With it, `update` handles a whole byte per step instead
/// of eight single-bit steps.
const TABLE: [u64; 256] = build_table();

/// Computes `TABLE` at compile time, so the program starts with it ready
/// and nothing needs a lazy initialiser or a lock.
const fn build_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    // `for` loops are not allowed in a `const fn`, hence the `while` loops.
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// Continues a CRC over `bytes`. Start with `crc = 0`; feeding a buffer in
/// several pieces gives the same result as feeding it at once, which lets
/// the RDB reader and writer keep a running checksum as bytes pass through.
pub fn update(mut crc: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        // The low byte of the register meets the next input byte; the table
        // says what the eight shifts that follow do to the rest.
        crc = TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::update;

    #[test]
    fn check_value() {
        assert_eq!(update(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn empty_input_leaves_the_crc_alone() {
        assert_eq!(update(0, b""), 0);
        assert_eq!(update(42, b""), 42);
    }

    #[test]
    fn pieces_give_the_same_crc_as_the_whole() {
        let data = b"REDIS0010 and then some more bytes";
        let whole = update(0, data);
        for split in 0..=data.len() {
            let (a, b) = data.split_at(split);
            assert_eq!(update(update(0, a), b), whole, "split at {split}");
        }
    }

    #[test]
    fn crc_of_the_smallest_rdb_file() {
        // "REDIS0010" then the EOF opcode: the 18-byte empty RDB stores this
        // CRC, little-endian, in its last 8 bytes.
        assert_eq!(update(0, b"REDIS0010\xff"), 0xeb7e_a789_fe37_fda9);
    }
}
