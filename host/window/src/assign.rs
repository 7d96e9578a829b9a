//! Window kinds and the windows a row belongs to. Times are milliseconds
//! since the Unix epoch; a window `[start, end)` holds `start <= t < end`.

/// How rows are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size` ms, aligned to the epoch.
    Tumbling {
        /// Window length, ms.
        size: i64,
    },
    /// Windows of `size` ms starting every `slide` ms; a row is in
    /// `size / slide` of them.
    Hopping {
        /// Window length, ms.
        size: i64,
        /// Distance between window starts, ms.
        slide: i64,
    },
    /// Per key, rows closer than `gap` ms form one window `[first, last + gap)`.
    Session {
        /// Inactivity that ends a session, ms.
        gap: i64,
    },
}

impl WindowKind {
    /// Check the sizes: positive, and a hopping window's size a multiple of
    /// its slide.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            WindowKind::Tumbling { size } if size <= 0 => {
                Err("window size must be positive".into())
            }
            WindowKind::Hopping { size, slide } if size <= 0 || slide <= 0 => {
                Err("window size and slide must be positive".into())
            }
            WindowKind::Hopping { size, slide } if size % slide != 0 => Err(format!(
                "hopping window size ({size} ms) must be a multiple of its slide ({slide} ms)"
            )),
            WindowKind::Session { gap } if gap <= 0 => Err("session gap must be positive".into()),
            _ => Ok(()),
        }
    }

    /// Whether every window of time `t` has a start and an end that
    /// milliseconds since the epoch in an i64 can hold: not so for times
    /// within a window's size of `i64::MIN` or `i64::MAX`.
    pub fn fits(&self, t: i64) -> bool {
        match *self {
            WindowKind::Session { gap } => t.checked_add(gap).is_some(),
            WindowKind::Tumbling { size } => fits(t, size, size),
            WindowKind::Hopping { size, slide } => fits(t, size, slide),
        }
    }

    /// The fixed windows `(start, end)` holding time `t`, latest first.
    /// `t` must [fit](Self::fits).
    /// Session windows have no fixed windows; this yields `[t, t + gap)`,
    /// the row's own proto-session.
    pub fn windows_of(&self, t: i64) -> impl Iterator<Item = (i64, i64)> {
        let (size, slide) = match *self {
            WindowKind::Tumbling { size } => (size, size),
            WindowKind::Hopping { size, slide } => (size, slide),
            WindowKind::Session { gap } => (gap, gap),
        };
        let session = matches!(self, WindowKind::Session { .. });
        let last_start = if session { t } else { t - t.rem_euclid(slide) };
        (0..size / slide)
            .map(move |i| last_start - i * slide)
            .map(move |start| (start, start + size))
    }
}

/// Whether the windows of `size` every `slide` holding `t` start and end
/// within i64.
fn fits(t: i64, size: i64, slide: i64) -> bool {
    let Some(last_start) = t.checked_sub(t.rem_euclid(slide)) else {
        return false;
    };
    let first_start = (size / slide - 1)
        .checked_mul(slide)
        .and_then(|back| last_start.checked_sub(back));
    first_start.is_some() && last_start.checked_add(size).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_align_to_the_epoch_including_before_it() {
        let kind = WindowKind::Tumbling { size: 10 };
        assert_eq!(kind.windows_of(0).collect::<Vec<_>>(), [(0, 10)]);
        assert_eq!(kind.windows_of(19).collect::<Vec<_>>(), [(10, 20)]);
        assert_eq!(kind.windows_of(-1).collect::<Vec<_>>(), [(-10, 0)]);
    }

    #[test]
    fn times_at_the_ends_of_i64_have_no_window_and_others_do() {
        for kind in [
            WindowKind::Tumbling { size: 10 },
            WindowKind::Hopping { size: 10, slide: 5 },
            WindowKind::Session { gap: 10 },
        ] {
            assert!(!kind.fits(i64::MAX), "{kind:?}");
            assert!(kind.fits(0), "{kind:?}");
            assert!(kind.fits(-1_000_000), "{kind:?}");
        }
        assert!(!WindowKind::Hopping { size: 10, slide: 5 }.fits(i64::MIN + 3));
        assert!(!WindowKind::Tumbling { size: 10_000 }.fits(i64::MIN));
        assert!(WindowKind::Tumbling { size: 10 }.fits(i64::MIN + 8));
    }

    #[test]
    fn a_hopping_row_is_in_size_over_slide_windows() {
        let kind = WindowKind::Hopping { size: 10, slide: 5 };
        assert_eq!(kind.windows_of(12).collect::<Vec<_>>(), [(10, 20), (5, 15)]);
        assert!(kind.validate().is_ok());
        assert!(
            WindowKind::Hopping { size: 10, slide: 4 }
                .validate()
                .is_err()
        );
    }
}
