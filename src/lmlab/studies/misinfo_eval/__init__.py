"""MisinfoEval (Gabriel et al., EMNLP 2024): LLM-written interventions against misinformation."""
