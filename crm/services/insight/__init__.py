"""Insight: the dashboard's figures and summary tables, predictions (RFM, BG/NBD, Gamma-Gamma) and the model check."""
