"""The words the whole CRM shares and that need nothing else: no Flask, no database. The models
store them, and the pure rules (journey, scoring, retention) decide with them."""
from __future__ import annotations

# The customer journey, in order.
STAGES = ("awareness", "consideration", "conversion", "retention", "advocacy")
# How a customer relationship is doing.
HEALTHS = ("active", "at_risk", "lapsed")
