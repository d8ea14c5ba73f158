//! A worked sketch: an [`Outbox`] on NOR flash, written the way the outbox
//! module's documentation says a flash implementation must be, over a byte
//! array that behaves like NOR flash, and tested by cutting the power at
//! every byte a workload writes.
//!
//! # The flash (`Nor`)
//! Erased bytes read `0xFF`; programming can only clear bits (1 → 0); only
//! erasing a whole block sets them back to 1. A power cut can be scheduled
//! after any number of bytes programmed or erased: the byte being
//! programmed then is left half programmed, an erase is left half done
//! (its bytes are erased in a scattered order, so any of them may be left),
//! and nothing more is written until a "reboot" (a new outbox over the same
//! bytes). The simulation refuses (panics on) any attempt to program a 0 bit
//! back to 1, so the outbox is proved to follow the flash's rules.
//!
//! # The layout (`FlashOutbox`)
//! Each block in use begins with a header: its block number in the log (u32
//! LE, increasing) and a CRC-32 of it. An erased, retired (zeroed) or torn
//! header means a free block (erased is tested for first: the CRC-32 of
//! four 0xFF bytes is 0xFFFFFFFF, so erased flash passes the check). Records follow the header, appended, never
//! across a block's end:
//!
//! | bytes | what | checksummed |
//! |-------|------|-------------|
//! | 1 | state: `0xFF` held, `0x00` removed (programmed by `remove`) | no |
//! | 4 | packet id, stored as `!id, id` (u16 LE each); erased means not sent (programmed once by `mark_sent`) | no |
//! | 2 | length of what follows up to the checksum (u16 LE); `0xFFFF` (erased) ends the block's records | yes |
//! | 4 | sequence number (u32 LE) | yes |
//! | n | the message: flags (QoS, retain), topic length (u16 LE), topic, payload | yes |
//! | 4 | CRC-32 of the length, sequence number and message | — |
//!
//! - A record cut short by a power cut fails its checksum: it and the rest
//!   of its block are ignored, and the next record goes to a fresh block.
//! - The bits programmed in place are read so that a half-programmed byte
//!   errs towards a duplicate, never a loss: a message is removed only if
//!   its state byte is all zeros, and a packet id counts only if both of its
//!   copies agree.
//! - A second, different packet id cannot be programmed over the first: the
//!   message is appended again with the new id (the newer copy wins at
//!   replay) and the old copy is marked removed.
//! - A block is reclaimed once every message in it is removed: its header
//!   is zeroed first (so an erase cut short cannot leave a valid header over
//!   half-erased records, whose state bytes would read "held" again), then
//!   it is erased.
//!
//! What a real driver would add: moving the live records out of the oldest
//! block when free blocks run low (a message that stays long pins its block
//! here), wear levelling, and reading the flash through its driver instead
//! of memory-mapped.

use std::collections::{BTreeMap, BTreeSet};

use umqtt_robust::outbox::{Outbox, OutboxError, Queued, checksum};
use umqtt_simple::QoS;

const BLOCK_SIZE: usize = 128;
const BLOCKS: usize = 4;

/// The power went while the flash was being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PowerCut;

/// A byte array that behaves like NOR flash.
#[derive(Clone)]
struct Nor {
    cells: Vec<u8>,
    /// Bytes that may still be programmed or erased before the power goes
    /// (`None`: it never goes).
    power_for: Option<usize>,
    off: bool,
    /// Bytes programmed or erased so far, and blocks erased.
    work: usize,
    erases: usize,
}

impl Nor {
    fn new() -> Self {
        Nor {
            cells: vec![0xFF; BLOCK_SIZE * BLOCKS],
            power_for: None,
            off: false,
            work: 0,
            erases: 0,
        }
    }

    fn with_power_for(mut self, bytes: usize) -> Self {
        self.power_for = Some(bytes);
        self
    }

    /// The same flash, as found when the power comes back.
    fn reboot(&self) -> Nor {
        Nor {
            cells: self.cells.clone(),
            ..Nor::new()
        }
    }

