"""Constructor parameters given in a config (`model.params`, `loss.params`), checked one way.

The constructor's signature says which keys exist and its type hints what each must be; values
are validated and converted with pydantic, and a mistake is a ConfigError naming the key.
Numbers must be finite: no parameter means anything by an infinity or a NaN.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError

from recloss.errors import ConfigError
from recloss.names import did_you_mean

FINITE = ConfigDict(allow_inf_nan=False)


def accepted_params(cls: type, given_elsewhere: Collection[str] = ()) -> dict[str, Any]:
    """The parameters of `cls.__init__` a config may set, with their defaults."""
    sig = inspect.signature(cls.__init__)
    return {
        n: p.default
        for n, p in sig.parameters.items()
        if n != "self" and n not in given_elsewhere and p.kind is not p.VAR_KEYWORD
    }


def check_params(
    cls: type,
    name: str,
    params: dict[str, Any],
    where: str,
    given_elsewhere: Collection[str] = (),
) -> dict[str, Any]:
    """`params` validated against `cls.__init__`'s hints; ConfigError naming `<where>.<key>`."""
    valid = accepted_params(cls, given_elsewhere)
    hints = get_type_hints(cls.__init__, include_extras=True)
    checked = {}
    for key, value in params.items():
        if key not in valid:
            choices = ", ".join(valid) or "none"
            guess = did_you_mean(key, valid)
            message = f"{where}.{key}: unknown parameter of {name}{guess}; valid: {choices}"
            raise ConfigError(message, key=f"{where}.{key}")
        try:
            checked[key] = TypeAdapter(hints.get(key, Any), config=FINITE).validate_python(value)
        except ValidationError as err:
            msg = err.errors()[0]["msg"]
            raise ConfigError(f"{where}.{key}: {msg} (got {value!r})", f"{where}.{key}") from None
    return checked
