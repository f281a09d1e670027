"""The outbound Segment source (Retention.com's side, seeds/000): outbox, sending, sync history.

models.py (OutboxItem, a work-queue row; SyncRun), payloads.py (the seed's message shapes),
rules.py (what is sent when due), sending.py (the batch handler), client.py (/v1/batch over
HTTP), services.py (queueing, test sends, removal, replays), receivers.py (the other apps'
signals), collector.py (a Segment-compatible collector for local work and tests).
"""