    fn read(&self, at: usize, len: usize) -> &[u8] {
        &self.cells[at..at + len]
    }

    /// Whether there is power for one more byte.
    fn power(&mut self) -> bool {
        if self.off {
            return false;
        }
        match &mut self.power_for {
            Some(0) => {
                self.off = true;
                return false;
            }
            Some(left) => *left -= 1,
            None => {}
        }
        self.work += 1;
        true
    }

    fn program(&mut self, at: usize, data: &[u8]) -> Result<(), PowerCut> {
        for (i, &byte) in data.iter().enumerate() {
            let old = self.cells[at + i];
            assert_eq!(
                old & byte,
                byte,
                "programming byte {} from {old:#04x} to {byte:#04x} needs a 0 bit back to 1: only an erase can",
                at + i
            );
            let was_on = !self.off;
            if !self.power() {
                if was_on {
                    // Half programmed: only the low bits took.
                    self.cells[at + i] = old & (byte | 0xF0);
                }
                return Err(PowerCut);
            }
            self.cells[at + i] = old & byte;
        }
        Ok(())
    }

    fn erase(&mut self, block: usize) -> Result<(), PowerCut> {
        // In no useful order (37 is prime to the block size), from the
        // first record on: an erase cut short leaves any of the block's
        // bytes erased or not, its header often whole.
        for i in 0..BLOCK_SIZE {
            if !self.power() {
                return Err(PowerCut);
            }
            self.cells[block * BLOCK_SIZE + (HEADER + i * 37) % BLOCK_SIZE] = 0xFF;
        }
        self.erases += 1;
        Ok(())
    }
}

const HEADER: usize = 8;
/// State, packet id pair, length.
const RECORD_HEAD: usize = 7;
const CRC: usize = 4;
/// The smallest record: an empty topic and payload.
const MIN_RECORD: usize = RECORD_HEAD + 4 + 3 + CRC;

/// Where a message's record is.
#[derive(Debug, Clone, Copy)]
struct Loc {
    block: usize,
    at: usize,
    len: usize,
    packet_id: Option<u16>,
}

impl Loc {
    fn start(&self) -> usize {
        self.block * BLOCK_SIZE + self.at
    }
}

/// What is at some place in a block.
enum Scan {
    Record {
        seq: u32,
        len: usize,
        held: bool,
        packet_id: Option<u16>,
    },
    /// Erased: no record here yet.
    End,
    /// No room for another record.
    Full,
    /// A record cut short (or damaged): the rest of the block is ignored.
    Torn,
}

/// An outbox on NOR flash (see the file's documentation).
struct FlashOutbox {
    nor: Nor,
    index: BTreeMap<u32, Loc>,
    /// Each block's number in the log, if it is in use.
    blocks: [Option<u32>; BLOCKS],
    /// Messages held in each block.
    held_in: [usize; BLOCKS],
    /// Where the next record goes, if the current block can take one.
    head: Option<(usize, usize)>,
    next_seq: u32,
    next_block: u32,
    /// Torn records found at open.
    torn: usize,
}

fn storage(_: PowerCut) -> OutboxError {
    OutboxError::Storage
}

fn block_header(number: u32) -> [u8; HEADER] {
    let mut header = [0; HEADER];
    header[..4].copy_from_slice(&number.to_le_bytes());
    header[4..].copy_from_slice(&checksum(&[&number.to_le_bytes()]).to_le_bytes());
    header
}

/// The block's number in the log, if its header is valid.
fn read_block_header(nor: &Nor, block: usize) -> Option<u32> {
    let header = nor.read(block * BLOCK_SIZE, HEADER);
    // Erased must be tested for: the CRC-32 of four 0xFF bytes is
    // 0xFFFFFFFF, so an erased header would pass its checksum.
    if header.iter().all(|&b| b == 0xFF) {
        return None;
    }
    let number: [u8; 4] = header[..4].try_into().ok()?;
    let sum = u32::from_le_bytes(header[4..].try_into().ok()?);
    (checksum(&[&number]) == sum).then_some(u32::from_le_bytes(number))
}

