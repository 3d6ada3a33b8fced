"""A failed validation reaches a user as one line (``portalloc.core.validation``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portalloc import InvalidValue, PortPair
from portalloc.core.models import PortPolicy
from portalloc.core.validation import describe_validation_error


def test_the_first_problem_is_named_with_where_it_is_and_how_many_more_there_are() -> None:
    with pytest.raises(ValidationError) as caught:
        PortPolicy.model_validate({"backend_start": "x", "step": 0, "max_port": 70000})
    line = describe_validation_error(caught.value)
    assert "\n" not in line
    assert line.startswith("backend_start: ") and line.endswith("(and 2 more problems)")


def test_building_a_model_by_calling_it_raises_invalid_value_under_the_name_users_meet() -> None:
    with pytest.raises(InvalidValue, match=r"^invalid PortPair: backend: .*") as caught:
        PortPair(model="m", app_num=1, backend=70000, frontend=8001)
    assert "\n" not in str(caught.value)
