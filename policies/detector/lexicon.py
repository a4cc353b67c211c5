"""Multilingual elicitation phrases: reasoning, grading and tool-call demands in languages other than English.

The English scorers (:mod:`cot`, :mod:`agentic`, the classifier's rubric vocabulary) read concepts
with regexes; these lists carry the same concepts, curated per language (zh, ja, ko, fr, es, pt,
de, it, ru), as short lowercase phrases in the three strengths of :mod:`cot`. Each phrase names
a concept (internal reasoning, step by step, explain your reasoning, every intermediate step,
before the answer, a grading rubric, a 1-10 scale, the reason for each tool call), never a whole
template sentence, so rewordings that keep the concept still match.

Matching is substring matching on the lowercased text, behind an anchor per phrase (its longest
word, or its first character in a script without spaces): a text only tests the phrases whose
anchor is one of its words or characters (set intersections in C). English prompts, most of the
traffic, cost one intersection with the words the fingerprint already split.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from policies.detector.cot import WEAK_ONLY_CAP

Kind = Literal["cot", "rubric", "agentic"]

STRONG: Final = 0.85
MEDIUM: Final = 0.45
WEAK: Final = 0.25

# language -> kind -> strength -> phrases ("|" separates phrases on one line)
_PHRASES: dict[str, dict[Kind, dict[float, str]]] = {
    "zh": {
        "cot": {
            STRONG: "内部推理|完整推理|完整的推理|推理过程|推理過程|思维链|思維鏈|思考过程|思考過程|"
            "中间步骤|"
            "全部推理|详细推理|詳細推理|内心独白",
            MEDIUM: "解释你的推理|说明你的推理|解释推理|展示你的解题过程|写出解题过程|解题步骤|每一步|"
            "每个步骤|"
            "逐步解释|在给出答案之前|在回答之前|最终答案之前|给出答案前",
            WEAK: "一步一步|一步步|逐步|仔细思考|认真思考",
        },
        "rubric": {
            STRONG: "评分标准|評分標準|评分细则|评分量表",
            MEDIUM: "评分|評分|打分|给出分数|评估这个回答|评价以下回答|评估以下回答|1到10分|1-10分|十分制",
        },
        "agentic": {
            STRONG: "每次调用工具|每个工具调用|每一次工具调用|调用工具之前|调用每个工具|每个函数调用|"
            "每一步操作的理由",
            MEDIUM: "规划每一步|制定计划|先规划",
        },
    },
    "ja": {
        "cot": {
            STRONG: "内部推論|内部の推論|思考過程|推論過程|推論の過程|思考の連鎖|完全な推論|すべての推論|"
            "中間ステップ|思考プロセス",
            MEDIUM: "推論を説明|理由を説明|考え方を説明|途中式|解き方を示|各ステップを説明|答えの前に|"
            "回答の前に|"
            "最終的な答えの前",
            WEAK: "ステップバイステップ|段階的に|一歩ずつ|順を追って|よく考えて",
        },
        "rubric": {
            STRONG: "採点基準|評価基準|ルーブリック",
            MEDIUM: "採点して|採点する|点数をつけ|スコアを付け|スコアをつけ|1から10|10段階",
        },
        "agentic": {
            STRONG: "ツールを呼び出す前に|各ツール呼び出し|ツール呼び出しごと|各アクションの理由|"
            "ツールを使う理由|"
            "関数呼び出しの前に",
            MEDIUM: "計画を立て",
        },
    },
    "ko": {
        "cot": {
            STRONG: "내부 추론|추론 과정|사고 과정|사고의 연쇄|모든 중간 단계",
            MEDIUM: "추론을 설명|각 단계를 설명|풀이 과정|답하기 전에",
            WEAK: "단계별로|차근차근",
        },
        "rubric": {STRONG: "채점 기준|평가 기준", MEDIUM: "점수를 매겨|1점에서 10점"},
        "agentic": {STRONG: "각 도구 호출|도구를 호출하기 전에"},
    },
    "fr": {
        "cot": {
            STRONG: "raisonnement interne|tout ton raisonnement|tout votre raisonnement|"
            "raisonnement complet|"
            "chaîne de pensée|chaine de pensee|processus de réflexion|processus de reflexion|"
            "processus de pensée|chaque étape intermédiaire|étapes intermédiaires|etapes intermediaires|"
            "raisonnement détaillé|monologue intérieur",
            MEDIUM: "explique ton raisonnement|expliquez votre raisonnement|explique ta démarche|"
            "expliquez votre démarche|montre ton travail|montrez votre travail|explique chaque étape|"
            "expliquez chaque étape|avant de donner la réponse|avant la réponse finale|avant de répondre|"
            "justifie chaque|justifiez chaque",
            WEAK: "étape par étape|etape par etape|réfléchis bien|réfléchissez bien|pas à pas",
        },
        "rubric": {
            STRONG: "grille d'évaluation|grille d'evaluation|critères d'évaluation|criteres d'evaluation|"
            "barème",
            MEDIUM: "note de 1 à 10|note sur 10|sur une échelle de|évalue la réponse|évaluez la réponse|"
            "attribue une note|attribuez une note|note la réponse",
        },
        "agentic": {
            STRONG: "chaque appel d'outil|chaque appel de fonction|avant chaque appel|"
            "avant d'appeler un outil|"
            "justifie chaque action|justifiez chaque action|chaque outil utilisé",
            MEDIUM: "planifie chaque|planifiez chaque|établis un plan",
        },
    },
    "es": {
        "cot": {
            STRONG: "razonamiento interno|todo tu razonamiento|todo su razonamiento|razonamiento completo|"
            "cadena de pensamiento|proceso de pensamiento|proceso de razonamiento|cada paso intermedio|"
            "pasos intermedios|razonamiento detallado|monólogo interior",
            MEDIUM: "explica tu razonamiento|explique su razonamiento|muestra tu trabajo|"
            "muestra todos los pasos|"
            "explica cada paso|antes de dar la respuesta|antes de la respuesta final|antes de responder|"
            "justifica cada",
            WEAK: "paso a paso|piensa bien|piensa con cuidado",
        },
        "rubric": {
            STRONG: "rúbrica|criterios de evaluación|criterios de evaluacion",
            MEDIUM: "puntúa la respuesta|puntuación del 1 al 10|califica la respuesta|en una escala de|"
            "evalúa la respuesta|calificación de 1 a 10|del 1 al 10",
        },
        "agentic": {
            STRONG: "cada llamada a herramienta|cada llamada de herramienta|cada llamada a una herramienta|"
            "antes de cada llamada|antes de llamar a una herramienta|justifica cada acción",
            MEDIUM: "planifica cada|elabora un plan",
        },
    },
    "pt": {
        "cot": {
            STRONG: "raciocínio interno|raciocinio interno|todo o seu raciocínio|todo o teu raciocínio|"
            "raciocínio completo|cadeia de pensamento|processo de pensamento|processo de raciocínio|"
            "cada passo intermediário|cada etapa intermediária|passos intermediários",
            MEDIUM: "explique seu raciocínio|explique o seu raciocínio|explica o teu raciocínio|"
            "mostre seu trabalho|"
            "mostre todos os passos|explique cada passo|explique cada etapa|antes de dar a resposta|"
            "antes da resposta final|justifique cada",
            WEAK: "passo a passo|pense com cuidado",
        },
        "rubric": {
            STRONG: "rubrica de avaliação|critérios de avaliação|criterios de avaliacao",
            MEDIUM: "dê uma nota|nota de 1 a 10|avalie a resposta|numa escala de|em uma escala de",
        },
        "agentic": {
            STRONG: "cada chamada de ferramenta|antes de cada chamada|antes de chamar uma ferramenta|"
            "justifique cada ação",
            MEDIUM: "planeje cada|elabore um plano",
        },
    },
    "de": {
        "cot": {
            STRONG: "internes denken|interne überlegung|internen überlegungen|vollständigen gedankengang|"
            "vollständige argumentation|gedankenkette|denkprozess|jeden zwischenschritt|"
            "alle zwischenschritte|"
            "inneren monolog",
            MEDIUM: "gedankengang|erkläre deine überlegungen|erläutere deine begründung|"
            "zeige deinen rechenweg|"
            "rechenweg|lösungsweg|zeige deine arbeit|erkläre jeden schritt|erklären sie jeden schritt|"
            "bevor du die antwort gibst|vor der endgültigen antwort|begründe jeden",
            WEAK: "schritt für schritt|schritt fur schritt|denke sorgfältig|denk gründlich",
        },
        "rubric": {
            STRONG: "bewertungsrubrik|bewertungskriterien|bewertungsschema",
            MEDIUM: "bewerte die antwort|bewerten sie die antwort|auf einer skala von|punkte von 1 bis 10|"
            "von 1 bis 10",
        },
        "agentic": {
            STRONG: "jeden werkzeugaufruf|jeden tool-aufruf|vor jedem werkzeugaufruf|vor jedem tool-aufruf|"
            "vor jedem aufruf|begründe jede aktion|jeden funktionsaufruf",
            MEDIUM: "plane jeden|erstelle einen plan",
        },
    },
    "it": {
        "cot": {
            STRONG: "ragionamento interno|tutto il tuo ragionamento|catena di pensiero|"
            "processo di ragionamento|"
            "ogni passaggio intermedio",
            MEDIUM: "spiega il tuo ragionamento|spiega ogni passaggio|mostra il tuo lavoro|"
            "prima di dare la risposta",
            WEAK: "passo dopo passo|passo passo",
        },
        "rubric": {
            STRONG: "griglia di valutazione|criteri di valutazione",
            MEDIUM: "da 1 a 10|valuta la risposta",
        },
        "agentic": {STRONG: "ogni chiamata di strumento|prima di ogni chiamata|giustifica ogni azione"},
    },
    "ru": {
        "cot": {
            STRONG: "внутренние рассуждения|внутреннее рассуждение|внутренний монолог|полное рассуждение|"
            "полные рассуждения|все свои рассуждения|все рассуждения|цепочку рассуждений|"
            "цепочка рассуждений|"
            "цепочку мыслей|ход мыслей|ход рассуждений|каждый промежуточный шаг|все промежуточные шаги|"
            "промежуточные шаги",
            MEDIUM: "объясни своё рассуждение|объясни свое рассуждение|объясни свои рассуждения|"
            "объясните ваше рассуждение|объясните свои рассуждения|покажи ход решения|покажи решение|"
            "объясни каждый шаг|объясните каждый шаг|прежде чем дать ответ|перед окончательным ответом|"
            "перед ответом|обоснуй каждый",
            WEAK: "шаг за шагом|пошагово|подумай хорошо|хорошенько подумай",
        },
        "rubric": {
            STRONG: "критерии оценки|рубрика оценки|рубрику оценки",
            MEDIUM: "оцени ответ|оцените ответ|по шкале от|поставь оценку|поставьте оценку|от 1 до 10",
        },
        "agentic": {
            STRONG: "каждый вызов инструмента|перед каждым вызовом|перед вызовом инструмента|"
            "обоснуй каждое действие|"
            "каждого вызова инструмента",
            MEDIUM: "спланируй каждый|составь план",
        },
    },
}

LANGUAGES: Final = tuple(_PHRASES)
Entry = tuple[str, Kind, float]  # (phrase, kind, strength)


def _unspaced(phrase: str) -> bool:
    """A phrase of a script written without spaces between words (Chinese, Japanese)."""
    return not phrase.isascii() and " " not in phrase and not any("\u0400" <= c <= "\u04ff" for c in phrase)


def _anchor(phrase: str) -> str:
    """The phrase's longest word (letters only), or its first character in a script without spaces."""
    if _unspaced(phrase):
        return phrase[0]
    return max(_LETTERS.findall(phrase), key=len)


