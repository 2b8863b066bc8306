"""docs/glossary.md names every term of the code's vocabulary: the parameters, the study fields and metrics,
the command-line options and the study file's tables. A term added to the code without a glossary entry fails."""

import argparse
import re
from pathlib import Path

import pytest

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "glossary.md"


def glossary_terms() -> set[str]:
    """Every `code` span of the page, split at commas and spaces, without [ ] and a leading --."""
    terms = set()
    for span in re.findall(r"`([^`]+)`", GLOSSARY.read_text()):
        for word in re.split(r"[,\s]+", span):
            word = word.strip("[]").removeprefix("--")
            if word:
                terms.add(word)
                terms.add(word.replace("-", "_"))
    return terms


def code_terms() -> dict[str, str]:
    """term -> where the code defines it."""
    from astrogate.analysis.spec import SECTIONS
    from astrogate.analysis.study import EVALUATIONS, evaluation
    from astrogate.cli.main import build_parser
    from astrogate.models.parameters import PARAMETER_TABLE
    from astrogate.models.spiking_equations import SPIKING_TABLE

    terms = {row.name: "parameter table" for row in (*PARAMETER_TABLE, *SPIKING_TABLE)}
    for name in EVALUATIONS:
        ev = evaluation(name)
        terms[name] = "evaluation"
        terms.update({field: f"field of {name}" for field in ev.fields})
        for metric in ev.metrics:
            terms[re.sub(r"_(lo|hi)$", "", metric)] = f"metric of {name}"
    terms.update({section: "study file table" for section in SECTIONS})

    def options(parser, command):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    options(subparser, f"{command} {sub}".strip())
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help", "--version"):
                    terms[flag[2:].replace("-", "_")] = f"option of astrogate {command}"

    options(build_parser(), "")
    return terms


def test_every_term_of_the_code_is_in_the_glossary():
    known = glossary_terms()
    missing = {term: where for term, where in code_terms().items() if term not in known}
    assert not missing, missing


@pytest.mark.parametrize("term", ["soft_hamming_error", "hamming_error", "perplexity", "convergence_time", "T",
                                  "tau_p", "tau_x", "sigma", "beta", "tau_g", "tau_u", "gamma", "kappa",
                                  "cue_scale", "load", "trials", "flip", "corruption", "MECHANISMS",
                                  "CODEGEN_TARGETS", "METHODS"])
def test_the_papers_terms_and_the_split_names_are_explained(term):
    assert term in glossary_terms()