fn id_pair(id: u16) -> [u8; 4] {
    let [a, b] = (!id).to_le_bytes();
    let [c, d] = id.to_le_bytes();
    [a, b, c, d]
}

/// The packet id a pair holds, if both copies agree.
fn read_id_pair(pair: &[u8]) -> Option<u16> {
    let inverted = u16::from_le_bytes([pair[0], pair[1]]);
    let id = u16::from_le_bytes([pair[2], pair[3]]);
    (inverted == !id).then_some(id)
}

fn decode(seq: u32, message: &[u8], packet_id: Option<u16>) -> Option<Queued<'_>> {
    let (&flags, rest) = message.split_first()?;
    let (topic_len, rest) = rest.split_first_chunk::<2>()?;
    let (topic, payload) = rest.split_at_checked(usize::from(u16::from_le_bytes(*topic_len)))?;
    let qos = match flags & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => return None,
    };
    Some(Queued {
        seq,
        topic,
        payload,
        qos,
        retain: flags & 0b100 != 0,
        packet_id,
    })
}

fn encode(message: &Queued<'_>) -> Option<Vec<u8>> {
    let topic_len = u16::try_from(message.topic.len()).ok()?;
    let mut out = vec![(message.qos as u8) | (u8::from(message.retain) << 2)];
    out.extend_from_slice(&topic_len.to_le_bytes());
    out.extend_from_slice(message.topic);
    out.extend_from_slice(message.payload);
    Some(out)
}

impl FlashOutbox {
    /// Replays the flash: blocks in log order, records in each up to its
    /// end or a torn record.
    fn open(nor: Nor) -> Self {
        let mut outbox = FlashOutbox {
            nor,
            index: BTreeMap::new(),
            blocks: [None; BLOCKS],
            held_in: [0; BLOCKS],
            head: None,
            next_seq: 1,
            next_block: 1,
            torn: 0,
        };
        let mut order: Vec<(u32, usize)> = (0..BLOCKS)
            .filter_map(|b| read_block_header(&outbox.nor, b).map(|n| (n, b)))
            .collect();
        order.sort();
        for (number, block) in order {
            outbox.blocks[block] = Some(number);
            outbox.next_block = outbox.next_block.max(number + 1);
            outbox.head = outbox.replay_block(block).map(|at| (block, at));
        }
        // Blocks whose messages are all removed are free again.
        for block in 0..BLOCKS {
            if outbox.blocks[block].is_some() && outbox.held_in[block] == 0 {
                if outbox.head.is_some_and(|(b, _)| b == block) {
                    continue;
                }
                outbox.reclaim(block).expect("power is on after a reboot");
            }
        }
        outbox
    }

    /// Replays one block; returns where its records end, if more can go
    /// there.
    fn replay_block(&mut self, block: usize) -> Option<usize> {
        let mut at = HEADER;
        loop {
            match self.scan(block, at) {
                Scan::Record {
                    seq,
                    len,
                    held,
                    packet_id,
                } => {
                    self.next_seq = self.next_seq.max(seq + 1);
                    if held {
                        let loc = Loc {
                            block,
                            at,
                            len,
                            packet_id,
                        };
                        if let Some(older) = self.index.insert(seq, loc) {
                            // A copy made for a new packet id whose old one
                            // was not yet marked removed: the newer wins.
                            self.held_in[older.block] -= 1;
                            self.nor
                                .program(older.start(), &[0])
                                .expect("power is on after a reboot");
                        }
                        self.held_in[block] += 1;
                    }
                    at += len;
                }
                Scan::End => return Some(at),
                Scan::Full => return None,
                Scan::Torn => {
                    self.torn += 1;
                    return None;
                }
            }
        }
    }

