//! The header of a `.safetensors` file, read and checked once: the 8-byte
//! little-endian length, the JSON object, and every rule of the format, with
//! checked arithmetic. Pure: bytes in, a [`Header`] or a typed [`Error`] out
//! (no I/O, no pointer), so it runs under miri and in property tests.
//!
//! The rules are those of the `safetensors` crate 0.8 (the format's
//! reference reader), each refused with its own error:
//!
//! | rule | error |
//! |---|---|
//! | the file holds the 8 bytes of the length | [`Error::HeaderTooSmall`] |
//! | length <= [`MAX_HEADER_LEN`] | [`Error::HeaderTooLarge`] |
//! | 8 + length <= file length | [`Error::HeaderOutOfRange`] |
//! | the header is UTF-8 | [`Error::HeaderNotUtf8`] |
//! | it is one JSON object, then only whitespace | [`Error::Json`] |
//! | each entry has `dtype` (a string), `shape` (non-negative integers), `data_offsets` (two), once each; other fields are ignored | [`Error::Field`] |
//! | `__metadata__` is `null` or an object of strings | [`Error::Field`] |
//! | names are unique | [`Error::DuplicateName`] |
//! | the dtype is one the format defines | [`Error::UnknownDtype`] |
//! | in offset order, each tensor begins where the previous ends (the first at 0) and does not end before it begins | [`Error::InvalidOffsets`] |
//! | elements × bits fits 64 bits and every extent fits `int64_t` | [`Error::ShapeOverflow`] |
//! | elements × bits is whole bytes | [`Error::NotWholeBytes`] |
//! | end - begin is elements × bits / 8 | [`Error::SizeMismatch`] |
//! | the last tensor ends where the file ends | [`Error::DataLength`] |
//!
//! Stricter than the `safetensors` crate on two points, where it keeps the
//! last of two equal JSON keys: a name or a metadata key given twice is
//! refused. JSON numbers with a fraction or an exponent are refused as
//! extents and offsets, as serde does for integers.

use std::borrow::Cow;

use crate::dtype::Dtype;
use crate::error::Error;

/// The largest header length accepted (100 MB), as in the `safetensors`
/// crate.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// How deep JSON values the reader skips (unknown fields) may nest.
const MAX_DEPTH: u32 = 128;

/// The key of the string-to-string metadata.
const METADATA_KEY: &str = "__metadata__";

/// A range of `Header::text` or `Header::shapes`.
#[derive(Copy, Clone, Debug)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn range(self) -> core::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Copy, Clone, Debug)]
struct Entry {
    name: Span,
    dtype: Dtype,
    shape: Span,
    offsets: [u64; 2],
}

/// A checked header: the tensors in data order, each with its dtype, shape
/// and byte range, and the metadata.
///
/// ```
/// use dlpack_safetensors::{Dtype, Header};
///
/// let json = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
/// let mut file = (json.len() as u64).to_le_bytes().to_vec();
/// file.extend_from_slice(json);
/// file.extend_from_slice(&[0; 8]);
/// let header = Header::parse(&file)?;
/// let w = header.tensor("w").unwrap();
/// assert_eq!((w.dtype, w.shape, w.data_offsets), (Dtype::F32, &[2i64][..], [0, 8]));
/// assert_eq!(header.data_start(), 8 + json.len());
/// # Ok::<(), dlpack_safetensors::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Header {
    /// Names, metadata keys and values, one after the other.
    text: String,
    /// The shapes, one after the other.
    shapes: Vec<i64>,
    /// The tensors in the order of their offsets.
    entries: Vec<Entry>,
    /// Indices into `entries`, sorted by name.
    by_name: Vec<u32>,
    metadata: Vec<(Span, Span)>,
    data_start: usize,
    data_len: u64,
}

/// One tensor of a [`Header`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its element type.
    pub dtype: Dtype,
    /// Its extents (row-major, compact).
    pub shape: &'a [i64],
    /// `[begin, end)` in bytes, relative to the data section.
    pub data_offsets: [u64; 2],
}

