//! COM1, polled: the console every program reports on.

use core::fmt::{self, Write};

use crate::io::{inb, outb};

const COM1: u16 = 0x3f8;
const LINE_STATUS: u16 = COM1 + 5;
const TRANSMIT_EMPTY: u8 = 1 << 5;

struct Com1;

impl Write for Com1 {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                put(b'\r');
            }
            put(byte);
        }
        Ok(())
    }
}

fn put(byte: u8) {
    while inb(LINE_STATUS) & TRANSMIT_EMPTY == 0 {}
    outb(COM1, byte);
}

pub fn print(args: fmt::Arguments) {
    let _ = Com1.write_fmt(args);
}

/// `println!` on COM1.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::serial::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
