"""Email from the CRM: settings, templates, the outbox, sending, unsubscribe and suppression.

- `settings`: the SMTP and sender settings (environment variables win over the page).
- `render`: a template (Markdown + sandboxed Jinja) to subject, HTML and plain text.
- `templates`: the shipped defaults, loading and saving with the checks.
- `suppression`: who may receive what, and the suppression list (unsubscribed, bounced).
- `tokens`: the signed unsubscribe token.
- `outbox`: composing and queueing a message (one row per message, before any delivery).
- `sending`: delivering one queued message over SMTP, at most once.

Later triggers (flows, newsletters) only need `outbox.queue_message` with a template and a contact.
"""
