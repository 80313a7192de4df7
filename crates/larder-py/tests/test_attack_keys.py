"""Attack suite, `@cached` and `cache_response` keys: a call is keyed by its arguments' values,
never by an object's address. An argument with no value encoding is refused with a `TypeError`
that names it, so no caller can be handed another caller's result (issue 23, point 1)."""

import asyncio
import dataclasses
import datetime
import decimal
import enum
import gc
import random
import typing
import uuid

import itertools

import pydantic
import pytest

import larder
import larder.asgi


class Plain:
    """A class with no value of its own: its repr is its address."""

    def __init__(self, secret):
        self.secret = secret


class Reprd:
    """A repr that says only part of the state: still not a key."""

    def __init__(self, name, secret):
        self.name, self.secret = name, secret

    def __repr__(self):
        return f"Reprd({self.name!r})"


class Keyed:
    """Says what keys it."""

    def __init__(self, tenant, secret):
        self.tenant, self.secret = tenant, secret

    def __larder_key__(self):
        return (self.tenant, self.secret)


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: typing.Any


class Model(pydantic.BaseModel):
    name: str
    tags: list


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Pair(typing.NamedTuple):
    a: typing.Any
    b: typing.Any


def cache():
    return larder.Cache.from_url("memory://")


def test_an_object_known_only_by_its_address_is_refused_and_named():
    @larder.cached(cache=cache())
    def secret_of(user):
        return user.secret

    for bad in (Plain("alice"), Reprd("a", "alice"), object(), [1, Plain("x")], {"u": Plain("x")}):
        with pytest.raises(TypeError) as raised:
            secret_of(bad)
        message = str(raised.value)
        assert "'user'" in message and "skip=['user']" in message and "__larder_key__" in message
    with pytest.raises(TypeError, match=r"argument 'user'\[1\]"):
        secret_of([1, Plain("x")])


def test_the_finding_2000_objects_of_a_plain_class_never_get_another_ones_result():
    """Before: 1,998 of 2,000 fresh objects were answered with an older object's result, since
    each reused a dead object's address and the key held the address."""
    calls = 0

    @larder.cached(cache=cache())
    def secret_of(user):
        nonlocal calls
        calls += 1
        return user.secret

    wrong = refused = 0
    for i in range(2000):
        try:
            if secret_of(Plain(f"user-{i}")) != f"user-{i}":
                wrong += 1
        except TypeError:
            refused += 1
    assert (wrong, refused, calls) == (0, 2000, 0)


def test_a_fastapi_request_is_refused_unless_skipped():
    """Before: `@cached` on `me(request)` served 97 of 200 requests another user's result."""
    from starlette.requests import Request

    def request(user):
        return Request({"type": "http", "method": "GET", "path": "/me", "headers": [(b"authorization", user.encode())]})

    @larder.cached(cache=cache())
    async def me(request: Request):
        return request.headers["authorization"]

    async def main():
        for i in range(50):
            with pytest.raises(TypeError, match="skip=\\['request'\\]"):
                await me(request(f"user-{i}"))

    asyncio.run(main())

    @larder.cached(cache=cache(), key="me:{user_id}", skip=["request"])
    async def me_keyed(request: Request, user_id: int):
        return request.headers["authorization"]

    async def keyed():
        assert await me_keyed(request("alice"), 1) == "alice"
        assert await me_keyed(request("bob"), 2) == "bob"

    asyncio.run(keyed())


def test_other_per_request_objects_are_refused_too():
    from starlette.background import BackgroundTasks
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    @larder.cached(cache=cache())
    def handler(thing):
        return 1

    async def no_receive():
        return {}

    async def no_send(message):
        return None

    things = [
        Response(b"x"),
        BackgroundTasks(),
        WebSocket({"type": "websocket", "path": "/ws", "headers": []}, no_receive, no_send),
    ]
    for thing in things:
        with pytest.raises(TypeError, match="different object on every request"):
            handler(thing)


