"""Questions answered with SQL over the store: top candidates, correlations, plots."""
