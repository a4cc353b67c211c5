"""The near-synonym groups of the lexical watermark (strength ``near``), curated by hand.

Used by ``python -m policies.watermark.build_dictionary``; documented in
``docs/watermark.md`` ("Strength near"). Every group was written for this file
from the author's knowledge of English usage (no thesaurus or model was
mined) and kept only where each form can replace the others in every context
its guards allow, with the same meaning and grammar; what remains is a change
of register or nuance (``usually``/``typically``), which is the documented
quality cost of this strength. Words that are also technical terms in the
texts the gateway serves (``primary key``, ``large language model``, ``big
O``, ``select``, ``type``) or head common idioms the one-word look-ahead
cannot see (``big deal``, ``on the whole``, ``more often than not``) were left
out or guarded. The marker decides a word when it is complete, before the next
word arrives, so every guard looks backwards: the previous word (``after``,
``not_after``), an article before it (``article``: after a/an only forms with
the same kind of first letter), the start of a sentence and the comma after it
(``sentence_initial``), or sentence-final punctuation (``clause_final``).
``oneway`` groups are rewritten only from their first form (the others do not
always mean the same), and their other forms are never scored.

Each entry: forms (the first is the group's name), then options.
"""

from __future__ import annotations

from typing import Any

ADVERBS: list[tuple[list[str], dict[str, Any]]] = [
    (["usually", "typically"], {}),
    (["often", "frequently"], {"not_after": ["so", "every", "more"]}),  # every so often, more often than not
    (["rarely", "seldom"], {}),
    (["sometimes", "occasionally"], {}),
    (["especially", "particularly"], {}),
    (["mainly", "primarily", "chiefly"], {}),
    (["mostly", "largely"], {}),
    (["completely", "entirely"], {}),
    (["exactly", "precisely"], {"not_after": ["not"]}),  # "not exactly" is an understatement
    (["basically", "essentially"], {}),
    (["eventually", "ultimately"], {}),
    (["certainly", "definitely"], {}),
    (["properly", "correctly"], {}),
    (["considerably", "substantially"], {}),
    (["slightly", "somewhat"], {}),
    (["anyway", "anyhow"], {}),
    (["probably", "likely"], {"oneway": True}),  # "likely to" has no "probably to"
    (["nearly", "almost"], {"oneway": True, "not_after": ["not"]}),  # "almost no one" / "not nearly"
    (["approximately", "roughly"], {"oneway": True}),  # "handled roughly" is not "approximately"
    (["soon", "shortly"], {"not_after": ["as", "too", "so", "how", "sooner"]}),  # as soon as, too soon
]
ADJECTIVES: list[tuple[list[str], dict[str, Any]]] = [
    (["huge", "enormous"], {}),
    (["useful", "helpful"], {}),
    (["expensive", "costly"], {}),
    (["reliable", "dependable"], {}),
    (["crucial", "vital"], {}),
    (["rare", "uncommon"], {}),
    (["appropriate", "suitable"], {"not_after": ["to"]}),  # "to appropriate" is the verb
    (["additional", "extra"], {"oneway": True}),  # "extra careful" is an adverb
    (["complicated", "complex"], {"oneway": True}),  # "a complex" is a noun
    (["numerous", "many"], {"oneway": True}),
]
VERBS: list[tuple[list[str], dict[str, Any]]] = [
    (["begin", "start"], {"oneway": True}),  # "start the server" is not "begin the server"
    (["begins", "starts"], {"oneway": True}),
    (["began", "started"], {"oneway": True}),
    (["buy", "purchase"], {"not_after": ["a", "good", "the"]}),
    (["bought", "purchased"], {}),
    (["assist", "help"], {"oneway": True}),
    (["assists", "helps"], {"oneway": True}),
    (["assisted", "helped"], {"oneway": True}),
    (["assisting", "helping"], {"oneway": True}),
    (["demonstrate", "show"], {"oneway": True}),
    (["demonstrates", "shows"], {"oneway": True}),
    (["obtain", "get"], {"oneway": True}),
    (["obtains", "gets"], {"oneway": True}),
    (["require", "need"], {"oneway": True}),
    (["requires", "needs"], {"oneway": True}),
    (["modify", "change"], {"oneway": True}),
    (["modifies", "changes"], {"oneway": True}),
    (["modified", "changed"], {"oneway": True}),
    (["modifying", "changing"], {"oneway": True}),
    (["verify", "check"], {"oneway": True}),
    (["verifies", "checks"], {"oneway": True}),
    (["verified", "checked"], {"oneway": True}),
    (["verifying", "checking"], {"oneway": True}),
]
_DETERMINERS = ["what", "this", "that", "which", "any", "some", "every", "each", "one"]
PHRASES: list[tuple[list[str], dict[str, Any]]] = [
    (["sure", "certain"], {"after": ["make", "makes", "made", "making", "be"]}),
    (["kind", "sort"], {"after": _DETERMINERS}),  # "this kind of", not "be kind"
    (["kinds", "sorts"], {"after": ["what", "these", "those", "all", "different", "many", "other"]}),
    (["noting", "mentioning"], {"after": ["worth"]}),
    (
        ["if", "whether"],
        {
            "oneway": True,  # "whether or not" has no "if or not"
            "after": ["check", "checks", "checked", "checking", "see", "know", "ask", "asks", "asked",
                      "determine", "determines", "wonder", "decide", "test", "tests", "verify"],
        },
    ),
    (["too", "as well"], {"oneway": True, "kind": "clause_final"}),  # "me too." / "me as well."
    (
        ["specified", "given", "provided", "supplied"],  # participles after be/if: "if not given"
        {"after": ["is", "are", "be", "been", "was", "were", "not", "if", "unless", "when"]},
    ),
    (["but", "yet"], {"oneway": True, "kind": "after_comma"}),  # ", but" joins clauses; "yet" may be "still"
]  # fmt: skip
# Sentence-initial connectives before a comma; some supersede an exact group (same words, more forms).
CONNECTIVES: list[tuple[list[str], dict[str, Any]]] = [
    (["moreover", "furthermore", "additionally", "also"], {"supersedes": ["moreover"]}),
    (["therefore", "thus", "consequently", "hence"], {"supersedes": ["therefore"]}),
    (["nevertheless", "nonetheless", "still"], {"supersedes": ["nevertheless"]}),
    (["finally", "lastly"], {}),
    (["specifically", "in particular"], {"oneway": True}),
    (["however", "that said"], {"oneway": True}),
    (["next", "then"], {}),
]
# Sentence-initial imperative before a word (not a comma): "Note that ..." / "Notice that ...".
SENTENCE_VERBS: list[tuple[list[str], dict[str, Any]]] = [
    (["note", "notice"], {}),
]
CONNECTIVES_AFTER_IN: list[tuple[list[str], dict[str, Any]]] = [
    (["short", "brief", "summary", "sum"], {"supersedes": ["short"]}),  # In short, / In summary,
]


def near_groups() -> list[dict[str, Any]]:
    """The near groups as dictionary entries (``strength: near``; ids prefixed ``near:``)."""
    out: list[dict[str, Any]] = []
    for family, entries in (
        ("adverb", ADVERBS),
        ("adjective", ADJECTIVES),
        ("verb", VERBS),
        ("phrase", PHRASES),
    ):
        for forms, options in entries:
            out.append({"class": "near", "family": family, "forms": forms, "article": True, **options})
    for forms, options in CONNECTIVES:
        out.append(
            {"class": "near", "family": "connective", "forms": forms, "kind": "sentence_initial", **options}
        )
    for forms, options in SENTENCE_VERBS:
        group = {"class": "near", "family": "connective", "forms": forms, "kind": "sentence_initial_word"}
        out.append({**group, **options})
    for forms, options in CONNECTIVES_AFTER_IN:
        out.append(
            {
                "class": "near",
                "family": "connective",
                "forms": forms,
                "kind": "sentence_initial",
                "prev": ["in"],
                **options,
            }
        )
    for group in out:
        group["strength"] = "near"
        group["id"] = "near:" + group["forms"][0]
    return out
