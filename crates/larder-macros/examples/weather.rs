//! A fake slow weather API memoized with `#[larder::cached]`: use case 004 (aiocache's
//! `@cached(ttl=3600)` on an async weather call) in one line of larder.
//!
//! ```text
//! cargo run -p larder-macros --example weather
//! ```

use std::time::{Duration, Instant};

use larder::cached;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Weather {
    city: String,
    celsius: i32,
    summary: String,
}

#[derive(Debug, Clone)]
enum WeatherError {
    UnknownCity(String),
    TimedOut(Duration),
}

impl std::fmt::Display for WeatherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownCity(city) => write!(f, "no weather for {city}"),
            Self::TimedOut(after) => write!(f, "the weather API did not answer within {after:?}"),
        }
    }
}

/// What `hard_timeout` hands to the error type.
impl From<larder::Timeout> for WeatherError {
    fn from(t: larder::Timeout) -> Self {
        Self::TimedOut(t.0)
    }
}

/// The slow upstream: 1 second per call, and it hangs for Reykjavik.
async fn weather_api(city: &str) -> Result<Weather, WeatherError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    match city {
        "Reykjavik" => std::future::pending().await,
        "Atlantis" => Err(WeatherError::UnknownCity(city.to_owned())),
        _ => Ok(Weather {
            city: city.to_owned(),
            celsius: 12 + city.len() as i32,
            summary: "light rain".into(),
        }),
    }
}

/// Cached for an hour per city; errors are not cached; a call over 3 s is stopped.
#[cached(key = "weather:{city}", ttl = "1h", hard_timeout = "3s")]
async fn get_weather(city: &str) -> Result<Weather, WeatherError> {
    weather_api(city).await
}

#[tokio::main]
async fn main() {
    let timed = |label: &'static str| {
        let start = Instant::now();
        move |result: &Result<Weather, WeatherError>| {
            println!(
                "{label:<34} {:>7.1} ms  {result:?}",
                start.elapsed().as_secs_f64() * 1e3
            );
        }
    };

    let done = timed("first call (upstream)");
    done(&get_weather("Berlin").await);
    let done = timed("second call (cached)");
    done(&get_weather("Berlin").await);

    let done = timed("10 concurrent cold calls (1 run)");
    let calls: Vec<_> = (0..10)
        .map(|_| tokio::spawn(get_weather("Lisbon")))
        .collect();
    for c in calls {
        match c.await {
            Ok(r) => done(&r),
            Err(e) => eprintln!("task failed: {e}"),
        }
    }

    get_weather::invalidate("Berlin").await;
    let done = timed("after invalidate (upstream again)");
    done(&get_weather("Berlin").await);

    let done = timed("an error (not cached)");
    done(&get_weather("Atlantis").await);

    let done = timed("a hanging upstream (hard timeout)");
    done(&get_weather("Reykjavik").await);
    println!("{:?}", larder::default_cache().stats());
}