    fn scan(&self, block: usize, at: usize) -> Scan {
        if at + MIN_RECORD > BLOCK_SIZE {
            return Scan::Full;
        }
        let bytes = self.nor.read(block * BLOCK_SIZE, BLOCK_SIZE);
        let length = u16::from_le_bytes([bytes[at + 5], bytes[at + 6]]);
        if length == 0xFFFF {
            return Scan::End;
        }
        let len = RECORD_HEAD + usize::from(length) + CRC;
        if usize::from(length) < 4 + 3 || at + len > BLOCK_SIZE {
            return Scan::Torn;
        }
        let covered = &bytes[at + 5..at + len - CRC];
        let sum = u32::from_le_bytes(bytes[at + len - CRC..at + len].try_into().unwrap());
        if checksum(&[covered]) != sum {
            return Scan::Torn;
        }
        let seq = u32::from_le_bytes(covered[2..6].try_into().unwrap());
        if decode(seq, &covered[6..], None).is_none() {
            return Scan::Torn;
        }
        Scan::Record {
            seq,
            len,
            held: bytes[at] != 0x00,
            packet_id: read_id_pair(&bytes[at + 1..at + 5]),
        }
    }

    /// Room for a record of `len` bytes: in the current block, or at the
    /// start of a free one (erased and given a header).
    fn room_for(&mut self, len: usize) -> Result<(usize, usize), OutboxError> {
        if let Some((block, at)) = self.head
            && at + len <= BLOCK_SIZE
        {
            return Ok((block, at));
        }
        let Some(free) = (0..BLOCKS).find(|&b| self.blocks[b].is_none()) else {
            return Err(OutboxError::Full {
                needed: len,
                free: self.head.map_or(0, |(_, at)| BLOCK_SIZE - at),
            });
        };
        let old = self.head.take();
        self.nor.erase(free).map_err(storage)?;
        self.nor
            .program(free * BLOCK_SIZE, &block_header(self.next_block))
            .map_err(storage)?;
        self.blocks[free] = Some(self.next_block);
        self.next_block += 1;
        self.head = Some((free, HEADER));
        if let Some((block, _)) = old
            && self.held_in[block] == 0
        {
            self.reclaim(block)?;
        }
        Ok((free, HEADER))
    }

    /// Appends a record for message `seq`: length, number, message and
    /// checksum first, then (if it has one) its packet id.
    fn append(
        &mut self,
        seq: u32,
        message: &[u8],
        packet_id: Option<u16>,
    ) -> Result<(), OutboxError> {
        let len = RECORD_HEAD + 4 + message.len() + CRC;
        let (block, at) = self.room_for(len)?;
        let length = u16::try_from(4 + message.len()).map_err(|_| OutboxError::Storage)?;
        let mut covered = length.to_le_bytes().to_vec();
        covered.extend_from_slice(&seq.to_le_bytes());
        covered.extend_from_slice(message);
        let sum = checksum(&[&covered]);
        covered.extend_from_slice(&sum.to_le_bytes());
        let start = block * BLOCK_SIZE + at;
        // Whatever happens next, this place is used (or torn).
        self.head = None;
        self.nor.program(start + 5, &covered).map_err(storage)?;
        self.head = Some((block, at + len));
        if let Some(id) = packet_id {
            self.nor.program(start + 1, &id_pair(id)).map_err(storage)?;
        }
        let loc = Loc {
            block,
            at,
            len,
            packet_id,
        };
        if let Some(older) = self.index.insert(seq, loc) {
            self.held_in[older.block] -= 1;
        }
        self.held_in[block] += 1;
        Ok(())
    }

    /// Zeroes a block's header, then erases it.
    fn reclaim(&mut self, block: usize) -> Result<(), OutboxError> {
        self.blocks[block] = None;
        self.nor
            .program(block * BLOCK_SIZE, &[0; HEADER])
            .map_err(storage)?;
        self.nor.erase(block).map_err(storage)
    }

    fn queued(&self, seq: u32, loc: &Loc) -> Option<Queued<'_>> {
        let record = self.nor.read(loc.start(), loc.len);
        decode(seq, &record[RECORD_HEAD + 4..loc.len - CRC], loc.packet_id)
    }

    fn into_flash(self) -> Nor {
        self.nor
    }
}

