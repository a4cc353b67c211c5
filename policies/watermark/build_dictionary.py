"""Builds ``data/variants.json``, the lexical watermark's variant dictionary.

Run ``python -m policies.watermark.build_dictionary`` after editing the lists below.

Every group is a set of surface forms that mean exactly the same thing in any
context where the group's guard allows a substitution. The sources are small,
hand-checked lists below; nothing is mined from a thesaurus, because near
synonyms ("big"/"large") change meaning in some contexts and this dictionary
must not. Classes:

* ``spelling``: American/British spelling pairs (-ize/-ise, -yze/-yse, -or/-our,
  -er/-re, doubled -ll-, a few singletons), generated with their inflections from
  hand-picked stems. Stems that double as code identifiers (initialize, color in
  CSS...) or whose pair differs in meaning (program/programme, meter/metre,
  practice/practise, check/cheque, tire/tyre) are left out on purpose.
* ``contraction``: ``do not``/``don't`` style pairs. Negations are two-way (a
  contraction is split only where the split reads as plain English, see the guards
  in ``dictionary.py``); pronoun + be/will/am merges are two-way where the
  contraction has one reading (``you're``, ``I'll``) and merge-only where it has
  two (``it's`` = it is / it has).
* ``function``: function words and fixed phrases with exact equivalents
  (toward/towards, among/amongst, for example/for instance, based on/upon...).
* ``connective``: sentence-initial connectives followed by a comma
  (Moreover,/Furthermore,/Additionally,; Nevertheless,/Nonetheless,...).
* ``compound``: hyphenated/closed spellings of the same compound (email/e-mail).
"""

from __future__ import annotations

import json
from pathlib import Path

from policies.watermark.build_near import near_groups

OUT = Path(__file__).with_name("data") / "variants.json"
VERSION = 2

IZE_STEMS = [
    "organ",
    "recogn",
    "real",
    "optim",
    "minim",
    "maxim",
    "priorit",
    "summar",
    "util",
    "emphas",
    "character",
    "special",
    "standard",
    "categor",
    "apolog",
    "critic",
    "final",
    "general",
    "memor",
    "visual",
    "stabil",
    "harmon",
    "modern",
    "mobil",
    "neutral",
    "personal",
    "rational",
    "sanit",
    "author",
    "synchron",
    "custom",
    "normal",
    "parallel",
    "container",
    "local",
    "global",
    "central",
    "decentral",
    "theor",
    "hypothes",
    "symbol",
    "scrutin",
    "initial",
    "serial",
    "sympath",
    "energ",
    "equal",
    "familiar",
    "formal",
    "ideal",
    "immun",
    "industrial",
    "institutional",
    "internal",
    "jeopard",
    "legal",
    "legitim",
    "liberal",
    "mechan",
    "metabol",
    "monet",
    "monopol",
    "natural",
    "penal",
    "polar",
    "popular",
    "privat",
    "public",
    "random",
    "reorgan",
    "revital",
    "revolution",
    "romantic",
    "sensit",
    "social",
    "steril",
    "stigmat",
    "subsid",
    "synthes",
    "systemat",
    "trivial",
    "union",
    "urban",
    "vapor",
    "verbal",
    "victim",
    "vocal",
    "western",
    "capital",
    "civil",
    "colon",
    "commercial",
    "compartmental",
    "computer",
    "conceptual",
    "contextual",
    "criminal",
    "crystall",
    "demon",
    "democrat",
    "destabil",
    "digit",
    "dramat",
    "econom",
    "empath",
    "epitom",
    "external",
    "glamor",
    "hospital",
    "human",
    "hybrid",
    "immobil",
    "individual",
    "item",
    "magnet",
    "marginal",
    "motor",
    "national",
    "operational",
    "plural",
    "regular",
    "strateg",
    "conceptual",
    "modular",
    "fertil",
    "fossil",
    "italic",
    "oxid",
    "pasteur",
    "patron",
    "pulver",
    "tranquil",
    "tyrann",
    "deodor",
    "desensit",
    "agon",
    "antagon",
    "anglic",
    "galvan",
    "hypnot",
    "mesmer",
    "moral",
    "orient",
]

YZE_STEMS = ["anal", "paral", "catal", "hydrol", "electrol", "dial"]

# -ize suffixes and their -ise twins (the stem is shared).
IZE_SUFFIXES = [
    ("ize", "ise"),
    ("izes", "ises"),
    ("ized", "ised"),
    ("izing", "ising"),
    ("ization", "isation"),
    ("izations", "isations"),
    ("izational", "isational"),
    ("izer", "iser"),
    ("izers", "isers"),
]
YZE_SUFFIXES = [("yze", "yse"), ("yzes", "yses"), ("yzed", "ysed"), ("yzing", "ysing"), ("yzer", "yser")]

