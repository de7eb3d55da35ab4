"""Newsletters: a one-off message to a segment, written from a template.

- `store`: creating and editing a campaign (checked like a template), the audience (who will
  receive it, who is excluded and why), preview for any member, scheduling.
- `sending`: queueing it through the email outbox in chunks; a crash resumes where it stopped
  and never queues anyone twice (one campaign_recipients row per member).
- `jobs`: the worker's job, and the scheduled check for campaigns whose time has come.
"""
