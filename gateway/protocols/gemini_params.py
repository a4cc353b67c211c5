"""The parameters of Gemini's ``generateContent`` (and ``streamGenerateContent``): checked, accepted, refused.

Sources, read rather than guessed: the ``google-genai`` SDK's request converters
(``models._GenerateContentParameters_to_mldev``, ``_GenerateContentConfig_to_mldev``: what it puts at
the top level and what in ``generationConfig``) and its types (``GenerationConfig``, ``ThinkingConfig``).

Unlike the OpenAI and Anthropic bodies, the parameters a policy decides on are nested
(``generationConfig.candidateCount``, ``generationConfig.thinkingConfig.thinkingBudget``), so
``generationConfig`` and ``thinkingConfig`` are declarations of their own, deny by default like the top
level: an undeclared key anywhere in them is refused, never forwarded.

Google's JSON reader takes each field in two spellings, lowerCamelCase and the proto's snake_case
(``candidate_count`` is ``candidateCount``), and the SDK relies on it (it sends ``thinkingConfig``'s
fields in snake_case). So a declared name written in snake_case is renamed to its lowerCamelCase
spelling before anything reads the body: the view, the policies and the upstream see one spelling;
a body that sets both spellings of one field is refused (which one the upstream would take is not
ours to guess). Numbers written as strings (``"candidateCount": "8"``, which Google's reader also
takes) are refused by the exact type check.

Refused, with the reason given to the client:

* ``cachedContent`` names a prompt stored upstream under the gateway's own key: the quota and the
  detector cannot read it (it would hide the prompt), and caches are shared by every client of that key;
* ``store`` / ``continuationToken`` keep or resume a generation upstream, outside the policies;
* ``serviceTier`` changes the provider's price and scheduling, which is the operator's to set;
* ``model`` in the body: the model is the one in the path (a second one could be read instead);
* a ``fileData.fileUri`` naming a file of the Files API (``files/...``, or on Google's API host): files
  are stored under the gateway's own key, so they are the provider's or another client's, never this
  client's (no route uploads one through the gateway); public URLs stay accepted;
* ``responseModalities``, ``speechConfig``, ``imageConfig``: outputs other than text (images, audio)
  carry content no policy reads or marks.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from gateway.errors import InvalidRequestError
from gateway.protocols.gemini_view import either
from gateway.protocols.params import (
    Declaration,
    UpstreamFor,
    check_fields,
    param,
)

_OBJECT = param("object")
_OBJECTS = param("array", items=param("object"))

THINKING_CONFIG = Declaration(
    checked={
        "thinkingBudget": param("integer", minimum=-1),  # -1: dynamic; 0: off (SDK ThinkingConfig)
        "includeThoughts": param("boolean"),
        "thinkingLevel": param("string"),
    },
    accepted=frozenset(),
    refused={},
)

_OUTPUT_MEDIA = "outputs other than text (images, audio) carry content no policy reads or marks."

GENERATION_CONFIG = Declaration(
    checked={
        "candidateCount": param("integer", minimum=1),
        "maxOutputTokens": param("integer", minimum=1),
        "responseLogprobs": param("boolean"),
        "logprobs": param("integer", minimum=0),
        "thinkingConfig": _OBJECT,
        "responseMimeType": param("string"),
        "responseSchema": _OBJECT,
        "responseJsonSchema": param("object", "boolean"),
        "stopSequences": param("array", items=param("string")),
    },
    accepted=frozenset(
        {
            "temperature",
            "topP",
            "topK",
            "presencePenalty",
            "frequencyPenalty",
            "seed",
            "mediaResolution",
            "enableEnhancedCivicAnswers",
        }
    ),
    refused={
        "responseModalities": _OUTPUT_MEDIA,
        "speechConfig": _OUTPUT_MEDIA,
        "imageConfig": _OUTPUT_MEDIA,
    },
)

GENERATE_CONTENT = Declaration(
    checked={
        "contents": _OBJECTS,
        "systemInstruction": _OBJECT,
        "tools": _OBJECTS,
        "toolConfig": _OBJECT,
        "safetySettings": _OBJECTS,
        "generationConfig": _OBJECT,
    },
    accepted=frozenset(),
    refused={
        "cachedContent": "it names a prompt stored upstream that the quota and the detector cannot read, "
        "and cached contents are shared by every client of the gateway's key.",
        "store": "stored generations are fetched later, on routes no policy covers.",
        "continuationToken": "it resumes a generation held upstream, outside the policies.",
        "serviceTier": "the service tier (price and scheduling) is the operator's to set.",
        "model": "the model is the one named in the path.",
    },
)

# The nested declarations, by the dotted path of the object they describe.
NESTED: Mapping[str, Declaration] = {
    "generationConfig": GENERATION_CONFIG,
    "generationConfig.thinkingConfig": THINKING_CONFIG,
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def check_generate_content(body: dict[str, Any], model: str | None, upstream_for: UpstreamFor) -> None:
    """Validate a generateContent body for ``model`` (from the path); raise InvalidRequestError naming
    the dotted parameter at fault. The operator's ``extra_parameters`` apply to top-level names."""
    if not model:
        raise InvalidRequestError(
            "The model is named in the path: /v1beta/models/{model}:generateContent.",
            param="model",
            code="missing_required_parameter",
        )
    rules = upstream_for(model)
    _check_object("", body, GENERATE_CONTENT, rules.extra_parameters)
    _check_file_uris(body)