OR_STEMS = [
    "behavi",
    "col",
    "fav",
    "flav",
    "hon",
    "hum",
    "lab",
    "neighb",
    "rum",
    "vap",
    "endeav",
    "savi",
    "arm",
    "vig",
    "harb",
    "val",
    "clam",
    "parl",
    "cand",
    "splend",
    "ard",
    "demean",
    "misdemean",
    "ferv",
    "od",
    "tum",
]
OR_SUFFIXES = [
    ("or", "our"),
    ("ors", "ours"),
    ("ored", "oured"),
    ("oring", "ouring"),
    ("oral", "oural"),
    ("orally", "ourally"),
    ("orful", "ourful"),
    ("orless", "ourless"),
    ("orite", "ourite"),
    ("orites", "ourites"),
    ("orable", "ourable"),
    ("orably", "ourably"),
    ("orhood", "ourhood"),
    ("orhoods", "ourhoods"),
    ("orly", "ourly"),
]

ER_RE = [
    "center:centre",
    "centers:centres",
    "centered:centred",
    "centering:centring",
    "fiber:fibre",
    "fibers:fibres",
    "liter:litre",
    "liters:litres",
    "theater:theatre",
    "theaters:theatres",
    "caliber:calibre",
    "somber:sombre",
    "luster:lustre",
    "specter:spectre",
    "saber:sabre",
    "meager:meagre",
]

LL_PAIRS = [
    "traveled:travelled",
    "traveling:travelling",
    "traveler:traveller",
    "travelers:travellers",
    "canceled:cancelled",
    "canceling:cancelling",
    "labeled:labelled",
    "labeling:labelling",
    "modeled:modelled",
    "modeling:modelling",
    "leveled:levelled",
    "leveling:levelling",
    "fueled:fuelled",
    "fueling:fuelling",
    "signaled:signalled",
    "signaling:signalling",
    "totaled:totalled",
    "channeled:channelled",
    "channeling:channelling",
    "tunneled:tunnelled",
    "marveled:marvelled",
    "marvelous:marvellous",
    "counselor:counsellor",
    "counselors:counsellors",
    "jewelry:jewellery",
    "jeweler:jeweller",
    "woolen:woollen",
    "quarreled:quarrelled",
    "dueling:duelling",
]

SINGLE_SPELLING = [
    "defense:defence",
    "defenses:defences",
    "offense:offence",
    "offenses:offences",
    "pretense:pretence",
    "judgment:judgement",
    "judgments:judgements",
    "acknowledgment:acknowledgement",
    "acknowledgments:acknowledgements",
    "aging:ageing",
    "fulfill:fulfil",
    "fulfills:fulfils",
    "fulfillment:fulfilment",
    "enrollment:enrolment",
    "skillful:skilful",
    "skillfully:skilfully",
    "willful:wilful",
    "installment:instalment",
    "installments:instalments",
    "plow:plough",
    "mold:mould",
    "molds:moulds",
    "moldy:mouldy",
    "skeptic:sceptic",
    "skeptics:sceptics",
    "skeptical:sceptical",
    "skepticism:scepticism",
    "maneuver:manoeuvre",
    "maneuvers:manoeuvres",
    "pediatric:paediatric",
    "archeology:archaeology",
    "cozy:cosy",
    "mustache:moustache",
    "pajamas:pyjamas",
    "aluminum:aluminium",
    "artifact:artefact",
    "artifacts:artefacts",
    "sulfur:sulphur",
    "learned:learnt",
    "spelled:spelt",
    "burned:burnt",
    "dreamed:dreamt",
    "leaped:leapt",
    "spilled:spilt",
    "spoiled:spoilt",
    "smelled:smelt",
    "catalog:catalogue",
    "catalogs:catalogues",
]