def test_a_template_that_would_format_an_address_is_refused():
    @larder.cached(cache=cache(), key="user:{user}")
    def by_template(user):
        return user.secret

    with pytest.raises(TypeError, match=r"\{user\}"):
        by_template(Plain("alice"))

    @larder.cached(cache=cache(), key="user:{user.secret}")
    def by_field(user):
        return user.secret

    assert by_field(Plain("alice")) == "alice"
    assert by_field(Plain("bob")) == "bob"


def test_a_template_naming_a_missing_argument_fails_when_decorated():
    with pytest.raises(ValueError, match="'town'"):

        @larder.cached(key="weather:{town}")
        def weather(city):
            return city


def test_nesting_past_the_limit_is_refused_not_keyed_by_repr():
    @larder.cached(cache=cache())
    def depth(value):
        return 1

    deep = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(TypeError, match="nested deeper"):
        depth(deep)
    loop = []
    loop.append(loop)
    with pytest.raises(TypeError, match="nested deeper"):
        depth(loop)


def test_sets_are_keyed_by_members_whatever_their_order():
    serial = itertools.count()

    @larder.cached(cache=cache())
    def f(s):
        return [next(serial)]

    one = f({"a", "b", "c"})
    assert f({"c", "b", "a"}) is one
    assert f(frozenset({"a", "b", "c"})) is not one
    assert f({"a", "b"}) is not one
    assert f.cache_key({1, 2}) != f.cache_key({1, "2"})


def test_values_of_every_documented_type_key_by_value():
    serial = itertools.count()

    @larder.cached(cache=cache())
    def f(v):
        return [next(serial)]

    equal_pairs = [
        (datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.datetime(2024, 1, 2, 3, 4, 5)),
        (datetime.date(2024, 1, 2), datetime.date(2024, 1, 2)),
        (datetime.time(3, 4), datetime.time(3, 4)),
        (datetime.timedelta(seconds=90), datetime.timedelta(minutes=1, seconds=30)),
        (uuid.UUID(int=7), uuid.UUID(int=7)),
        (decimal.Decimal("1.5"), decimal.Decimal("1.5")),
        (Color.RED, Color(1)),
        (Point(1, [2]), Point(1, [2])),
        (Model(name="a", tags=[1]), Model(name="a", tags=[1])),
        (Keyed("t", 1), Keyed("t", 1)),
        (Pair(1, 2), Pair(1, 2)),
        (Plain, Plain),
    ]
    keys = set()
    for a, b in equal_pairs:
        assert f.cache_key(a) == f.cache_key(b), a
        assert f(a) is f(b)
        keys.add(f.cache_key(a))
    assert len(keys) == len(equal_pairs)
    different = [
        (datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2)),
        (Color.RED, 1),
        (Point(1, 2), (1, 2)),
        (Pair(1, 2), (1, 2)),
        (Point(1, 2), Point(2, 1)),
        (Model(name="a", tags=[]), {"name": "a", "tags": []}),
        (Keyed("t", 1), Keyed("t", 2)),
        (uuid.UUID(int=7), str(uuid.UUID(int=7))),
        (b"ab", bytearray(b"ab")),
        (True, 1),
        (1, 1.0),
    ]
    for a, b in different:
        assert f.cache_key(a) != f.cache_key(b), (a, b)


def test_a_value_inside_a_dataclass_or_a_key_method_is_checked_too():
    @larder.cached(cache=cache())
    def f(v):
        return 1

    with pytest.raises(TypeError, match=r"argument 'v'\.y"):
        f(Point(1, Plain("x")))
    with pytest.raises(TypeError, match="__larder_key__"):
        f(Keyed(Plain("x"), 1))


def test_cache_response_refuses_an_argument_known_by_its_address():
    from starlette.requests import Request

    @larder.asgi.cache_response(cache=cache())
    async def endpoint(client: typing.Any = None):
        return {"ok": True}

    request = Request({"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": []})

    async def main():
        with pytest.raises(TypeError, match="'client'"):
            await endpoint(client=Plain("db"), _larder_request=request)
        assert await endpoint(client="a", _larder_request=request) == {"ok": True}

    asyncio.run(main())


# --- the property: 10,000 distinct objects, each keyed by value or refused, never a wrong answer


