//! The embedded font, registered once under the names plotters asks for.

use std::sync::Once;

use plotters::style::FontStyle;

static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
pub const FAMILY: &str = "sans-serif";

pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The file is part of this crate and parses; a failure here is a broken build.
            plotters::style::register_font(FAMILY, style, DEJAVU_SANS)
                .unwrap_or_else(|_| panic!("the embedded font fonts/DejaVuSans.ttf does not parse"));
        }
    });
}