# Negations: (auxiliary, contracted). Merge "X not" -> "Xn't"; split "Xn't" -> "X not".
NEGATIONS = [
    ("do", "don't"),
    ("does", "doesn't"),
    ("did", "didn't"),
    ("is", "isn't"),
    ("are", "aren't"),
    ("was", "wasn't"),
    ("were", "weren't"),
    ("has", "hasn't"),
    ("have", "haven't"),
    ("had", "hadn't"),
    ("could", "couldn't"),
    ("would", "wouldn't"),
    ("should", "shouldn't"),
    ("must", "mustn't"),
]
# Pronoun + verb: (pronoun, verb, contracted, split allowed?)
PRONOUNS = [
    ("i", "am", "i'm", True),
    ("you", "are", "you're", True),
    ("we", "are", "we're", True),
    ("they", "are", "they're", True),
    ("i", "will", "i'll", True),
    ("you", "will", "you'll", True),
    ("we", "will", "we'll", True),
    ("they", "will", "they'll", True),
    ("it", "will", "it'll", True),
    ("it", "is", "it's", False),
    ("that", "is", "that's", False),
    ("there", "is", "there's", False),
    ("what", "is", "what's", False),
    ("here", "is", "here's", False),
    ("he", "is", "he's", False),
    ("she", "is", "she's", False),
    ("who", "is", "who's", False),
    ("where", "is", "where's", False),
    ("he", "will", "he'll", True),
    ("she", "will", "she'll", True),
    # "'d" may be "would" or "had": merged freely, split only before a bare verb (see dictionary.WOULD_NEXT)
    ("i", "would", "i'd", False),
    ("you", "would", "you'd", False),
    ("we", "would", "we'd", False),
    ("they", "would", "they'd", False),
    ("he", "would", "he'd", False),
    ("she", "would", "she'd", False),
]
# Contractions that are split but never formed: "let us" may mean "allow us", "we have" may be possession.
SPLIT_ONLY = [
    ("let", "us", "let's"),
    ("i", "have", "i've"),
    ("you", "have", "you've"),
    ("we", "have", "we've"),
    ("they", "have", "they've"),
]

FUNCTION_GROUPS = [
    ["toward", "towards"],
    ["afterward", "afterwards"],
    ["among", "amongst"],
    ["amid", "amidst"],
    ["everyone", "everybody"],
    ["anyone", "anybody"],
    ["someone", "somebody"],
    ["perhaps", "maybe"],
]
# Words with a guard on the previous word: (forms, allowed previous words).
PREV_GUARDED = [
    (["example", "instance"], ["for"]),
    (
        ["on", "upon"],
        [
            "based",
            "depend",
            "depends",
            "depended",
            "depending",
            "dependent",
            "rely",
            "relies",
            "relied",
            "relying",
            "reliant",
            "focus",
            "focuses",
            "focused",
            "focusing",
            "insist",
            "insists",
            "insisted",
            "embark",
            "embarked",
            "elaborate",
            "elaborated",
            "reflect",
            "reflects",
            "reflected",
            "reflecting",
            "comment",
            "comments",
            "commented",
            "commenting",
            "dwell",
            "dwells",
            "dwelt",
            "dwelling",
            "impose",
            "imposes",
            "imposed",
            "imposing",
            "agreed",
            "decide",
            "decides",
            "decided",
            "deciding",
            "capitalize",
            "capitalizes",
            "capitalized",
            "capitalizing",
            "settle",
            "settled",
        ],
    ),
    (["to", "with"], ["compared"]),
    (["result", "consequence"], ["as a"]),
]
CONNECTIVES = [
    ["moreover", "furthermore", "additionally"],
    ["nevertheless", "nonetheless"],
    ["similarly", "likewise"],
    ["therefore", "thus"],
    ["first", "firstly"],
    ["second", "secondly"],
    ["third", "thirdly"],
]
# "In short," / "In brief," (sentence-initial after "in", before a comma).
CONNECTIVE_AFTER_IN = [["short", "brief"]]
COMPOUNDS = [
    ["email", "e-mail"],
    ["emails", "e-mails"],
    ["reuse", "re-use"],
    ["reused", "re-used"],
    ["reusing", "re-using"],
    ["reusable", "re-usable"],
    ["nonzero", "non-zero"],
    ["nonempty", "non-empty"],
    ["nonnegative", "non-negative"],
    ["preexisting", "pre-existing"],
    ["preprocessing", "pre-processing"],
    ["pretrained", "pre-trained"],
    ["multithreaded", "multi-threaded"],
    ["subdirectory", "sub-directory"],
    ["subdirectories", "sub-directories"],
    ["cooperate", "co-operate"],
    ["cooperation", "co-operation"],
    ["cooperative", "co-operative"],
    ["coordinate", "co-ordinate"],
    ["coordination", "co-ordination"],
    ["percent", "per cent"],
    # added in dictionary version 2 (ids are new groups, so text marked before is detected as before)
    ["filename", "file name"],
    ["filenames", "file names"],
    ["username", "user name"],
    ["usernames", "user names"],
    ["codebase", "code base"],
    ["codebases", "code bases"],
    ["website", "web site"],
    ["websites", "web sites"],
    ["webpage", "web page"],
    ["webpages", "web pages"],
    ["lifecycle", "life cycle"],
    ["lifecycles", "life cycles"],
    ["healthcare", "health care"],
    ["nontrivial", "non-trivial"],
    ["nonlinear", "non-linear"],
    ["nonblocking", "non-blocking"],
    ["nonstandard", "non-standard"],
    ["nonprofit", "non-profit"],
    ["hyperparameter", "hyper-parameter"],
    ["hyperparameters", "hyper-parameters"],
    ["pretraining", "pre-training"],
    ["finetuning", "fine-tuning", "fine tuning"],
    ["finetuned", "fine-tuned"],
    ["finetune", "fine-tune"],
    ["tradeoff", "trade-off"],
    ["tradeoffs", "trade-offs"],
    ["coworker", "co-worker"],
    ["coworkers", "co-workers"],
    ["cofounder", "co-founder"],
    ["ecommerce", "e-commerce"],
    ["multiline", "multi-line"],
    ["predefined", "pre-defined"],
    ["prebuilt", "pre-built"],
    ["rerun", "re-run"],
    ["reopen", "re-open"],
    ["microservice", "micro-service"],
    ["microservices", "micro-services"],
    ["antipattern", "anti-pattern"],
    ["antipatterns", "anti-patterns"],
]
# Closed compounds that are split but never formed: "data set" may be "the data set by the user".
SPLIT_ONLY_COMPOUNDS = [["dataset", "data set"], ["datasets", "data sets"], ["anymore", "any more"]]