impl Outbox for FlashOutbox {
    fn push(&mut self, message: &Queued<'_>) -> Result<u32, OutboxError> {
        let capacity = BLOCK_SIZE - HEADER;
        let needed = RECORD_HEAD + 4 + 3 + message.topic.len() + message.payload.len() + CRC;
        let bytes = encode(message)
            .filter(|_| needed <= capacity)
            .ok_or(OutboxError::TooLarge { needed, capacity })?;
        let seq = self.next_seq;
        self.append(seq, &bytes, None)?;
        self.next_seq += 1;
        Ok(seq)
    }

    fn first(&self) -> Option<Queued<'_>> {
        let (seq, loc) = self.index.iter().next()?;
        self.queued(*seq, loc)
    }

    fn next_after(&self, seq: u32) -> Option<Queued<'_>> {
        let (seq, loc) = self.index.range(seq.checked_add(1)?..).next()?;
        self.queued(*seq, loc)
    }

    fn mark_sent(&mut self, seq: u32, packet_id: u16) -> Result<(), OutboxError> {
        let loc = *self.index.get(&seq).ok_or(OutboxError::UnknownSeq(seq))?;
        if loc.packet_id == Some(packet_id) {
            return Ok(());
        }
        if self.nor.read(loc.start() + 1, 4) == [0xFF; 4] {
            self.nor
                .program(loc.start() + 1, &id_pair(packet_id))
                .map_err(storage)?;
            if let Some(loc) = self.index.get_mut(&seq) {
                loc.packet_id = Some(packet_id);
            }
            return Ok(());
        }
        // The id's place is taken: a new copy, then the old one removed.
        let message = self
            .nor
            .read(
                loc.start() + RECORD_HEAD + 4,
                loc.len - RECORD_HEAD - 4 - CRC,
            )
            .to_vec();
        self.append(seq, &message, Some(packet_id))?;
        self.nor.program(loc.start(), &[0]).map_err(storage)?;
        self.reclaim_if_empty(loc.block)
    }

    fn remove(&mut self, seq: u32) -> Result<(), OutboxError> {
        let loc = *self.index.get(&seq).ok_or(OutboxError::UnknownSeq(seq))?;
        self.nor.program(loc.start(), &[0]).map_err(storage)?;
        self.index.remove(&seq);
        self.held_in[loc.block] -= 1;
        self.reclaim_if_empty(loc.block)
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

impl FlashOutbox {
    fn reclaim_if_empty(&mut self, block: usize) -> Result<(), OutboxError> {
        let is_head = self.head.is_some_and(|(b, _)| b == block);
        if self.held_in[block] == 0 && !is_head {
            self.reclaim(block)?;
        }
        Ok(())
    }

    fn blocks_in_use(&self) -> usize {
        self.blocks.iter().filter(|b| b.is_some()).count()
    }
}

// ---- Tests ----

fn q(payload: &[u8]) -> Queued<'_> {
    Queued::new(b"f/1", payload, QoS::AtLeastOnce, false)
}

/// Every message held, oldest first: (seq, payload, packet id).
fn contents(outbox: &impl Outbox) -> Vec<(u32, Vec<u8>, Option<u16>)> {
    let mut all = Vec::new();
    let mut next = outbox.first();
    while let Some(m) = next {
        all.push((m.seq, m.payload.to_vec(), m.packet_id));
        next = outbox.next_after(m.seq);
    }
    assert_eq!(all.len(), outbox.len());
    all
}

#[test]
fn messages_come_back_after_a_reboot_in_order_with_their_packet_ids() {
    let mut outbox = FlashOutbox::open(Nor::new());
    let a = outbox.push(&q(b"a")).unwrap();
    let b = outbox.push(&q(b"b")).unwrap();
    let c = outbox.push(&q(b"c")).unwrap();
    outbox.mark_sent(b, 7).unwrap();
    outbox.remove(a).unwrap();
    let before = contents(&outbox);
    assert_eq!(
        before,
        [(b, b"b".to_vec(), Some(7)), (c, b"c".to_vec(), None)]
    );
    let mut outbox = FlashOutbox::open(outbox.into_flash().reboot());
    assert_eq!(contents(&outbox), before);
    // A second, different id: the message is copied.
    outbox.mark_sent(b, 8).unwrap();
    outbox.mark_sent(c, 9).unwrap();
    let outbox = FlashOutbox::open(outbox.into_flash().reboot());
    assert_eq!(
        contents(&outbox),
        [(b, b"b".to_vec(), Some(8)), (c, b"c".to_vec(), Some(9))]
    );
    assert!(outbox.next_seq > c);
}

