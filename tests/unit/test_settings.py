"""kontex.settings.Settings is a plain class (issue 25, ninth round: the 45-field pydantic model
was 2.5-3 ms of every function's cold start) that a user sees as the pydantic model it was: each
field's value is the model's (``_model()``, made from the same declarations) for every spelling,
and a value it does not take raises the model's own ValidationError."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from kontex import settings as settings_module
from kontex.settings import Settings, _model

# What each kind of field is given: the usual spellings, the unusual ones pydantic still takes,
# and values it refuses (wrong type, out of bounds, not a number)
SPELLINGS: dict[type, list[Any]] = {
    str: ["x", "postgresql://db/kontex", "", " padded ", b"bytes", 3, 1.5, True, None, ["x"]],
    Path: ["x", "/tmp/data", "", Path("p"), 3, None, b"x"],
    SecretStr: ["s", "", SecretStr("t"), 3, None, b"x"],
    bool: [
        *("true", "True", "TRUE", "false", "1", "0", "yes", "NO", "on", "Off", "t", "f", "y", "n"),
        *(" true", "2", "", "truthy", True, False, 1, 0, 1.0, 2, None),
    ],
    int: [
        *("0", "1", "7", "19", "20", "1000", "007", " 10", "10 ", "1_000", "+5", "-1", "1e3"),
        *("10.0", "10.5", "", "x", "9" * 25, 0, 1, 8, 9, 19, 20, -3, 10.0, 10.5, True, None),
    ],
    float: [
        *("0", "30", "30.5", ".5", "5.", "1e2", "inf", "nan", " 3", "-1", "0.0", "1_0", ""),
        *("x", 0, 30, -1, 0.0, 2.5, -0.5, float("nan"), float("inf"), True, None),
    ],
}


def _outcome(make: Any, values: dict[str, Any]) -> Any:
    try:
        made = make(**values)
    except ValidationError as error:
        return ("error", str(error), error.errors(include_url=False))
    return ("made", {name: (type(v), v) for name, v in made.model_dump().items()})


def test_the_usual_environment_is_read_without_the_model() -> None:
    """The spellings of a real environment never build the pydantic model."""
    assert not issubclass(Settings, BaseModel)
    _model.cache_clear()
    made = Settings.from_env(
        {
            "KONTEX_DATA_DIR": "/tmp/k",
            "KONTEX_DATABASE_URL": "postgresql://db/kontex",
            "KONTEX_DATABASE_POOLED": "true",
            "KONTEX_API_KEY_SECRET": "s",
            "KONTEX_RATE_LIMIT_PER_HOUR": "50",
            "KONTEX_SPAN_GRACE_SECONDS": "2.5",
            "AWS_LAMBDA_FUNCTION_NAME": "f",
            "UNRELATED": "x",
        },
        kontex_data_dir=Path("/tmp/j"),
    )
    assert _model.cache_info().currsize == 0
    assert made.kontex_data_dir == Path("/tmp/j") and made.kontex_database_pooled is True
    assert made.kontex_api_key_secret == SecretStr("s") and made.kontex_rate_limit_per_hour == 50


@pytest.mark.parametrize("name", sorted(settings_module._SPEC))
def test_each_field_takes_what_the_model_takes_and_refuses_what_it_refuses(name: str) -> None:
    kind = settings_module._SPEC[name][0]
    for value in SPELLINGS[kind]:
        assert _outcome(Settings, {name: value}) == _outcome(_model(), {name: value}), value


def test_from_the_environment_as_the_model() -> None:
    env = {name.upper(): SPELLINGS[spec[0]][1] for name, spec in settings_module._SPEC.items()}
    env.update(KONTEX_DEV_SPAN_PROCESSES="2", KONTEX_PROXY_TIMEOUT_SECONDS="9.5", X="y")
    made = Settings.from_env(env)
    model = _model()(**{k.lower(): v for k, v in env.items() if v != ""})
    assert made.model_dump() == model.model_dump()
    assert Settings.from_env({"KONTEX_DATA_DIR": ""}).kontex_data_dir == Path(".kontex")


def test_every_bad_value_in_one_error_as_the_models() -> None:
    bad = {"kontex_rate_limit_per_hour": "0", "kontex_database_prepare": "maybe", "qdrant_url": 3}
    with pytest.raises(ValidationError) as raised:
        Settings.from_env({"KONTEX_SPAN_GRACE_SECONDS": "-1"}, **bad)
    assert str(raised.value).startswith("4 validation errors for Settings")
    assert [e["loc"] for e in raised.value.errors()] == [
        ("kontex_database_prepare",),
        ("kontex_span_grace_seconds",),
        ("kontex_rate_limit_per_hour",),
        ("qdrant_url",),
    ]


def test_defaults_fields_copy_and_frozen_as_a_pydantic_model() -> None:
    made = Settings()
    model = _model()()
    assert made.model_dump() == model.model_dump()
    assert repr(made) == repr(model)
    assert made.kontex_span_grace_seconds == 30 and type(made.kontex_span_grace_seconds) is int
    assert Settings.model_fields is _model().model_fields
    assert Settings.model_fields["kontex_rate_limit_per_hour"].default == 1000
    assert "embedded defaults" in (Settings.model_fields["kontex_data_dir"].description or "")
    assert list(Settings.model_fields) == list(settings_module._SPEC)
    copied = made.model_copy(update={"kontex_dev_span_processes": 2, "qdrant_url": 3})
    assert (copied.kontex_dev_span_processes, copied.qdrant_url) == (2, 3)  # not validated
    assert made.kontex_dev_span_processes == 0 and made.qdrant_url is None
    assert made == Settings() and hash(made) == hash(Settings()) and made != copied
    with pytest.raises(ValidationError, match="Instance is frozen"):
        made.kontex_data_dir = Path("x")  # type: ignore[misc]
    assert made.kontex_data_dir == Path(".kontex")
    assert pickle.loads(pickle.dumps(copied)) == copied
    secret = Settings(kontex_api_key_secret="hidden")
    assert "hidden" not in repr(secret)
    assert secret.kontex_api_key_secret is not None
    assert secret.kontex_api_key_secret.get_secret_value() == "hidden"
