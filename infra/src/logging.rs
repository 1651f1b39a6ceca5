//! The node's log output: every line goes through PII masking before it reaches stderr, whatever
//! the level and whoever wrote the line (a customer id that is a phone number, a message text in a
//! debug line, an error that quotes a request). Masking a whole formatted line, not chosen fields,
//! is what makes "never in the log" hold for lines written later by people who did not think of it.

use std::io::{self, Write};

use crest_brain::entities::mask_pii_cow;
use tracing_subscriber::fmt::MakeWriter;

/// A [`MakeWriter`] for stderr whose writers mask PII in what they are given.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskedStderr;

impl<'a> MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedWriter<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedWriter(io::stderr())
    }
}

/// Masks PII in each buffer it is given, then writes it to the inner writer. The formatter hands
/// it one whole event (line) per write.
#[derive(Debug)]
pub struct MaskedWriter<W>(pub W);

impl<W: Write> Write for MaskedWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buffer);
        let masked = mask_pii_cow(&text);
        self.0.write_all(masked.as_bytes())?;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_with_a_phone_and_an_email_is_written_masked() {
        let mut writer = MaskedWriter(Vec::new());
        writer
            .write_all(b"WARN customer=13812345678 text=\"mail bob@shop.com\"\n")
            .expect("written");
        let written = String::from_utf8(writer.0).expect("utf-8");
        assert_eq!(
            written,
            "WARN customer=138****5678 text=\"mail b***@shop.com\"\n"
        );
    }
}
