//! The codec against frames from the PN532 user manual, byte for byte.

use super::*;

/// GetFirmwareVersion as the manual gives it (7.2.2).
const GET_FIRMWARE: [u8; 9] = [0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD4, 0x02, 0x2A, 0x00];
/// Its answer from a PN532 v1.6 supporting ISO 14443A/B and ISO 18092.
const FIRMWARE: [u8; 13] = [
    0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00,
];
/// InListPassiveTarget's answer for one MIFARE Classic with a 4-byte UID.
const ONE_CARD: [u8; 19] = [
    0x00, 0x00, 0xFF, 0x0C, 0xF4, 0xD5, 0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xA1, 0xB2, 0xC3,
    0xD4, 0xE4, 0x00,
];

fn info(tfi: u8, data: &[u8]) -> Frame {
    Frame::Info {
        tfi,
        data: data.to_vec(),
    }
}

/// Everything `bytes` decodes to, fed in one push.
fn decode_all(bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
    let mut d = Decoder::new();
    d.push(bytes);
    std::iter::from_fn(|| d.next_frame()).collect()
}

#[test]
fn commands_encode_as_the_manual_shows() {
    assert_eq!(command(0x02, &[]), GET_FIRMWARE);
    // SAMConfiguration: normal mode, timeout 1 s, IRQ used.
    assert_eq!(
        command(0x14, &[0x01, 0x14, 0x01]),
        [
            0x00, 0x00, 0xFF, 0x05, 0xFB, 0xD4, 0x14, 0x01, 0x14, 0x01, 0x02, 0x00
        ]
    );
    // InListPassiveTarget: one target, 106 kbps type A.
    assert_eq!(
        command(0x4A, &[0x01, 0x00]),
        [
            0x00, 0x00, 0xFF, 0x04, 0xFC, 0xD4, 0x4A, 0x01, 0x00, 0xE1, 0x00
        ]
    );
    // RFConfiguration, MaxRetries: ATR 0xFF, PSL 1, passive activation 2.
    assert_eq!(
        command(0x32, &[0x05, 0xFF, 0x01, 0x02]),
        [
            0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD4, 0x32, 0x05, 0xFF, 0x01, 0x02, 0xF3, 0x00
        ]
    );
}

#[test]
fn manual_frames_decode() {
    assert_eq!(
        decode_all(&FIRMWARE),
        [Ok(info(0xD5, &[0x03, 0x32, 0x01, 0x06, 0x07]))]
    );
    assert_eq!(
        decode_all(&ONE_CARD),
        [Ok(info(
            0xD5,
            &[
                0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xA1, 0xB2, 0xC3, 0xD4
            ]
        ))]
    );
    assert_eq!(decode_all(&ACK), [Ok(Frame::Ack)]);
    assert_eq!(decode_all(&NACK), [Ok(Frame::Nack)]);
    assert_eq!(decode_all(&ERROR), [Ok(Frame::Error)]);
    // The host's own frames decode too (the emulator reads them).
    assert_eq!(decode_all(&GET_FIRMWARE), [Ok(info(0xD4, &[0x02]))]);
}

#[test]
fn ack_then_response_back_to_back() {
    let mut bytes = ACK.to_vec();
    bytes.extend_from_slice(&FIRMWARE);
    let got = decode_all(&bytes);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], Ok(Frame::Ack));
    assert!(matches!(&got[1], Ok(Frame::Info { tfi: 0xD5, data }) if data[0] == 0x03));
}

#[test]
fn every_split_of_a_frame_decodes_once() {
    let mut bytes = ACK.to_vec();
    bytes.extend_from_slice(&ONE_CARD);
    for cut in 0..=bytes.len() {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for chunk in [&bytes[..cut], &bytes[cut..]] {
            d.push(chunk);
            got.extend(std::iter::from_fn(|| d.next_frame()));
        }
        assert_eq!(got.len(), 2, "cut at {cut}: {got:?}");
        assert_eq!(got[0], Ok(Frame::Ack), "cut at {cut}");
        assert!(got[1].is_ok(), "cut at {cut}: {got:?}");
    }
}

#[test]
fn byte_by_byte_reads_say_need_more_until_the_last_byte() {
    let mut d = Decoder::new();
    // The DCS is the 18th byte: the postamble is not waited for.
    for &b in &ONE_CARD[..17] {
        d.push(&[b]);
        assert_eq!(d.next_frame(), None);
    }
    d.push(&ONE_CARD[17..18]);
    assert!(matches!(d.next_frame(), Some(Ok(Frame::Info { .. }))));
    d.push(&ONE_CARD[18..]);
    assert_eq!(d.next_frame(), None);
    assert_eq!(d.pending(), 1, "a lone 00 may start the next frame");
}

