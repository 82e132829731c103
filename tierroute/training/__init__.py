"""Training kit: labelled sources, the router fit and the cross-source report."""