#[test]
fn blocks_are_erased_and_used_again_once_everything_in_them_is_removed() {
    let mut outbox = FlashOutbox::open(Nor::new());
    let mut window = std::collections::VecDeque::new();
    for i in 0..1000u32 {
        let payload = format!("reading {i}");
        window.push_back(outbox.push(&q(payload.as_bytes())).unwrap());
        if window.len() > 3 {
            outbox.remove(window.pop_front().unwrap()).unwrap();
        }
        assert!(outbox.blocks_in_use() <= 3, "at message {i}");
    }
    // 1000 messages of about 35 bytes went through 512 bytes of flash.
    assert!(outbox.nor.erases > 250, "{} erases", outbox.nor.erases);
    let held = contents(&outbox);
    assert_eq!(held.len(), 3);
    let outbox = FlashOutbox::open(outbox.into_flash().reboot());
    assert_eq!(contents(&outbox), held);
}

#[test]
fn a_full_flash_refuses_and_changes_nothing() {
    let mut outbox = FlashOutbox::open(Nor::new());
    let payload = [b'x'; 40];
    let mut seqs = Vec::new();
    let error = loop {
        match outbox.push(&q(&payload)) {
            Ok(seq) => seqs.push(seq),
            Err(e) => break e,
        }
    };
    // Two 61-byte records to a 120-byte block: one per block.
    assert_eq!(seqs.len(), BLOCKS);
    assert_eq!(
        error,
        OutboxError::Full {
            needed: 61,
            free: 59
        }
    );
    let cells = outbox.nor.cells.clone();
    assert_eq!(
        outbox.push(&q(&payload)),
        Err(OutboxError::Full {
            needed: 61,
            free: 59
        })
    );
    assert_eq!(outbox.nor.cells, cells, "a refusal writes nothing");
    assert_eq!(
        outbox.push(&q(&[0; 200])),
        Err(OutboxError::TooLarge {
            needed: 221,
            capacity: 120
        })
    );
    outbox.remove(seqs[1]).unwrap();
    assert!(outbox.push(&q(&payload)).is_ok(), "its block was reclaimed");
}

/// A workload: pushes, packet ids (one changed, so a message is copied),
/// removals out of order that empty blocks, across all four blocks.
#[derive(Debug, Clone, Copy)]
enum Step {
    Push(usize),
    Sent(usize, u16),
    Remove(usize),
}

#[rustfmt::skip]
const SCRIPT: &[Step] = {
    use Step::*;
    &[
        Push(0), Push(1), Push(2), Push(3), Push(4), Push(5),
        Sent(0, 1), Sent(1, 2), Sent(2, 3),
        Remove(1), Remove(0),
        Sent(2, 4),
        Push(6), Push(7),
        Remove(3), Remove(2), Remove(5),
        Push(8), Sent(8, 5),
        Remove(4), Remove(6),
        Push(9), Push(10),
        Remove(8),
    ]
};

fn payload(i: usize) -> Vec<u8> {
    format!("message {i}{}", "+".repeat(i % 3 * 7)).into_bytes()
}

/// What the script got done before the power went.
#[derive(Debug, Default)]
struct Done {
    /// Message → its number, for the pushes that returned.
    pushed: BTreeMap<usize, u32>,
    /// The step the power went in.
    cut_in: Option<Step>,
    removed: BTreeSet<usize>,
    /// Message → the packet id of its last `mark_sent`, if it returned.
    sent: BTreeMap<usize, u16>,
}

