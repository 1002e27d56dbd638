"""MisinfoEval (Gabriel, Lyu, Siderius, Ghassemi, Andreas & Ozdaglar, EMNLP 2024).

Participants label the headlines of a mock social-media feed as reliable or not under seven
intervention conditions (control, label, generic human, generic AI, MRF, LLM explanation,
personalized LLM explanation). This package builds the conditions (byte-stable templates, LLM
explanations through `lmlab.llm`), serves the feed as a web app for the human study, scores
response tables, computes the explanation annotation statistics, and runs simulated (LLM persona)
participants as a clearly labelled extension.
"""

from lmlab.studies.misinfo_eval.study import STUDY

__all__ = ["STUDY"]
