"""release: every stage manifest at one main commit, tagged."""
