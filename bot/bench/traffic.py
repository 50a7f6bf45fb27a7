"""What ``atiende bench pipeline`` sends: greetings (the plumbing figure) or realistic traffic.

Realistic traffic mixes the labelled questions of every question set that ships (the
demo's and the other businesses' in ``knowledge/evalsets``): about 70% questions for the
knowledge base, 20% greetings and thanks, 10% requests for a person (to buy, for one's
own records, complaints). Each message is a variation of a set's text (a filler word
before it, an emoji or "porfa" after it, a typo, upper or lower case), so thousands of
messages are thousands of different texts and no cache answers them for free.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Protocol

import yaml

from bot.bench.evalsets import load_set, shipped_sets

GREETINGS = ["hola", "buenas tardes", "gracias!!", "holaa qué tal", "tengo una duda", "hi"]
_PREFIXES = ["", "", "oye ", "hola ", "buenas, ", "disculpa ", "oiga ", "una pregunta: "]
_SUFFIXES = ["", "", " porfa", " 🙏", " gracias", "??", " !!", " 😅", " plis"]


class Traffic(Protocol):
    def text(self, index: int) -> str: ...

    def describe(self) -> str: ...


class Greetings:
    """Greetings the rules answer: measures the plumbing, not the answering."""

    def text(self, index: int) -> str:
        return GREETINGS[index % len(GREETINGS)]

    def describe(self) -> str:
        return "greetings only (answered by the rules)"


class Realistic:
    """Questions, small talk and handoff requests from the question sets, varied."""

    def __init__(self, *, seed: int = 11) -> None:
        questions, small, person = _pools()
        self._pools = ((0.7, questions), (0.2, small), (0.1, person))
        self._seed = seed
        self.sizes = (len(questions), len(small), len(person))

    def text(self, index: int) -> str:
        rng = random.Random(self._seed * 1_000_003 + index)
        roll = rng.random()
        chosen = self._pools[-1][1]
        for share, pool in self._pools:
            if roll < share:
                chosen = pool
                break
            roll -= share
        return _vary(rng.choice(chosen), rng)

    def describe(self) -> str:
        q, s, p = self.sizes
        return (f"realistic (70% of {q} knowledge questions, 20% of {s} greetings and thanks, "
                f"10% of {p} requests for a person; each text varied)")


def _vary(text: str, rng: random.Random) -> str:
    out = f"{rng.choice(_PREFIXES)}{text}{rng.choice(_SUFFIXES)}"
    if len(out) > 8 and rng.random() < 0.3:  # a typo: two letters swapped
        at = rng.randrange(1, len(out) - 2)
        out = out[:at] + out[at + 1] + out[at] + out[at + 2:]
    if rng.random() < 0.1:
        out = out.lower() if rng.random() < 0.5 else out.upper()
    return out


def _pools() -> tuple[list[str], list[str], list[str]]:
    questions: list[str] = []
    small = list(GREETINGS)
    person: list[str] = []
    for folder in shipped_sets(held_out=False):
        for case in load_set(folder).cases:
            if case.expect == "answer":
                questions.append(case.text)
            elif case.expect in ("smalltalk", "clarify"):
                small.append(case.text)
            elif case.expect == "escalate" and case.reason in (
                    "human", "sales", "account", "complaint"):
                person.append(case.text)
    demo = Path(str(resources.files("knowledge").joinpath("demo")))
    for name in ("questions.yaml", "questions_unseen.yaml", "questions_unseen2.yaml"):
        for item in yaml.safe_load((demo / name).read_text("utf-8")) or []:
            (person if item.get("escalate") else questions).append(str(item["q"]))
    return questions, small, person
