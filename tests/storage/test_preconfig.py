"""``port_config.json`` read without pydantic (``preconfig.plain_entries``): it answers where its model does, alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from portalloc.errors import ConfigError
from portalloc.storage.preconfig import ENTRY_FIELDS, load_preconfig, plain_entries
from portalloc.storage.preconfigentry import PreconfiguredPorts, entries_adapter

#: Values each field may take: mostly valid, now and then not (wrong type, out of range, a name refused).
_VALUES = {
    "model": ["m_a", "m_b", "cafe\u0301", "", "a/b", "x\u200b", 7, None, True],
    "app_number": [1, 2, 0, -1, True, 1.0, "1", 10**12],
    "backend_port": [5001, 5003, 1024, 65535, 1023, 65536, True, 5001.0, "5001"],
    "frontend_port": [8001, 8003, 5001, 0, False, None],
}


@st.composite
def _entry(draw: st.DrawFn) -> object:
    """A valid entry, or one with a field changed (to any value of its list), dropped or added."""
    entry: dict[str, object] = {name: draw(st.sampled_from(values[:2])) for name, values in _VALUES.items()}
    change = draw(st.sampled_from(["none", "value", "value", "drop", "extra"]))
    name = draw(st.sampled_from(ENTRY_FIELDS))
    if change == "value":
        entry[name] = draw(st.sampled_from(_VALUES[name]))
    elif change == "drop":
        del entry[name]
    elif change == "extra":
        entry["note"] = "extra fields are ignored"
    return entry


#: Mostly lists of entries (one bad entry makes the file bad); now and then something else.
_documents = st.one_of(
    st.lists(_entry(), max_size=3),
    st.lists(_entry(), max_size=3),
    st.lists(_entry(), max_size=3),
    st.lists(st.sampled_from([[], "entry", 1, None]), min_size=1, max_size=2),
    st.sampled_from([{}, "list", 3, None]),
)


@settings(max_examples=400, deadline=None)
@given(_documents)
def test_the_plain_reader_accepts_what_the_model_accepts_and_reads_it_alike(raw: object) -> None:
    try:
        expected: object = [
            (entry.model, entry.app_number, entry.backend_port, entry.frontend_port)
            for entry in entries_adapter().validate_python(raw)
        ]
    except ValidationError:
        expected = None
    assert plain_entries(raw) == expected


def test_a_file_the_plain_reader_refuses_is_described_by_the_model(tmp_path: Path) -> None:
    path = tmp_path / "port_config.json"
    path.write_text(json.dumps([{"model": "m", "app_number": True, "backend_port": 5001, "frontend_port": 8001}]))
    with pytest.raises(ConfigError, match=r"is not a valid port configuration: 0\.app_number: Input should be a valid"):
        load_preconfig(path)
    assert PreconfiguredPorts.model_fields.keys() == set(ENTRY_FIELDS)  # the plain reader reads the model's fields
