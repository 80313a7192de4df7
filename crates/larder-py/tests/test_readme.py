"""Every Python block of the README's "larder for Python" section runs as written (top-level
`await` included), against a redis-server of the test's own where a block names Redis."""

import ast
import asyncio
import os
import re
from pathlib import Path

import pytest

import larder
from larder import _cached

README = Path(__file__).resolve().parents[3] / "README.md"


def python_blocks():
    text = README.read_text()
    section = text.split("## larder for Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", section, flags=re.S | re.M)
    return [
        "\n".join(line[len(indent):] for line in body.splitlines())
        for indent, body in blocks
    ]


def test_the_section_has_its_blocks():
    assert len(python_blocks()) >= 4


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_a_readme_block_runs(index, redis_url, monkeypatch):
    source = python_blocks()[index].replace("redis://127.0.0.1:6379", redis_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    # A block may name the default cache: it is put back after.
    monkeypatch.setattr(_cached, "_default", _cached._default)
    monkeypatch.setattr(_cached, "_default_named", _cached._default_named)
    monkeypatch.setattr(_cached, "_default_peek_call", _cached._default_peek_call)
    code = compile(source, f"README block {index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace = {"__name__": f"readme_block_{index}"}

    async def run():
        result = eval(code, namespace)
        if asyncio.iscoroutine(result):
            await result

    asyncio.run(run())