_FILES_API = re.compile(r"^(files/|https?://generativelanguage\.googleapis\.com/)", re.IGNORECASE)


def _check_file_uris(body: dict[str, Any]) -> None:
    """Refuse a part that names a file stored upstream (see the module docstring)."""
    contents = body.get("contents") or []
    turns = [(f"contents[{i}]", c) for i, c in enumerate(contents)]
    turns.append(("systemInstruction", body.get("systemInstruction")))
    for where, content in turns:
        parts = content.get("parts") if isinstance(content, dict) else None
        for j, part in enumerate(parts if isinstance(parts, list) else ()):
            # Both spellings Google reads (parts are not renamed: see gemini_view).
            file_data = either(part, "fileData", "file_data") if isinstance(part, dict) else None
            uri = either(file_data, "fileUri", "file_uri") if isinstance(file_data, dict) else None
            if isinstance(uri, str) and _FILES_API.match(uri.strip()):
                path = f"{where}.parts[{j}].fileData.fileUri"
                raise InvalidRequestError(
                    f"The parameter '{path}' is not accepted by this gateway: it names a file stored "
                    "upstream under the gateway's key, which is not this client's; send the content inline.",
                    param=path,
                    code="unsupported_parameter",
                )


def _check_object(
    prefix: str, body: dict[str, Any], declaration: Declaration, extras: Collection[str]
) -> None:
    _one_spelling(prefix, body, declaration)
    check_fields(prefix, body, declaration, extras, _check_nested)


def _check_nested(path: str, value: Any) -> None:
    nested = NESTED.get(path)
    if nested is not None:
        _check_object(f"{path}.", value, nested, ())


def _one_spelling(prefix: str, body: dict[str, Any], declaration: Declaration) -> None:
    """Rename each declared name written in snake_case to its lowerCamelCase spelling, in place."""
    snake_names = [name for name in body if "_" in name]
    if not snake_names:
        return
    spellings = _spellings(declaration)
    for snake in snake_names:
        camel = spellings.get(snake)
        if camel is None:
            continue  # not a declared name: refused as unknown
        if camel in body:
            raise InvalidRequestError(
                f"The parameter '{prefix}{camel}' is given twice, as '{camel}' and as '{snake}'.",
                param=f"{prefix}{camel}",
                code="duplicate_parameter",
            )
        body[camel] = body.pop(snake)


def _spellings(declaration: Declaration) -> dict[str, str]:
    """snake_case spelling -> the declared lowerCamelCase name."""
    return {
        _snake(name): name for name in (*declaration.checked, *declaration.accepted, *declaration.refused)
    }