def fingerprint(v):
    """What a value-keyed call may depend on, computed apart from larder: equal fingerprints are
    equal arguments, and a function of the argument's value gives them equal results."""
    if isinstance(v, Keyed):
        return ("Keyed", fingerprint(v.__larder_key__()))
    if isinstance(v, enum.Enum):
        return ("enum", type(v).__qualname__, v.name)
    if isinstance(v, Pair):
        return ("Pair", tuple(fingerprint(x) for x in v))
    if isinstance(v, Point):
        return ("Point", fingerprint(v.x), fingerprint(v.y))
    if isinstance(v, Model):
        return ("Model", fingerprint(v.model_dump()))
    if isinstance(v, (set, frozenset)):
        return (type(v).__name__, tuple(sorted(repr(fingerprint(x)) for x in v)))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((repr(fingerprint(k)), repr(fingerprint(x))) for k, x in v.items())))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(fingerprint(x) for x in v))
    if isinstance(v, float):
        return ("float", v.hex())
    return (type(v).__qualname__, repr(v))


def keyable(v):
    if isinstance(v, Plain):
        return False
    if isinstance(v, Keyed):
        return keyable(v.__larder_key__())
    if isinstance(v, Pair):
        return all(keyable(x) for x in v)
    if isinstance(v, Point):
        return keyable(v.x) and keyable(v.y)
    if isinstance(v, Model):
        return all(keyable(x) for x in v.tags)
    if isinstance(v, dict):
        return all(keyable(k) and keyable(x) for k, x in v.items())
    if isinstance(v, (list, tuple, set, frozenset)):
        return all(keyable(x) for x in v)
    return True


def random_value(rng, depth=0):
    scalars = [
        lambda: rng.randrange(-5, 5),
        lambda: rng.choice(["a", "b", "", "ab"]),
        lambda: rng.choice([0.5, -0.0, 0.0, 1.0]),
        lambda: rng.choice([True, False, None]),
        lambda: rng.choice([b"a", b"", b"ab"]),
        lambda: rng.choice(list(Color)),
        lambda: datetime.date(2024, 1, rng.randrange(1, 4)),
        lambda: uuid.UUID(int=rng.randrange(3)),
        lambda: Plain(rng.randrange(3)),
    ]
    if depth >= 3 or rng.random() < 0.45:
        return rng.choice(scalars)()
    kind = rng.randrange(9)
    items = [random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    hashable = [x for x in items if isinstance(x, (int, str, bytes, float, bool, type(None), Color))]
    if kind == 0:
        return items
    if kind == 1:
        return tuple(items)
    if kind == 2:
        return {str(i): x for i, x in enumerate(items)}
    if kind == 3:
        return set(hashable)
    if kind == 4:
        return frozenset(hashable)
    if kind == 5:
        return Point(rng.randrange(3), items)
    if kind == 6:
        return Model(name=rng.choice(["a", "b"]), tags=[x for x in items if not isinstance(x, Plain)])
    if kind == 7:
        return Keyed(rng.choice(["t", "u"]), items)
    return Pair(*(items + [None, None])[:2])


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_10000_distinct_objects_never_get_a_wrong_answer(mode):
    rng = random.Random(23 if mode == "sync" else 32)
    c = cache()
    calls = 0

    def answer(v):
        nonlocal calls
        calls += 1
        return fingerprint(v)

    if mode == "sync":
        f = larder.cached(cache=c)(answer)
        call = f
    else:

        async def answer_async(v):
            return answer(v)

        g = larder.cached(cache=c)(answer_async)
        loop = asyncio.new_event_loop()
        call = lambda v: loop.run_until_complete(g(v))  # noqa: E731

    wrong, refused, served = [], 0, 0
    for _ in range(10_000):
        value = random_value(rng)
        try:
            result = call(value)
        except TypeError:
            assert not keyable(value), f"refused a value-keyed argument: {value!r}"
            refused += 1
            continue
        assert keyable(value), f"keyed an argument known only by its address: {value!r}"
        served += 1
        if result != fingerprint(value):
            wrong.append(value)
        del value
        if served % 500 == 0:
            gc.collect()  # frees dead objects so their addresses are reused
    if mode == "async":
        loop.close()
    assert wrong == []
    assert refused > 500 and served > 5000
    assert calls < served, "equal values share an entry"
