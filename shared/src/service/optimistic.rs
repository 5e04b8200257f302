//! Optimistic concurrency: read, decide, write on a condition (an unchanged revision, or
//! absence), and on a lost race do it all again. Every such write goes through
//! [`retry_on_conflict!`], so they all retry a bounded number of times and back off alike.

use crate::error::Result;
use crate::ports::MetaError;

/// How one try of an optimistic write ended.
#[derive(Debug)]
pub enum Attempt<T> {
    /// The write landed (or there was nothing to write): this is the result.
    Done(T),
    /// The condition failed: somebody else wrote first. Read again and retry.
    Raced,
}

/// The try a conditional write ends: [`Attempt::Done`] with `value` when it landed,
/// [`Attempt::Raced`] when its condition failed or a concurrent transaction cancelled it, an
/// error otherwise.
pub fn written<T>(result: std::result::Result<(), MetaError>, value: T) -> Result<Attempt<T>> {
    match result {
        Ok(()) => Ok(Attempt::Done(value)),
        Err(MetaError::ConditionFailed | MetaError::Contended(_)) => Ok(Attempt::Raced),
        Err(e) => Err(e.into()),
    }
}

/// Waits before try `n` (none before the first): a few random milliseconds, doubling up to 64,
/// so callers racing in step (the CLI sends 16 requests at once) do not collide again in step.
pub async fn backoff(n: u32) {
    if n > 0 {
        let ms = rand::random_range(1..=(2u64 << n.min(5)));
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// `retry_on_conflict!(tries, async { … })`: runs the async block (an [`Attempt`] in a
/// `Result`) up to `tries` times while it loses races, with [`backoff`] between tries. Gives
/// `Ok(Some(value))`, `Ok(None)` when every try lost (each caller says what that means: a 409
/// to retry, or letting a request through), or the first error.
///
/// A macro rather than a function taking an async closure: the block is pasted into the loop,
/// so it may borrow the caller's locals mutably, and the handler futures stay `Send` (an
/// `AsyncFnMut` bound loses that for borrowed captures).
macro_rules! retry_on_conflict {
    ($tries:expr, $attempt:expr) => {{
        let mut outcome = Ok(None);
        for n in 0..$tries {
            $crate::service::optimistic::backoff(n).await;
            // The error type is fixed here so early `return`s in the block need no annotation.
            let attempt: $crate::error::Result<$crate::service::optimistic::Attempt<_>> =
                $attempt.await;
            match attempt {
                Ok($crate::service::optimistic::Attempt::Done(value)) => {
                    outcome = Ok(Some(value));
                    break;
                }
                Ok($crate::service::optimistic::Attempt::Raced) => {}
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        outcome
    }};
}
pub(crate) use retry_on_conflict;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_lost_races_and_stops_at_the_bound() {
        let mut calls = 0;
        let out: Result<Option<u32>> = retry_on_conflict!(4, async {
            calls += 1;
            written(if calls < 3 { Err(MetaError::ConditionFailed) } else { Ok(()) }, calls)
        });
        assert_eq!(out.ok().flatten(), Some(3));

        let mut calls = 0;
        let out: Result<Option<()>> = retry_on_conflict!(4, async {
            calls += 1;
            Ok(Attempt::Raced)
        });
        assert!(matches!(out, Ok(None)));
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn other_errors_stop_at_once() {
        let mut calls = 0;
        let out: Result<Option<()>> = retry_on_conflict!(4, async {
            calls += 1;
            written(Err(MetaError::Unavailable("down".into())), ())
        });
        assert!(out.is_err());
        assert_eq!(calls, 1);
    }
}
