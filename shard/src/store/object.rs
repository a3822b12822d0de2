//! Values that do not fit inline in an entry block.
//!
//! Each data type adds its variant here (lists, hashes, sets, sorted sets);
//! `type_name` and `encoding` give Redis's TYPE and OBJECT ENCODING names.

#[derive(Clone, Debug)]
pub enum Object {
    /// A string too long to keep inline, or one grown by APPEND/SETRANGE
    /// (kept with spare capacity so repeated appends stay cheap).
    Str(Vec<u8>),
}

impl Object {
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Str(_) => "string",
        }
    }

    /// Only called for non-string objects; strings' encodings are decided by
    /// the entry, which knows the "raw" hint.
    pub fn encoding(&self) -> &'static str {
        match self {
            Object::Str(_) => "raw",
        }
    }
}
