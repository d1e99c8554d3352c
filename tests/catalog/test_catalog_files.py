"""Catalog data files: strict keys, sources and dates on every file."""

import pytest
import yaml

from infsim.catalog._fields import Fields
from infsim.catalog.hardware import HARDWARE_DIR
from infsim.catalog.model import MODELS_DIR
from infsim.errors import InputError

FILES = sorted(MODELS_DIR.glob("*.yaml")) + sorted(HARDWARE_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_file_has_source_and_as_of(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data["source"], str)
    assert data["source"].strip()
    assert isinstance(data["as_of"], str)
    assert data["as_of"][:4].isdigit()


def test_unknown_key_is_rejected_with_suggestion():
    fields = Fields({"num_hiden_layers": 3}, file="x.yaml")
    with pytest.raises(InputError, match=r"x\.yaml: num_hiden_layers: unknown key \(did you mean"):
        fields.reject_unknown({"num_hidden_layers"})


def test_bool_is_not_an_integer():
    with pytest.raises(InputError, match="must be an integer"):
        Fields({"n": True}, file="x.yaml").get_int("n")