#[test]
fn garbage_before_a_frame_is_skipped() {
    let mut bytes = vec![0x55, 0x55, 0x00, 0x00, 0x13, 0xFF, 0x37, 0x00];
    bytes.extend_from_slice(&FIRMWARE);
    assert_eq!(
        decode_all(&bytes),
        [Ok(info(0xD5, &[0x03, 0x32, 0x01, 0x06, 0x07]))]
    );
    // Garbage alone leaves nothing buffered but a possible half start code.
    let mut d = Decoder::new();
    d.push(&[0xAA; 1000]);
    assert_eq!(d.next_frame(), None);
    assert_eq!(d.pending(), 0);
}

#[test]
fn the_wake_up_sequence_is_garbage_to_the_framing() {
    let mut bytes = WAKE_UP.to_vec();
    bytes.extend_from_slice(&GET_FIRMWARE);
    assert_eq!(decode_all(&bytes), [Ok(info(0xD4, &[0x02]))]);
    assert_eq!(WAKE_UP[..2], [0x55, 0x55]);
}

#[test]
fn a_bad_data_checksum_is_reported_and_the_next_frame_still_found() {
    let mut bad = FIRMWARE;
    bad[11] ^= 0x01;
    let mut bytes = bad.to_vec();
    bytes.extend_from_slice(&ONE_CARD);
    let got = decode_all(&bytes);
    assert_eq!(got[0], Err(FrameError::DataChecksum { len: 6 }));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(&got[1], Ok(Frame::Info { data, .. }) if data[0] == 0x4B));
}

#[test]
fn a_bad_length_checksum_is_reported_and_resynchronised() {
    let mut bad = FIRMWARE;
    bad[4] = 0xFB;
    let mut bytes = bad.to_vec();
    bytes.extend_from_slice(&ACK);
    let got = decode_all(&bytes);
    assert_eq!(
        got[0],
        Err(FrameError::LengthChecksum { len: 6, lcs: 0xFB })
    );
    assert_eq!(got.last(), Some(&Ok(Frame::Ack)), "{got:?}");
}

#[test]
fn a_header_claiming_too_much_does_not_stall_the_decoder() {
    // Extended, 0x1000 bytes, with a good LCS.
    let mut bytes = vec![0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x10, 0x00, 0xF0];
    bytes.extend_from_slice(&ACK);
    let got = decode_all(&bytes);
    assert_eq!(got[0], Err(FrameError::TooLong(0x1000)));
    assert_eq!(got.last(), Some(&Ok(Frame::Ack)));
}

#[test]
fn a_frame_without_tfi_is_corrupt() {
    // LEN 0 and LCS 0 add up, but only an ACK has no TFI.
    assert_eq!(
        decode_all(&[0x00, 0x00, 0xFF, 0x00, 0x00, 0x00]),
        [Err(FrameError::Empty)]
    );
}

#[test]
fn extended_frames_round_trip() {
    let data: Vec<u8> = (0..=255u8).chain(0..9).collect();
    let bytes = encode(TFI_PN532, &data);
    // 265 data bytes + TFI = 266 = 0x010A; LCS = -(0x01 + 0x0A).
    assert_eq!(bytes[..8], [0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01, 0x0A, 0xF5]);
    assert_eq!(bytes[8], TFI_PN532);
    assert_eq!(*bytes.last().unwrap(), 0x00);
    assert_eq!(bytes.len(), 8 + 266 + 2);
    let mut d = Decoder::new();
    for chunk in bytes.chunks(7) {
        d.push(chunk);
    }
    assert_eq!(d.next_frame(), Some(Ok(info(TFI_PN532, &data))));
    assert_eq!(d.next_frame(), None);
}

#[test]
fn the_longest_normal_frame_stays_normal() {
    let data = [0x42u8; 254];
    let bytes = encode(TFI_HOST, &data);
    assert_eq!(bytes[..5], [0x00, 0x00, 0xFF, 0xFF, 0x01]);
    assert_eq!(decode_all(&bytes), [Ok(info(TFI_HOST, &data))]);
}

#[test]
fn random_bytes_never_panic_and_keep_the_buffer_small() {
    // A fixed xorshift: the same bytes every run.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut d = Decoder::new();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d.push(&x.to_le_bytes()[..(x % 8) as usize]);
        while d.next_frame().is_some() {}
        assert!(d.pending() <= MAX_LEN + 10, "{} buffered", d.pending());
    }
}
