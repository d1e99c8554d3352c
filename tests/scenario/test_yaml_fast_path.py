"""`infsim.textio.safe_load`: libyaml's parser where PyYAML has it, the same objects as
`yaml.safe_load`, and PyYAML's own errors for a document either parser refuses."""

from __future__ import annotations

import pytest
import yaml

from infsim import textio
from infsim.catalog.hardware import HARDWARE_DIR
from infsim.errors import InputError

DOCS = [
    "a: 1\nb: [1.5, 2e3, .inf, -.nan]\nc: {d: yes, e: null, f: '0.10'}\n",
    "- 2024-01-02\n- 0x1f\n- 1_000\n- ~\n- !!str 12\n",
    "text: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
]


@pytest.mark.parametrize(
    "text", DOCS + [p.read_text() for p in sorted(HARDWARE_DIR.glob("*.yaml"))]
)
def test_same_objects_as_pyyaml(text: str) -> None:
    fast, slow = textio.safe_load(text), yaml.safe_load(text)
    assert repr(fast) == repr(slow)  # repr: nan != nan


def test_errors_are_pyyamls_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = "a: [1, 2\nb: 3\n"
    with pytest.raises(InputError) as fast:
        textio.load_yaml(bad, "x.yaml")
    monkeypatch.setattr(textio, "_LIBYAML", None)
    with pytest.raises(InputError) as slow:
        textio.load_yaml(bad, "x.yaml")
    assert str(fast.value) == str(slow.value)
    assert str(fast.value).startswith("x.yaml: invalid YAML at line ")