impl Header {
    /// Reads and checks the header of a whole file's bytes.
    ///
    /// # Errors
    ///
    /// The first rule of the format the bytes break (see the module docs).
    pub fn parse(file: &[u8]) -> Result<Header, Error> {
        Header::read(file, file.len() as u64)
    }

    /// Reads and checks the header from the first bytes of a file of
    /// `file_len` bytes: `prefix` must hold at least the 8 bytes of the
    /// length and the header (more is ignored).
    ///
    /// # Errors
    ///
    /// As [`Header::parse`]; a prefix shorter than the header it announces
    /// is [`Error::HeaderOutOfRange`] (with the prefix's length).
    pub fn read(prefix: &[u8], file_len: u64) -> Result<Header, Error> {
        let Some(len_bytes) = prefix.first_chunk::<8>() else {
            return Err(Error::HeaderTooSmall { len: file_len });
        };
        let header_len = u64::from_le_bytes(*len_bytes);
        if header_len > MAX_HEADER_LEN {
            return Err(Error::HeaderTooLarge { header_len });
        }
        // header_len <= 1e8: no overflow.
        let stop = 8 + header_len;
        if stop > file_len {
            return Err(Error::HeaderOutOfRange {
                header_len,
                len: file_len,
            });
        }
        let Some(json) = prefix.get(8..stop as usize) else {
            return Err(Error::HeaderOutOfRange {
                header_len,
                len: prefix.len() as u64,
            });
        };
        let json = core::str::from_utf8(json).map_err(|err| Error::HeaderNotUtf8 {
            offset: err.valid_up_to(),
        })?;
        let mut header = Header {
            text: String::new(),
            shapes: Vec::new(),
            entries: Vec::new(),
            by_name: Vec::new(),
            metadata: Vec::new(),
            data_start: stop as usize,
            data_len: file_len - stop,
        };
        header.read_json(json)?;
        header.check()?;
        Ok(header)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offset in the file of the data section (8 + the header length).
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// Length of the data section.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    fn info(&self, entry: &Entry) -> TensorInfo<'_> {
        TensorInfo {
            name: &self.text[entry.name.range()],
            dtype: entry.dtype,
            shape: &self.shapes[entry.shape.range()],
            data_offsets: entry.offsets,
        }
    }

