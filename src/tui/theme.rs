//! Themes: colours by role from `themes/*.toml` (built in) or the user's config dir, mapped to
//! what the terminal can show (truecolor, 256, 16, or none under `NO_COLOR`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The themes that ship with ocio, by file.
const BUILT_IN: &[(&str, &str)] = &[
    ("industrial", include_str!("../../themes/industrial.toml")),
    ("daylight", include_str!("../../themes/daylight.toml")),
    ("contrast", include_str!("../../themes/contrast.toml")),
    ("ansi16", include_str!("../../themes/ansi16.toml")),
];

pub const DEFAULT: &str = "industrial";

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// `NO_COLOR`, or a terminal that shows none: styles use bold and reverse only.
    None,
    Ansi16,
    Indexed256,
    TrueColor,
}

impl ColorDepth {
    /// From the environment: `NO_COLOR` (any value) wins; then `COLORTERM` (truecolor/24bit),
    /// then `TERM` (`*-256color`, `dumb`, `linux`).
    pub(crate) fn detect(var: impl Fn(&str) -> Option<String>) -> Self {
        if var("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Self::None;
        }
        let colorterm = var("COLORTERM").unwrap_or_default().to_ascii_lowercase();
        if colorterm == "truecolor" || colorterm == "24bit" {
            return Self::TrueColor;
        }
        let term = var("TERM").unwrap_or_default();
        if term == "dumb" {
            Self::None
        } else if term.contains("256") || term.contains("direct") {
            Self::Indexed256
        } else {
            Self::Ansi16
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("theme {file}: {message}\nhint: see themes/industrial.toml for the format")]
    Invalid { file: String, message: String },
    #[error(
        "no theme named {name:?}; known: {known}\nhint: set [ui] theme to one of them, or add {name}.toml to {dir}"
    )]
    Unknown {
        name: String,
        known: String,
        dir: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    /// Required in the file; the theme is known by its file name (or built-in name).
    #[expect(dead_code, reason = "read by serde only, to keep the key required")]
    name: String,
    palette: PaletteFile,
    #[serde(default)]
    status: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaletteFile {
    background: String,
    surface: String,
    border: String,
    text: String,
    muted: String,
    accent: String,
    info: String,
}

/// A theme resolved for one terminal: ready-made styles by role.
#[derive(Debug, Clone)]
pub struct Theme {
    pub(crate) base: Style,
    pub(crate) surface: Style,
    pub(crate) border: Style,
    pub(crate) border_focus: Style,
    pub(crate) title: Style,
    pub(crate) muted: Style,
    pub(crate) accent: Style,
    pub(crate) info: Style,
    pub(crate) selected: Style,
    pub(crate) header: Style,
    status: BTreeMap<String, Style>,
    /// No colour at all (`NO_COLOR`): what colour alone would tell needs a glyph or a modifier.
    pub(crate) colorless: bool,
}

impl Theme {
    /// The colour `fg` is drawn in on the selection: its own where it reads there (a state, a
    /// gauge), else the selection's text colour (amber waiting-approval on the amber
    /// selection would vanish).
    pub(crate) fn on_selection(&self, fg: Color) -> Color {
        match (self.selected.fg, self.selected.bg) {
            (Some(text), Some(bg)) if !legible(fg, bg) => text,
            _ => fg,
        }
    }

    /// The style for a status name (session, task or agent); plain text for unknown ones.
    pub(crate) fn status(&self, name: &str) -> Style {
        self.status.get(name).copied().unwrap_or(self.base)
    }

    /// Every theme by name: built in, then the user's (which win on a name clash).
    pub(crate) fn available(user_dir: Option<&Path>) -> Vec<String> {
        let mut names: Vec<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
        for (name, _) in user_themes(user_dir) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Load theme `name` for a terminal of `depth`. `user_dir` holds user themes
    /// (`<config dir>/themes`).
    pub fn load(
        name: &str,
        user_dir: Option<&Path>,
        depth: ColorDepth,
    ) -> Result<Self, ThemeError> {
        let user = user_themes(user_dir).into_iter().find(|(n, _)| n == name);
        let (file, text) = match user {
            Some((_, path)) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ThemeError::Invalid {
                    file: path.display().to_string(),
                    message: format!("cannot read it: {e}"),
                })?;
                (path.display().to_string(), text)
            }
            None => match BUILT_IN.iter().find(|(n, _)| *n == name) {
                Some((n, text)) => (format!("themes/{n}.toml (built in)"), text.to_string()),
                None => {
                    return Err(ThemeError::Unknown {
                        name: name.to_string(),
                        known: Self::available(user_dir).join(", "),
                        dir: user_dir
                            .map(|d| d.display().to_string())
                            .unwrap_or_else(|| "the config dir's themes/".into()),
                    });
                }
            },
        };
        Self::parse(&file, &text, depth)
    }

    pub(crate) fn parse(file: &str, text: &str, depth: ColorDepth) -> Result<Self, ThemeError> {
        let invalid = |message: String| ThemeError::Invalid {
            file: file.to_string(),
            message,
        };
        let raw: ThemeFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let color = |field: &str, value: &str| {
            parse_color(value)
                .map(|c| map_color(c, depth))
                .ok_or_else(|| invalid(format!("{field} = {value:?} is not a colour (use \"#rrggbb\" or an ANSI name like \"bright-red\")")))
        };
        let p = &raw.palette;
        let background = color("palette.background", &p.background)?;
        let surface = color("palette.surface", &p.surface)?;
        let border = color("palette.border", &p.border)?;
        let text = color("palette.text", &p.text)?;
        let muted = color("palette.muted", &p.muted)?;
        let accent = color("palette.accent", &p.accent)?;
        let info = color("palette.info", &p.info)?;
        let mut status = BTreeMap::new();
        for (name, value) in &raw.status {
            let fg = color(&format!("status.{name}"), value)?;
            status.insert(name.clone(), Style::new().fg(fg));
        }
        let plain = depth == ColorDepth::None;
        let base = Style::new().fg(text).bg(background);
        let on_accent = selection_text(background, accent, depth);
        Ok(Self {
            base,
            surface: Style::new().fg(text).bg(surface),
            border: Style::new().fg(border),
            border_focus: Style::new().fg(accent).add_modifier(Modifier::BOLD),
            title: Style::new().fg(text).add_modifier(Modifier::BOLD),
            muted: if plain {
                Style::new().add_modifier(Modifier::DIM)
            } else {
                Style::new().fg(muted)
            },
            accent: Style::new().fg(accent).add_modifier(Modifier::BOLD),
            info: Style::new().fg(info),
            selected: if plain {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
                    .fg(on_accent)
                    .bg(accent)
                    .add_modifier(Modifier::BOLD)
            },
            header: Style::new()
                .fg(text)
                .bg(surface)
                .add_modifier(Modifier::BOLD),
            status,
            colorless: plain,
        })
    }
}