_LETTERS = re.compile(r"[^\W\d_]+")


def _build() -> tuple[dict[str, list[Entry]], dict[str, list[Entry]]]:
    by_word: dict[str, list[Entry]] = {}
    by_char: dict[str, list[Entry]] = {}
    for kinds in _PHRASES.values():
        for kind, strengths in kinds.items():
            for strength, joined in strengths.items():
                for phrase in joined.split("|"):
                    entry = (phrase, kind, strength)
                    table = by_char if _unspaced(phrase) else by_word
                    table.setdefault(_anchor(phrase), []).append(entry)
    return by_word, by_char


_BY_WORD, _BY_CHAR = _build()
_WORD_KEYS = frozenset(_BY_WORD)
_ASCII_KEYS = frozenset(word.encode() for word in _BY_WORD if word.isascii())
_CHAR_KEYS = frozenset(_BY_CHAR)


def phrases() -> list[Entry]:
    """Every phrase with its kind and strength (for tests and the documentation)."""
    return [entry for table in (_BY_WORD, _BY_CHAR) for entries in table.values() for entry in entries]


# ASCII bytes other than a-z become spaces: splitting then gives the text's words in one C pass.
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))


def lexicon_scores(lowered: str, words: list[bytes] | None = None) -> tuple[float, float, float]:
    """(cot, rubric, agentic) noisy-OR scores of the phrases found in ``lowered`` (lowercased text).

    ``words``: an ASCII text's lowercase words as bytes, when the caller has them (the
    fingerprint's content words); otherwise they are split here. Phrases made only of weak
    chain-of-thought words score at most :data:`WEAK_ONLY_CAP`.
    """
    if not lowered:
        return 0.0, 0.0, 0.0
    candidates: list[Entry] = []
    if lowered.isascii():
        if words is None:
            words = lowered.encode().translate(_LETTERS_ONLY).split()
        present = _ASCII_KEYS.intersection(words)
        if not present:
            return 0.0, 0.0, 0.0
        for key in present:
            candidates.extend(_BY_WORD[key.decode()])
    else:
        for anchor in _WORD_KEYS.intersection(_LETTERS.findall(lowered)):
            candidates.extend(_BY_WORD[anchor])
        for char in _CHAR_KEYS.intersection(lowered):
            candidates.extend(_BY_CHAR[char])
    miss = {"cot": 1.0, "rubric": 1.0, "agentic": 1.0}
    strongest_cot = 0.0
    for phrase, kind, strength in candidates:
        if phrase in lowered:
            miss[kind] *= 1.0 - strength
            if kind == "cot" and strength > strongest_cot:
                strongest_cot = strength
    cot = 1.0 - miss["cot"]
    if strongest_cot <= WEAK:
        cot = min(cot, WEAK_ONLY_CAP)
    return cot, 1.0 - miss["rubric"], 1.0 - miss["agentic"]