    /// The tensors, in the order of their data in the file.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = TensorInfo<'_>> {
        self.entries.iter().map(|e| self.info(e))
    }

    /// The names, in the order of their data in the file.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(|e| &self.text[e.name.range()])
    }

    /// The tensor of that name.
    pub fn tensor(&self, name: &str) -> Option<TensorInfo<'_>> {
        self.by_name
            .binary_search_by(|&i| self.text[self.entries[i as usize].name.range()].cmp(name))
            .ok()
            .map(|at| self.info(&self.entries[self.by_name[at] as usize]))
    }

    /// The `__metadata__` pairs, in the order of the header.
    pub fn metadata(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.metadata
            .iter()
            .map(|(k, v)| (&self.text[k.range()], &self.text[v.range()]))
    }

    fn push_text(&mut self, s: &str) -> Result<Span, Error> {
        let start = self.text.len();
        self.text.push_str(s);
        // The text is at most the header (< 1e8 bytes): it fits u32.
        Ok(Span {
            start: start as u32,
            end: self.text.len() as u32,
        })
    }

    fn read_json(&mut self, json: &str) -> Result<(), Error> {
        let mut r = Reader { s: json, pos: 0 };
        r.expect(b'{', "'{' (the header is one JSON object)")?;
        let mut metadata_seen = false;
        if !r.eat(b'}') {
            loop {
                if r.peek() != Some(b'"') {
                    return Err(r.err("a string (the name of an entry)"));
                }
                let name = r.string()?;
                r.expect(b':', "':'")?;
                if name == METADATA_KEY {
                    if metadata_seen {
                        return Err(Error::DuplicateName { name: name.into() });
                    }
                    metadata_seen = true;
                    self.read_metadata(&mut r)?;
                } else {
                    self.read_entry(&mut r, &name)?;
                }
                if r.eat(b',') {
                    continue;
                }
                r.expect(b'}', "',' or '}'")?;
                break;
            }
        }
        r.ws();
        if r.pos != json.len() {
            return Err(r.err("the end of the header (only whitespace may follow the object)"));
        }
        Ok(())
    }

    fn read_metadata(&mut self, r: &mut Reader<'_>) -> Result<(), Error> {
        match r.peek() {
            Some(b'n') => return r.literal("null"),
            Some(b'{') => r.pos += 1,
            _ => {
                return Err(Error::Field {
                    tensor: METADATA_KEY.into(),
                    field: String::new(),
                    rule: "must be null or an object of strings",
                });
            }
        }
        if r.eat(b'}') {
            return Ok(());
        }
        loop {
            if r.peek() != Some(b'"') {
                return Err(r.err("a string (a metadata key)"));
            }
            let key = r.string()?;
            r.expect(b':', "':'")?;
            if r.peek() != Some(b'"') {
                return Err(Error::Field {
                    tensor: METADATA_KEY.into(),
                    field: key.into(),
                    rule: "must be a string (metadata values are strings)",
                });
            }
            let value = r.string()?;
            let k = self.push_text(&key)?;
            let v = self.push_text(&value)?;
            self.metadata.push((k, v));
            if r.eat(b',') {
                continue;
            }
            r.expect(b'}', "',' or '}'")?;
            break;
        }
        let mut keys: Vec<&str> = self.metadata().map(|(k, _)| k).collect();
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Field {
                tensor: METADATA_KEY.into(),
                field: pair[0].into(),
                rule: "is given twice",
            });
        }
        Ok(())
    }

    fn read_entry(&mut self, r: &mut Reader<'_>, name: &str) -> Result<(), Error> {
        let field_err = |field: &str, rule| Error::Field {
            tensor: name.into(),
            field: field.into(),
            rule,
        };
        if r.peek() != Some(b'{') {
            return Err(r.err("an object (a tensor's dtype, shape and data_offsets)"));
        }
        r.pos += 1;
        let mut dtype = None;
        let mut shape = None;
        let mut offsets = None;
        if !r.eat(b'}') {
            loop {
                if r.peek() != Some(b'"') {
                    return Err(r.err("a string (a field name)"));
                }
                let field = r.string()?;
                r.expect(b':', "':'")?;
                match &*field {
                    "dtype" => {
                        if dtype.is_some() {
                            return Err(field_err("dtype", "is given twice"));
                        }
                        if r.peek() != Some(b'"') {
                            return Err(field_err("dtype", "must be a string"));
                        }
                        let given = r.string()?;
                        dtype =
                            Some(Dtype::from_name(&given).ok_or_else(|| Error::UnknownDtype {
                                tensor: name.into(),
                                dtype: given.into(),
                            })?);
                    }
                    "shape" => {
                        if shape.is_some() {
                            return Err(field_err("shape", "is given twice"));
                        }
                        shape = Some(self.read_shape(r, name)?);
                    }
                    "data_offsets" => {
                        if offsets.is_some() {
                            return Err(field_err("data_offsets", "is given twice"));
                        }
                        const RULE: &str = "must be an array of two non-negative integers \
                                            [begin, end)";
                        if !r.eat(b'[') {
                            return Err(field_err("data_offsets", RULE));
                        }
                        let begin = r.uint().map_err(|_| field_err("data_offsets", RULE))?;
                        if !r.eat(b',') {
                            return Err(field_err("data_offsets", RULE));
                        }
                        let end = r.uint().map_err(|_| field_err("data_offsets", RULE))?;
                        if !r.eat(b']') {
                            return Err(field_err("data_offsets", RULE));
                        }
                        offsets = Some([begin, end]);
                    }
                    _ => r.skip_value(0)?,
                }
                if r.eat(b',') {
                    continue;
                }
                r.expect(b'}', "',' or '}'")?;
                break;
            }
        }
        let missing = |field| field_err(field, "is missing");
        let entry = Entry {
            dtype: dtype.ok_or_else(|| missing("dtype"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
            offsets: offsets.ok_or_else(|| missing("data_offsets"))?,
            name: self.push_text(name)?,
        };
        self.entries.push(entry);
        Ok(())
    }

    fn read_shape(&mut self, r: &mut Reader<'_>, name: &str) -> Result<Span, Error> {
        const RULE: &str = "must be an array of non-negative integers";
        let field_err = || Error::Field {
            tensor: name.into(),
            field: "shape".into(),
            rule: RULE,
        };
        if !r.eat(b'[') {
            return Err(field_err());
        }
        let start = self.shapes.len();
        if !r.eat(b']') {
            loop {
                let extent = r.uint().map_err(|_| field_err())?;
                let Ok(extent) = i64::try_from(extent) else {
                    let mut shape: Vec<u64> =
                        self.shapes[start..].iter().map(|&d| d as u64).collect();
                    shape.push(extent);
                    return Err(Error::ShapeOverflow {
                        tensor: name.into(),
                        shape,
                    });
                };
                self.shapes.push(extent);
                if r.eat(b',') {
                    continue;
                }
                if !r.eat(b']') {
                    return Err(field_err());
                }
                break;
            }
        }
        // At most one extent per two header bytes: fits u32.
        Ok(Span {
            start: start as u32,
            end: self.shapes.len() as u32,
        })
    }

    /// The rules across entries: unique names, offsets covering the data
    /// section in order, sizes matching shapes.
    fn check(&mut self) -> Result<(), Error> {
        let mut by_name: Vec<u32> = (0..self.entries.len() as u32).collect();
        let text = &self.text;
        let entries = &self.entries;
        let name = |i: u32| &text[entries[i as usize].name.range()];
        by_name.sort_unstable_by(|&a, &b| name(a).cmp(name(b)));
        if let Some(pair) = by_name.windows(2).find(|w| name(w[0]) == name(w[1])) {
            return Err(Error::DuplicateName {
                name: name(pair[0]).into(),
            });
        }
        // Data order, as the safetensors crate sorts; stable, so tensors of
        // size zero at the same offset keep the header's order.
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        order.sort_by_key(|&i| entries[i as usize].offsets);
        let mut covered = 0u64;
        for &i in &order {
            let e = &entries[i as usize];
            let [begin, end] = e.offsets;
            if begin != covered || end < begin {
                return Err(Error::InvalidOffsets {
                    tensor: name(i).into(),
                    offsets: e.offsets,
                    expected_begin: covered,
                });
            }
            covered = end;
            let shape = &self.shapes[e.shape.range()];
            let bits = shape
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
                .and_then(|n| n.checked_mul(u64::from(e.dtype.bits())))
                .ok_or_else(|| Error::ShapeOverflow {
                    tensor: name(i).into(),
                    shape: shape.iter().map(|&d| d as u64).collect(),
                })?;
            if bits % 8 != 0 {
                return Err(Error::NotWholeBytes {
                    tensor: name(i).into(),
                    bits,
                });
            }
            if end - begin != bits / 8 {
                return Err(Error::SizeMismatch {
                    tensor: name(i).into(),
                    expected: bits / 8,
                    offsets: e.offsets,
                });
            }
        }
        if covered != self.data_len {
            return Err(Error::DataLength {
                covered,
                data_len: self.data_len,
            });
        }
        // Entries in data order; by_name then indexes that order.
        let mut position = vec![0u32; order.len()];
        for (at, &i) in order.iter().enumerate() {
            position[i as usize] = at as u32;
        }
        self.entries = order.iter().map(|&i| self.entries[i as usize]).collect();
        self.by_name = by_name.iter().map(|&i| position[i as usize]).collect();
        Ok(())
    }
}

/// A JSON reader over the header text, for exactly what the format needs:
/// strings (every escape), non-negative integers, and skipping any value.
struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, expected: &'static str) -> Error {
        Error::Json {
            offset: self.pos,
            expected,
        }
    }

    fn byte(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.byte() {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.byte()
    }

    /// Consumes `c` (after whitespace) if it is next.
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, expected: &'static str) -> Result<(), Error> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(expected))
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), Error> {
        if self.s.as_bytes()[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("true, false or null"))
        }
    }

    /// A string, at its opening quote (checked by the caller): borrowed
    /// from the header unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, Error> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.byte() {
                None => return Err(self.err("'\"' (the end of the string)")),
                Some(b'"') => {
                    self.pos += 1;
                    // Both ends are ASCII quotes: char boundaries.
                    return Ok(Cow::Borrowed(&self.s[start..self.pos - 1]));
                }
                Some(b'\\') => break,
                Some(0..0x20) => return Err(self.err("no control character in a string")),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.s[start..self.pos]);
        loop {
            match self.byte() {
                None => return Err(self.err("'\"' (the end of the string)")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.byte() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            continue;
                        }
                        _ => {
                            return Err(
                                self.err("an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u")
                            );
                        }
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(0..0x20) => return Err(self.err("no control character in a string")),
                Some(_) => {
                    let run = self.pos;
                    while let Some(c) = self.byte() {
                        if c == b'"' || c == b'\\' || c < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    // Stops at ASCII bytes: char boundaries.
                    out.push_str(&self.s[run..self.pos]);
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self
            .s
            .as_bytes()
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("four hex digits after \\u"))?;
        let mut v = 0;
        for &d in digits {
            let d = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.err("four hex digits after \\u"))?;
            v = v * 16 + d;
        }
        self.pos += 4;
        Ok(v)
    }

    /// After `\u`: one code point, from a surrogate pair if need be.
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..0xDC00 => {
                if !self.s.as_bytes()[self.pos..].starts_with(b"\\u") {
                    return Err(self.err("a low surrogate \\uDC00-\\uDFFF after a high one"));
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..0xE000).contains(&low) {
                    return Err(self.err("a low surrogate \\uDC00-\\uDFFF after a high one"));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..0xE000 => return Err(self.err("a high surrogate before a low one")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.err("a Unicode scalar value"))
    }

    /// A non-negative integer (no fraction, no exponent) that fits u64.
    /// `Err(())`: anything else; the caller names the rule.
    fn uint(&mut self) -> Result<u64, ()> {
        self.ws();
        let mut v: u64 = 0;
        match self.byte() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(d @ b'0'..=b'9') = self.byte() {
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(d - b'0')))
                        .ok_or(())?;
                    self.pos += 1;
                }
            }
            _ => return Err(()),
        }
        match self.byte() {
            Some(b'.' | b'e' | b'E' | b'0'..=b'9') => Err(()),
            _ => Ok(v),
        }
    }

    /// Skips any JSON value (an unknown field's).
    fn skip_value(&mut self, depth: u32) -> Result<(), Error> {
        if depth >= MAX_DEPTH {
            return Err(self.err("values nested at most 128 deep"));
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                if self.eat(b'}') {
                    return Ok(());
                }
                loop {
                    if self.peek() != Some(b'"') {
                        return Err(self.err("a string (an object key)"));
                    }
                    self.string()?;
                    self.expect(b':', "':'")?;
                    self.skip_value(depth + 1)?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.expect(b'}', "',' or '}'");
                }
            }
            Some(b'[') => {
                self.pos += 1;
                if self.eat(b']') {
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.expect(b']', "',' or ']'");
                }
            }
            Some(b'"') => self.string().map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            _ => Err(self.err("a JSON value")),
        }
    }

    /// A number by JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn skip_number(&mut self) -> Result<(), Error> {
        if self.byte() == Some(b'-') {
            self.pos += 1;
        }
        match self.byte() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("a digit")),
        }
        if self.byte() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.byte(), Some(b'0'..=b'9')) {
                return Err(self.err("a digit after '.'"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.byte() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.byte() {
                self.pos += 1;
            }
            if !matches!(self.byte(), Some(b'0'..=b'9')) {
                return Err(self.err("a digit in the exponent"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.byte() {
            self.pos += 1;
        }
    }
}