fn user_themes(dir: Option<&Path>) -> Vec<(String, PathBuf)> {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        .collect();
    found.sort();
    found
}

/// A colour as written in a theme: `#rrggbb`, an ANSI name, or `default`.
fn parse_color(value: &str) -> Option<Color> {
    let value = value.trim();
    if let Some(hex) = value.strip_prefix('#') {
        if hex.len() != 6 || !hex.is_ascii() {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return Some(Color::Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    let name = value.to_ascii_lowercase().replace('_', "-");
    ANSI.iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, c, _)| *c)
        .or_else(|| (name == "default" || name == "reset").then_some(Color::Reset))
}

/// The 16 ANSI colours with xterm's default values, for mapping down.
const ANSI: &[(&str, Color, (u8, u8, u8))] = &[
    ("black", Color::Black, (0, 0, 0)),
    ("red", Color::Red, (205, 0, 0)),
    ("green", Color::Green, (0, 205, 0)),
    ("yellow", Color::Yellow, (205, 205, 0)),
    ("blue", Color::Blue, (0, 0, 238)),
    ("magenta", Color::Magenta, (205, 0, 205)),
    ("cyan", Color::Cyan, (0, 205, 205)),
    ("white", Color::Gray, (229, 229, 229)),
    ("bright-black", Color::DarkGray, (127, 127, 127)),
    ("bright-red", Color::LightRed, (255, 0, 0)),
    ("bright-green", Color::LightGreen, (0, 255, 0)),
    ("bright-yellow", Color::LightYellow, (255, 255, 0)),
    ("bright-blue", Color::LightBlue, (92, 92, 255)),
    ("bright-magenta", Color::LightMagenta, (255, 0, 255)),
    ("bright-cyan", Color::LightCyan, (0, 255, 255)),
    ("bright-white", Color::White, (255, 255, 255)),
];

/// What text on the selection must reach against it: WCAG AA for normal text.
pub(crate) const MIN_CONTRAST: f64 = 4.5;

/// The selection's text colour: the background where it reads on the accent, else black or
/// white, whichever reads better (a theme on the terminal's default background has no colour
/// of its own to put there).
fn selection_text(background: Color, accent: Color, depth: ColorDepth) -> Color {
    if legible(background, accent) {
        return background;
    }
    let black = map_color(Color::Rgb(0, 0, 0), depth);
    let white = map_color(Color::Rgb(255, 255, 255), depth);
    let ratio = |c: Color| match (rgb(c), rgb(accent)) {
        (Some(a), Some(b)) => contrast(a, b),
        _ => 0.0,
    };
    if ratio(white) > ratio(black) {
        white
    } else {
        black
    }
}

/// Whether `fg` on `bg` can be read: a contrast of at least [`MIN_CONTRAST`], and for the 16
/// named colours (whose shades the terminal's palette decides) not a colour on itself or its
/// bright twin. The terminal's default colour is unknown, so never counts as legible on a set
/// one.
pub(crate) fn legible(fg: Color, bg: Color) -> bool {
    if ansi_family(fg).is_some() && ansi_family(fg) == ansi_family(bg) {
        return false;
    }
    match (rgb(fg), rgb(bg)) {
        (Some(f), Some(b)) => contrast(f, b) >= MIN_CONTRAST,
        _ => false,
    }
}

/// Which of the 8 ANSI colours a named colour is (bright or not).
fn ansi_family(color: Color) -> Option<usize> {
    ANSI.iter().position(|(_, c, _)| *c == color).map(|i| i % 8)
}

/// A colour's RGB value (xterm's for named and indexed colours); `None` for the default.
fn rgb(color: Color) -> Option<(u8, u8, u8)> {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match color {
        Color::Rgb(r, g, b) => Some((r, g, b)),
        Color::Indexed(i @ 0..=15) => ANSI.get(usize::from(i)).map(|(_, _, rgb)| *rgb),
        Color::Indexed(i @ 16..=231) => {
            let i = usize::from(i - 16);
            Some((LEVELS[i / 36], LEVELS[(i / 6) % 6], LEVELS[i % 6]))
        }
        Color::Indexed(i) => {
            let v = 8 + 10 * (i - 232);
            Some((v, v, v))
        }
        named => ANSI
            .iter()
            .find(|(_, c, _)| *c == named)
            .map(|(_, _, rgb)| *rgb),
    }
}

/// The WCAG 2 contrast ratio of two colours, from 1 to 21.
pub(super) fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    let luminance = |(r, g, b): (u8, u8, u8)| {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    };
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// A colour as this terminal can show it.
pub(crate) fn map_color(color: Color, depth: ColorDepth) -> Color {
    let Color::Rgb(r, g, b) = color else {
        return if depth == ColorDepth::None {
            Color::Reset
        } else {
            color
        };
    };
    match depth {
        ColorDepth::TrueColor => color,
        ColorDepth::Indexed256 => Color::Indexed(nearest_256(r, g, b)),
        ColorDepth::Ansi16 => nearest_16(r, g, b),
        ColorDepth::None => Color::Reset,
    }
}

fn distance((r1, g1, b1): (u8, u8, u8), (r2, g2, b2): (u8, u8, u8)) -> u32 {
    let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).unsigned_abs();
    // Weighted for the eye's sensitivity (green most, blue least).
    3 * d(r1, r2).pow(2) + 4 * d(g1, g2).pow(2) + 2 * d(b1, b2).pow(2)
}

