"""Flows: the retention rules that send their own email.

- `pacing`: the one rule for never pestering (the cap per rolling period and the sending window),
  a pure function used by flows and newsletters alike.
- `config`: the flow settings (per rule: to-do, email or both; segment; follow-up days) and the
  shop-wide pacing settings.
- `runner`: one pass over the due flow occasions: re-check, pace, queue through the email outbox.
- `jobs`: the worker's scheduled pass.

Every message goes through `crm.services.email.outbox.queue_messages`: there is no second
sending path.
"""
