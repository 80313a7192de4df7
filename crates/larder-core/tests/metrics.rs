//! The counters reach the `metrics` facade, labelled with the cache's name.

use larder::Cache;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A counter's name, labels and value.
type Exported = (String, Vec<(String, String)>, u64);

#[tokio::test]
async fn counters_are_exported_through_the_metrics_facade() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Handles are taken when the cache is built, so the recorder must be in place then.
    let cache = metrics::with_local_recorder(&recorder, || Cache::builder().name("users").build());

    cache.set("a", 1u8).await.unwrap();
    let _ = cache.get::<u8>("a").await;
    let _ = cache.get::<u8>("b").await;
    let _ = cache.get_or_fetch("c", || async { Ok::<_, ()>(2u8) }).await;

    let counters: Vec<Exported> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => {
                let k = key.key();
                let labels = k
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect();
                Some((k.name().to_owned(), labels, n))
            }
            _ => None,
        })
        .collect();
    let get = |name: &str| {
        counters
            .iter()
            .find(|(n, labels, _)| n == name && labels.contains(&("cache".into(), "users".into())))
            .map(|(_, _, v)| *v)
    };
    assert_eq!(get("larder_hits_total"), Some(1), "{counters:?}");
    assert_eq!(get("larder_misses_total"), Some(2), "{counters:?}");
    assert_eq!(get("larder_factory_runs_total"), Some(1), "{counters:?}");
    // The snapshot and the facade agree.
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.factory_runs), (1, 2, 1));
}