fn nearest_16(r: u8, g: u8, b: u8) -> Color {
    ANSI.iter()
        .min_by_key(|(_, _, rgb)| distance(*rgb, (r, g, b)))
        .map(|(_, c, _)| *c)
        .unwrap_or(Color::Reset)
}

/// The xterm 256-colour palette: the 6x6x6 cube (16..=231) or the grey ramp (232..=255).
fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let level = |v: u8| {
        (0..6)
            .min_by_key(|&i| (i32::from(LEVELS[i]) - i32::from(v)).unsigned_abs())
            .unwrap_or(0)
    };
    let (ri, gi, bi) = (level(r), level(g), level(b));
    let cube = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    let cube_index = 16 + 36 * ri + 6 * gi + bi;
    let grey_avg = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let grey_step = (grey_avg.saturating_sub(8) / 10).min(23);
    let grey = (8 + 10 * grey_step) as u8;
    let grey_index = 232 + grey_step as usize;
    if distance((grey, grey, grey), (r, g, b)) < distance(cube, (r, g, b)) {
        grey_index as u8
    } else {
        cube_index as u8
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn depth_follows_no_color_colorterm_and_term() {
        assert_eq!(
            ColorDepth::detect(env(&[("NO_COLOR", "1"), ("COLORTERM", "truecolor")])),
            ColorDepth::None
        );
        assert_eq!(
            ColorDepth::detect(env(&[("COLORTERM", "truecolor")])),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::detect(env(&[("TERM", "tmux-256color")])),
            ColorDepth::Indexed256
        );
        assert_eq!(
            ColorDepth::detect(env(&[("TERM", "xterm")])),
            ColorDepth::Ansi16
        );
        assert_eq!(
            ColorDepth::detect(env(&[("TERM", "linux")])),
            ColorDepth::Ansi16
        );
        assert_eq!(
            ColorDepth::detect(env(&[("TERM", "dumb")])),
            ColorDepth::None
        );
        // An empty NO_COLOR does not count (no-color.org).
        assert_eq!(
            ColorDepth::detect(env(&[("NO_COLOR", ""), ("TERM", "xterm-256color")])),
            ColorDepth::Indexed256
        );
    }

    #[test]
    fn every_built_in_theme_loads_at_every_depth_and_has_every_status() {
        let statuses = [
            "pending",
            "queued",
            "starting",
            "running",
            "waiting-approval",
            "retrying",
            "paused",
            "completed",
            "failed",
            "cancelled",
            "timed-out",
            "lost",
            "ready",
            "done",
            "blocked",
            "online",
            "degraded",
            "offline",
            "draining",
        ];
        for (name, _) in BUILT_IN {
            for depth in [
                ColorDepth::None,
                ColorDepth::Ansi16,
                ColorDepth::Indexed256,
                ColorDepth::TrueColor,
            ] {
                let theme = Theme::load(name, None, depth).unwrap();
                for s in statuses {
                    assert!(theme.status.contains_key(s), "{name} lacks status.{s}");
                }
            }
        }
    }

    #[test]
    fn colours_map_down_to_what_the_terminal_has() {
        let amber = Color::Rgb(0xff, 0xb0, 0x00);
        assert_eq!(map_color(amber, ColorDepth::TrueColor), amber);
        assert_eq!(
            map_color(amber, ColorDepth::Indexed256),
            Color::Indexed(214)
        );
        assert_eq!(map_color(amber, ColorDepth::Ansi16), Color::Yellow);
        assert_eq!(map_color(amber, ColorDepth::None), Color::Reset);
        assert_eq!(
            map_color(Color::Rgb(0x10, 0x12, 0x14), ColorDepth::Indexed256),
            Color::Indexed(233)
        );
        assert_eq!(map_color(Color::Red, ColorDepth::Ansi16), Color::Red);
        assert_eq!(map_color(Color::Red, ColorDepth::None), Color::Reset);
    }

    #[test]
    fn without_colour_selection_still_shows() {
        let theme = Theme::load("industrial", None, ColorDepth::None).unwrap();
        assert!(theme.selected.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(theme.status("running").fg, Some(Color::Reset));
    }

    #[test]
    fn a_bad_theme_names_its_file_and_field_and_an_unknown_one_lists_the_known() {
        let text = include_str!("../../themes/industrial.toml")
            .replace("\"#ffb000\"   #", "\"#ffb0\"   #");
        let err = Theme::parse("mine.toml", &text, ColorDepth::TrueColor)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mine.toml") && err.contains("palette.accent"),
            "{err}"
        );
        let err = Theme::load("nope", None, ColorDepth::TrueColor)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("industrial, daylight, contrast, ansi16"),
            "{err}"
        );
    }

    #[test]
    fn user_themes_are_found_and_win_over_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        let text = include_str!("../../themes/industrial.toml")
            .replace("name = \"industrial\"", "name = \"mine\"");
        std::fs::write(dir.path().join("mine.toml"), &text).unwrap();
        std::fs::write(
            dir.path().join("industrial.toml"),
            text.replace("#ffb000", "#00ff00"),
        )
        .unwrap();
        assert!(Theme::available(Some(dir.path())).contains(&"mine".to_string()));
        Theme::load("mine", Some(dir.path()), ColorDepth::TrueColor).unwrap();
        let theme = Theme::load("industrial", Some(dir.path()), ColorDepth::TrueColor).unwrap();
        assert_eq!(theme.accent.fg, Some(Color::Rgb(0, 255, 0)));
    }
}