def _pairs(stems: list[str], suffixes: list[tuple[str, str]]) -> list[list[str]]:
    return [[stem + us, stem + uk] for stem in stems for us, uk in suffixes]


def build() -> dict:
    groups: list[dict] = []

    def add(cls: str, forms: list[str], **extra: object) -> None:
        groups.append({"class": cls, "forms": forms, **extra})

    seen: set[str] = set()
    spelling = (
        _pairs(sorted(set(IZE_STEMS)), IZE_SUFFIXES)
        + _pairs(YZE_STEMS, YZE_SUFFIXES)
        + _pairs(OR_STEMS, OR_SUFFIXES)
        + [pair.split(":") for pair in ER_RE + LL_PAIRS + SINGLE_SPELLING]
    )
    for forms in spelling:
        if forms[0] in seen or forms[1] in seen or forms[0] == forms[1]:
            continue
        seen.update(forms)
        add("spelling", forms)
    for aux, contracted in NEGATIONS:
        add("contraction", [f"{aux} not", contracted], kind="negation")
    add("contraction", ["will not", "won't"], kind="negation", merge=False)
    add("contraction", ["cannot", "can't"], kind="negation_word")
    for pronoun, verb, contracted, split in PRONOUNS:
        add("contraction", [f"{pronoun} {verb}", contracted], kind="pronoun", split=split)
    for pronoun, verb, contracted in SPLIT_ONLY:
        add("contraction", [f"{pronoun} {verb}", contracted], kind="pronoun", merge=False)
    for forms in FUNCTION_GROUPS:
        add("function", forms)
    add("function", ["while", "whilst"], kind="while")
    add("function", ["although", "though"], kind="although")
    # one way only: "despite" -> "in spite of" (the three-word form is never read back as a unit)
    add("function", ["despite", "in spite of"])
    for forms, prev in PREV_GUARDED:
        add("function", forms, prev=prev)
    for forms in CONNECTIVES:
        add("connective", forms, kind="sentence_initial")
    for forms in CONNECTIVE_AFTER_IN:
        add("connective", forms, kind="sentence_initial", prev=["in"])
    for forms in COMPOUNDS:
        add("compound", forms)
    for forms in SPLIT_ONLY_COMPOUNDS:
        add("compound", forms, merge=False)
    ids = [group["forms"][0] for group in groups]
    assert len(set(ids)) == len(ids), "group ids (first forms) must be unique"
    for group in groups:
        # The id is hashed into every mark: it must never change for a given group.
        group["id"] = group["forms"][0]
    near = near_groups()
    ids += [group["id"] for group in near]
    assert len(set(ids)) == len(ids), "near group ids must be unique"
    for strength_groups in (groups, _near_dictionary(groups, near)):
        forms = [f for g in strength_groups for f in g["forms"] if f.count(" ") <= 1 and not g.get("prev")]
        duplicates = {f for f in forms if forms.count(f) > 1}
        assert not duplicates, f"forms in two groups: {sorted(duplicates)}"
    return {"version": VERSION, "groups": groups + near}


def _near_dictionary(exact: list[dict], near: list[dict]) -> list[dict]:
    superseded = {i for g in near for i in g.get("supersedes", ())}
    assert superseded <= {g["id"] for g in exact}, "a near group supersedes an unknown group"
    return [g for g in exact if g["id"] not in superseded] + near


def main() -> None:
    data = build()
    OUT.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(data['groups'])} groups to {OUT}")


if __name__ == "__main__":
    main()
