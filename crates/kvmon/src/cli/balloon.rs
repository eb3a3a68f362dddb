//! `-device virtio-balloon-device[,id=ID][,deflate-on-oom=on|off]
//! [,free-page-reporting=on|off][,guest-stats-polling-interval=SECONDS]`:
//! the memory balloon, one per machine.

use machine::BalloonConfig;
use virtio::balloon::{polling_interval, BalloonOptions};

use super::opts::{parse_bool, Opts};
use super::CliError;

const POLLING: &str = "guest-stats-polling-interval";

/// Parses the balloon's properties; `existing` is a balloon already given.
pub fn device(
    opts: &Opts,
    location: &str,
    qom_path: String,
    existing: Option<&BalloonConfig>,
) -> Result<BalloonConfig, CliError> {
    let fail = |message: String| CliError::at(location, message);
    opts.check_properties(
        "virtio-balloon-device",
        &["deflate-on-oom", "free-page-reporting", POLLING],
        location,
    )?;
    let flag = |key: &str| {
        opts.get(key)
            .map_or(Ok(false), |value| parse_bool(key, value))
            .map_err(fail)
    };
    let stats_polling_interval = match opts.get(POLLING) {
        None => 0,
        Some(text) => {
            let seconds: i64 = text
                .parse()
                .map_err(|_| fail(format!("Parameter '{POLLING}' expects integer")))?;
            polling_interval(seconds).map_err(|e| fail(e.into()))?
        }
    };
    let options = BalloonOptions {
        deflate_on_oom: flag("deflate-on-oom")?,
        free_page_reporting: flag("free-page-reporting")?,
        stats_polling_interval,
    };
    if existing.is_some() {
        return Err(fail("Only one balloon device is supported".into()));
    }
    Ok(BalloonConfig { options, qom_path })
}
