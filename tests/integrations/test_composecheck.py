"""compose-check's rules against the ledger (``integrations/composecheck.py``): held, not-own, twice, unallocated."""

from __future__ import annotations

import pytest

from portalloc.integrations import composecheck
from portalloc.integrations.compose import Binding
from portalloc.integrations.composecheck import check_ports


def _binding(port: int, service: str = "web", host_ip: str = "", **kw: object) -> Binding:
    fields: dict[str, object] = {"high": port, "protocol": "tcp", "any_one": False, "profiles": frozenset()}
    fields.update(kw)
    return Binding(service, f"services.{service}.ports[0] '{port}:80'", host_ip, port, **fields)  # type: ignore[arg-type]


def test_check_ports_rules() -> None:
    entries = [("model_a", 1, 5001, 8001), ("model_b", 1, 5003, 8003)]
    assert check_ports([_binding(5001), _binding(8001, "front")], entries, ("model_a", 1)) == []
    found = check_ports([_binding(5003), _binding(5005), _binding(5001, "api")], entries, ("model_a", 1))
    assert [(f.kind, f.port, f.message) for f in found] == [
        (
            "held",
            5003,
            "services.web.ports[0] '5003:80' publishes host port 5003, which is model_b/1's backend port",
        ),
        (
            "not-own",
            5005,
            "services.web.ports[0] '5005:80' publishes host port 5005, not model_a/1's backend 5001 or frontend 8001",
        ),
    ]
    assert found[0].holders == (("model_b", 1, "backend"),)
    (twice,) = check_ports([_binding(5001), _binding(5001, "api")], entries, ("model_a", 1))
    assert twice.kind == "twice" and twice.message.endswith("already published by services.web.ports[0] '5001:80'")
    (unknown,) = check_ports([_binding(8003), _binding(9999)], entries, None)
    assert unknown.message.endswith(
        "which is model_b/1's frontend port (pass --model/--app if this file is that app's)"
    )
    (missing,) = check_ports([], entries, ("model_c", 1))
    assert missing.kind == "unallocated" and missing.message.startswith("model_c/1 has no allocation in the ledger")


def test_ipv4_and_ipv6_are_two_port_spaces_and_the_wildcard_covers_both() -> None:
    v4, v6, anywhere = _binding(8001, host_ip="127.0.0.1"), _binding(8001, "b", host_ip="::1"), _binding(8001, "c")
    assert check_ports([v4, v6], [], None) == []
    assert [f.kind for f in check_ports([v4, anywhere], [], None)] == ["twice"]
    assert [f.kind for f in check_ports([v6, _binding(8001, "d", host_ip="::")], [], None)] == ["twice"]
    assert check_ports([v4, _binding(8001, "e", protocol="udp")], [], None) == []


def test_profiles_that_exclude_each_other_do_not_collide() -> None:
    dev = _binding(3000, "dev", profiles=frozenset({"dev"}))
    prod = _binding(3000, "prod", profiles=frozenset({"prod"}))
    always = _binding(3000, "always")
    assert check_ports([dev, prod], [], None) == []
    (finding,) = check_ports([dev, prod, always], [], None)  # one finding per binding that collides
    assert finding.message.startswith("services.always.ports[0] '3000:80' publishes host port 3000, already published")


def test_many_services_in_disjoint_profiles_meet_the_comparison_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups that never collide would make the sweep quadratic: a budget bounds it, and says so."""
    monkeypatch.setattr(composecheck, "MAX_COMPARISONS", 1_000)
    bindings = [_binding(5001, f"s{i}", profiles=frozenset({f"p{i}"})) for i in range(100)]
    (finding,) = check_ports(bindings, [], None)
    assert (finding.kind, finding.port) == ("twice", None)
    assert finding.message == "more than 1,000 overlapping mappings; the rest not compared"
    assert check_ports(bindings[:40], [], None) == []  # under the budget: compared, and none collide


def test_a_range_is_one_finding_however_many_ledger_ports_it_spans() -> None:
    entries = [(f"m{i}", 1, 5001 + 2 * i, 8001 + 2 * i) for i in range(500)]
    any_one = _binding(5000, high=9000, any_one=True)
    (finding,) = check_ports([any_one], entries, None)
    assert finding.port == 5001
    assert "host ports 5000-9000, which may take port 5001, m0/1's backend (and 999 more ledger ports)" in (
        finding.message
    )
