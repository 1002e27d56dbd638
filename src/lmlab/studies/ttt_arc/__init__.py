"""Study ttt-arc: test-time training for abstract reasoning (Akyürek et al. 2024)."""
