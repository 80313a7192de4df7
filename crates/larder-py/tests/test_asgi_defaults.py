"""One source of defaults: every setting larder.asgi does not get is larder-http's default, the
same one larder-proxy takes (its Rust test compares its layer with the same defaults)."""

import datetime

import pytest

import larder
from larder.asgi import CacheMiddleware, HttpCache

# A value other than the default for each setting HttpCache takes, by the name it takes it
# under, and the field of the settings it lands in.
CHANGES = {
    "namespace": ("pages", "namespace", "pages"),
    "max_body": (1024, "max_body", 1024),
    "status_header": (None, "status_header", None),
    "cache_status": ("edge", "cache_status", "edge"),
    "tag_header": ("cache-tag", "tag_header", "cache-tag"),
    "purge_prefix_depth": (1, "prefix_purge_depth", 1),
    "keyed_headers": (["x-tenant"], "keyed_headers", ["x-tenant"]),
    "key_cookies": (["lang"], "key_cookies", ["lang"]),
    "ignore_cookies": (["_ga*"], "ignore_cookies", ["_ga*"]),
    "fixed_host": ("api.test", "fixed_host", "api.test"),
    "response_timeout": ("5s", "response_timeout", 5.0),
    "body_idle_timeout": (datetime.timedelta(seconds=3), "body_idle_timeout", 3.0),
    "fail_safe_throttle": (7, "fail_safe_throttle", 7.0),
    "hit_for_pass": (0, "hit_for_pass", 0.0),
    "keep_stale": ("1m", "keep_stale", 60.0),
    "recording_budget": (1 << 20, "recording_budget", 1 << 20),
    "finish_unread_below": (1, "finish_unread_below", 1),
    "store_set_cookie": (True, "store_set_cookie", True),
    "etag_from_body": (True, "etag_from_body", True),
    "distributed_lock": (False, "distributed_lock", None),
}


def cache():
    return larder.Cache.from_url("memory://")


def test_a_cache_given_nothing_has_larder_https_defaults():
    defaults = HttpCache.defaults()
    assert HttpCache(cache()).settings() == defaults
    # The middleware makes the same one when given only a cache.
    assert CacheMiddleware(lambda *a: None, cache=cache()).http_cache.settings() == defaults
    # The forwarding headers proxies and frameworks honour key entries: the finding was an
    # empty list passed from Python that replaced them.
    assert "x-forwarded-host" in defaults["keyed_headers"] and len(defaults["keyed_headers"]) == 8
    assert defaults["distributed_lock"] is not None
    assert defaults["prefix_purge_depth"] == 4


def test_a_ttl_changes_the_mode_and_nothing_else():
    settings = HttpCache(cache(), ttl=60).settings()
    defaults = HttpCache.defaults()
    assert settings.pop("mode") == "application (ttl 60s)"
    defaults.pop("mode")
    assert settings == defaults


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_each_setting_reaches_its_own_field_only(name):
    given, field, expected = CHANGES[name]
    settings = HttpCache(cache(), **{name: given}).settings()
    defaults = HttpCache.defaults()
    assert settings[field] == expected, settings
    assert defaults[field] != expected, f"{name}: the test's value is the default"
    changed = {k for k in settings if settings[k] != defaults[k]}
    assert changed == {field}


def test_every_field_of_the_settings_can_be_given():
    """A setting larder-http gains must be reachable from Python: every field of the settings is
    the target of one name HttpCache takes (or of ttl/rules)."""
    reachable = {field for _, field, _ in CHANGES.values()} | {
        "mode", "rules", "heuristic_fraction", "heuristic_max", "compression"}
    assert set(HttpCache.defaults()) <= reachable, set(HttpCache.defaults()) - reachable


def test_an_unknown_setting_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="purge_prefix_dept"):
        HttpCache(cache(), purge_prefix_dept=3)
    with pytest.raises(ValueError, match="keyed_headers"):
        HttpCache(cache(), keyed_headers=["not a header"])


def test_compression_is_on_by_default_and_takes_the_proxys_keys():
    defaults = HttpCache.defaults()["compression"]
    assert defaults["enabled"] and defaults["encodings"] == ["gzip", "br", "zstd"]
    off = HttpCache(cache(), compression=False).settings()
    assert off["compression"] == {**defaults, "enabled": False}
    tuned = HttpCache(cache(), compression={"encodings": ["br"], "min_size": "2KiB"}).settings()
    assert tuned["compression"] == {**defaults, "encodings": ["br"], "min_size": 2048}
    with pytest.raises(ValueError, match="lz4"):
        HttpCache(cache(), compression={"encodings": ["lz4"]})
    with pytest.raises(ValueError, match="unknown field"):
        HttpCache(cache(), compression={"level": "best", "leve": 1})
    with pytest.raises(TypeError, match="compression"):
        HttpCache(cache(), compression="gzip")