fn run(outbox: &mut FlashOutbox) -> Done {
    let mut done = Done::default();
    for &step in SCRIPT {
        let result = match step {
            Step::Push(i) => outbox.push(&q(&payload(i))).map(|seq| {
                done.pushed.insert(i, seq);
            }),
            Step::Sent(i, id) => outbox.mark_sent(done.pushed[&i], id).map(|()| {
                done.sent.insert(i, id);
            }),
            Step::Remove(i) => outbox.remove(done.pushed[&i]).map(|()| {
                done.removed.insert(i);
            }),
        };
        match result {
            Ok(()) => {}
            Err(OutboxError::Storage) => {
                done.cut_in = Some(step);
                break;
            }
            Err(e) => panic!("{step:?}: {e}"),
        }
    }
    done
}

/// Checks what came back after the power went during `done`.
fn check_replay(outbox: &FlashOutbox, done: &Done, cut: usize) {
    let held = contents(outbox);
    let mut last_message = None;
    for (seq, bytes, packet_id) in &held {
        // Never a corrupt message: it is one the script pushed, whole.
        let i = (0..=10)
            .find(|&i| payload(i) == *bytes)
            .unwrap_or_else(|| panic!("cut {cut}: a message no one pushed: {bytes:?}"));
        match done.pushed.get(&i) {
            Some(pushed) => assert_eq!(pushed, seq, "cut {cut}: message {i}'s number"),
            None => assert!(
                matches!(done.cut_in, Some(Step::Push(j)) if j == i),
                "cut {cut}: message {i} was never pushed"
            ),
        }
        assert!(last_message < Some(i), "cut {cut}: out of order");
        last_message = Some(i);
        assert!(
            !done.removed.contains(&i),
            "cut {cut}: message {i} came back after its removal"
        );
        // The id of its last mark_sent that returned; if the power went
        // in one, that one's, or none.
        let before = done.sent.get(&i).copied();
        let allowed = match done.cut_in {
            Some(Step::Sent(j, id)) if j == i => vec![before, Some(id), None],
            _ => vec![before],
        };
        assert!(
            allowed.contains(packet_id),
            "cut {cut}: message {i} has packet id {packet_id:?}, not one of {allowed:?}"
        );
    }
    // No loss: every push that returned, not removed, is there.
    for (&i, seq) in &done.pushed {
        let removing = matches!(done.cut_in, Some(Step::Remove(j)) if j == i);
        if !done.removed.contains(&i) && !removing {
            assert!(
                held.iter().any(|m| m.0 == *seq),
                "cut {cut}: message {i} (number {seq}) was lost"
            );
        }
    }
}

#[test]
fn a_power_cut_at_any_byte_loses_no_message_whose_push_returned_and_gives_back_no_corrupt_one() {
    let mut whole = FlashOutbox::open(Nor::new());
    let done = run(&mut whole);
    assert!(done.cut_in.is_none());
    let work = whole.nor.work;
    assert!(whole.nor.erases >= 3, "the script reclaims blocks");
    let mut torn = 0;
    for cut in 0..=work {
        let mut outbox = FlashOutbox::open(Nor::new().with_power_for(cut));
        let done = run(&mut outbox);
        assert_eq!(done.cut_in.is_none(), cut == work, "cut {cut}");
        let mut outbox = FlashOutbox::open(outbox.into_flash().reboot());
        torn += outbox.torn;
        check_replay(&outbox, &done, cut);

        // It carries on: more messages, everything removed, a reboot.
        for _ in 0..4 {
            outbox.push(&q(b"after")).unwrap();
        }
        let mut outbox = FlashOutbox::open(outbox.into_flash().reboot());
        let held = contents(&outbox);
        assert_eq!(
            held.iter().filter(|m| m.1 == b"after").count(),
            4,
            "cut {cut}"
        );
        for m in held {
            outbox.remove(m.0).unwrap();
        }
        let outbox = FlashOutbox::open(outbox.into_flash().reboot());
        assert!(outbox.is_empty(), "cut {cut}");
        assert!(outbox.blocks_in_use() <= 1, "cut {cut}: blocks left in use");
    }
    println!(
        "{} power cuts over {work} bytes written; {torn} torn records found and dropped",
        work + 1
    );
    assert!(torn > 0, "some cuts tear a record");
}
