//! The few PN532 commands a gate needs, and their answers, pure.
//!
//! Codes and layouts from the PN532 user manual (chapter 7). A response's
//! code is its command's plus one.

use std::fmt;

use crate::Credential;

/// GetFirmwareVersion (7.2.2).
pub const GET_FIRMWARE_VERSION: u8 = 0x02;
/// SAMConfiguration (7.2.10).
pub const SAM_CONFIGURATION: u8 = 0x14;
/// RFConfiguration (7.3.1).
pub const RF_CONFIGURATION: u8 = 0x32;
/// InListPassiveTarget (7.3.5).
pub const IN_LIST_PASSIVE_TARGET: u8 = 0x4A;

/// SAMConfiguration parameters: normal mode (no SAM), a 1 s virtual-card
/// timeout (unused in normal mode, 0x14 × 50 ms), and the IRQ pin driven.
pub const SAM_NORMAL: [u8; 3] = [0x01, 0x14, 0x01];

/// InListPassiveTarget parameters: at most one target, 106 kbps type A
/// (ISO 14443A: MIFARE, NTAG, DESFire).
pub const LIST_ONE_TYPE_A: [u8; 2] = [0x01, 0x00];

/// RFConfiguration parameters for CfgItem 5 (MaxRetries): ATR retries at
/// their default, one PSL retry, and `passive` activation attempts per
/// InListPassiveTarget. The default (0xFF) retries forever, so an
/// InListPassiveTarget with no card would never answer and polling would
/// be blind to a reader that stopped answering.
pub fn max_retries(passive: u8) -> [u8; 4] {
    [0x05, 0xFF, 0x01, passive]
}

/// What GetFirmwareVersion answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firmware {
    /// The IC: 0x32 for a PN532.
    pub ic: u8,
    /// The firmware version.
    pub ver: u8,
    /// The firmware revision.
    pub rev: u8,
    /// Bit field of the protocols supported (1: ISO 14443A, 2: B, 4: ISO 18092).
    pub support: u8,
}

impl fmt::Display for Firmware {
    /// `PN532 v1.6`: the IC is written in hex, as NXP names its chips.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PN5{:02X} v{}.{}", self.ic, self.ver, self.rev)
    }
}

/// An answer that is not what its command promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Shorter than its layout.
    #[error("answer {code:#04x} is {len} byte(s), too short")]
    Short {
        /// The response code.
        code: u8,
        /// Its length, code included.
        len: usize,
    },
    /// A UID length no ISO 14443A card has.
    #[error("card UID of {0} byte(s): ISO 14443A UIDs have 4, 7 or 10")]
    UidLength(usize),
}

/// Reads GetFirmwareVersion's answer (`03 IC Ver Rev Support`).
pub fn firmware(data: &[u8]) -> Result<Firmware, AnswerError> {
    match *data {
        [_, ic, ver, rev, support, ..] => Ok(Firmware {
            ic,
            ver,
            rev,
            support,
        }),
        _ => Err(AnswerError::Short {
            code: GET_FIRMWARE_VERSION + 1,
            len: data.len(),
        }),
    }
}

/// Reads InListPassiveTarget's answer for type A: `None` if no card is in
/// the field, else the first target's UID.
///
/// Layout: `4B NbTg [Tg SENS_RES(2) SEL_RES NFCIDLength NFCID1.. (ATS..)]`.
pub fn listed_card(data: &[u8]) -> Result<Option<Credential>, AnswerError> {
    let short = || AnswerError::Short {
        code: IN_LIST_PASSIVE_TARGET + 1,
        len: data.len(),
    };
    match data.get(1) {
        None => return Err(short()),
        Some(0) => return Ok(None),
        Some(_) => {}
    }
    let len = usize::from(*data.get(6).ok_or_else(short)?);
    let uid = data.get(7..7 + len).ok_or_else(short)?;
    if !Credential::UID_LENGTHS.contains(&len) {
        return Err(AnswerError::UidLength(len));
    }
    Ok(Some(Credential { uid: uid.to_vec() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_reads_as_nxp_names_it() {
        let fw = firmware(&[0x03, 0x32, 0x01, 0x06, 0x07]).unwrap();
        assert_eq!(fw.to_string(), "PN532 v1.6");
        assert_eq!(fw.support, 0x07);
        assert!(firmware(&[0x03, 0x32]).is_err());
    }

    #[test]
    fn listed_cards_of_every_uid_size() {
        assert_eq!(listed_card(&[0x4B, 0x00]), Ok(None));
        let four = [
            0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xA1, 0xB2, 0xC3, 0xD4,
        ];
        assert_eq!(listed_card(&four).unwrap().unwrap().hex(), "A1B2C3D4");
        let seven = [
            0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, 0x07, 0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6,
        ];
        assert_eq!(
            listed_card(&seven).unwrap().unwrap().hex(),
            "04A1B2C3D4E5F6"
        );
        // A 10-byte UID and an ATS after it (a DESFire-like card).
        let mut ten = vec![0x4B, 0x01, 0x01, 0x03, 0x44, 0x20, 0x0A];
        ten.extend(0x10..0x1A);
        ten.extend([0x06, 0x75, 0x77, 0x81, 0x02, 0x80]);
        assert_eq!(
            listed_card(&ten).unwrap().unwrap().hex(),
            "10111213141516171819"
        );
    }

    #[test]
    fn broken_answers_are_errors_not_panics() {
        assert!(listed_card(&[]).is_err());
        assert!(listed_card(&[0x4B, 0x01, 0x01]).is_err());
        // Says 7 bytes, has 3.
        assert!(listed_card(&[0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, 0x07, 1, 2, 3]).is_err());
        assert_eq!(
            listed_card(&[0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x05, 1, 2, 3, 4, 5]),
            Err(AnswerError::UidLength(5))
        );
    }
}
