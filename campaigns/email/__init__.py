"""The email engine: templates, sends through the work queue, unsubscribes, bounces.

Loops and surveys schedule email with `campaigns.email.services.email_send_schedule` and never
send themselves; every send goes through the rules and the queue here.
"""
