//! Structured choices drawn from the fuzzer's bytes (for the targets that build a sequence of
//! operations from them): every draw succeeds, with zeros once the bytes run out.

/// A cursor over the fuzzer's bytes.
pub struct ByteSource<'a> {
    data: &'a [u8],
}

impl<'a> ByteSource<'a> {
    pub fn new(data: &'a [u8]) -> ByteSource<'a> {
        ByteSource { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        for b in &mut bytes {
            *b = self.u8();
        }
        u64::from_le_bytes(bytes)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `max` bytes (the length drawn first).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let len = (usize::from(self.u16()) % (max + 1)).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    /// A number near one of the interesting edges: small, around `edge`, or any `u64`.
    pub fn near(&mut self, edge: u64) -> u64 {
        match self.u8() % 4 {
            0 => u64::from(self.u8()),
            1 => edge.wrapping_sub(u64::from(self.u8() % 4)),
            2 => edge.wrapping_add(u64::from(self.u8() % 4)),
            _ => self.u64(),
        }
    }
}
