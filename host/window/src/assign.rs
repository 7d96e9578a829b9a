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

    /// The fixed windows `(start, end)` holding time `t`, latest first.
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
