//! QR images of invite codes: an SVG document for the app, Unicode half blocks for the
//! terminal. Error correction level M (about 15 % of the modules may be lost: a smudged
//! screen, a creased print).

use qrcode::{EcLevel, QrCode};

use crate::api::{ApiError, ErrorCode};

fn code(text: &str) -> Result<QrCode, ApiError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("cannot draw a QR code: {e}"),
        )
    })
}

/// `text` as a standalone SVG document (at least 240 × 240 px, with its quiet zone).
pub fn svg(text: &str) -> Result<String, ApiError> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// `text` drawn with Unicode half blocks (two modules per character row), light on dark as a
/// terminal shows it best.
pub fn terminal(text: &str) -> Result<String, ApiError> {
    use qrcode::render::unicode::Dense1x2;
    Ok(code(text)?
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_invite_sized_code_draws_in_both_forms() {
        let code = format!("DNI1-{}", "ABCDE-".repeat(30));
        let svg = super::svg(&code).unwrap();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{svg:.80}"
        );
        let t = super::terminal(&code).unwrap();
        assert!(t.lines().count() > 20, "{t}");
        // Too long for any QR version: a clear error, not a panic.
        assert!(super::svg(&"x".repeat(8000)).is_err());
    }
}
